package llm

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func streamOffline(t *testing.T, o *Offline, msgs []Message) []string {
	t.Helper()
	var got []string
	if err := o.StreamChat(t.Context(), msgs, func(d string) error {
		got = append(got, d)
		return nil
	}); err != nil {
		t.Fatalf("StreamChat: %v", err)
	}
	return got
}

func user(s string) Message      { return Message{Role: RoleUser, Content: s} }
func assistant(s string) Message { return Message{Role: RoleAssistant, Content: s} }

func TestOfflineDeterministicAndStreamed(t *testing.T) {
	msgs := []Message{
		{Role: RoleSystem, Content: InterviewerPrompt},
		user("It's about my grandmother who ran a bakery in Lisbon."),
	}
	o := NewOffline(OfflineConfig{})
	first := streamOffline(t, o, msgs)
	second := streamOffline(t, o, msgs)
	if !slices.Equal(first, second) {
		t.Fatalf("not deterministic:\n%q\n%q", first, second)
	}
	if len(first) < 2 {
		t.Fatalf("streamed %d deltas, want word by word", len(first))
	}
	for i, d := range first[:len(first)-1] {
		if !strings.HasSuffix(d, " ") || strings.TrimSpace(d) == "" || strings.Contains(strings.TrimSpace(d), " ") {
			t.Errorf("delta %d = %q, want one word and its trailing space", i, d)
		}
	}
	if got, want := strings.Join(first, ""), InterviewReply(msgs); got != want {
		t.Errorf("streamed %q, InterviewReply %q", got, want)
	}
	if o.Name() != "offline" {
		t.Errorf("Name() = %q", o.Name())
	}
}

func TestOfflineAsksNextMissingTopic(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
		want []topic // topics the reply asks about; nil = a deepening question
	}{
		{name: "empty conversation asks the premise", msgs: nil, want: []topic{topicPremise}},
		{name: "greeting asks the premise", msgs: []Message{user("hi")}, want: []topic{topicPremise}},
		{
			name: "premise only asks about people",
			msgs: []Message{user("A lighthouse keeper finds a message in a bottle.")},
			want: []topic{topicPeople},
		},
		{
			name: "premise and people ask where and when",
			msgs: []Message{user("It's a story about my brother Sam and the band we started.")},
			want: []topic{topicPlace},
		},
		{
			name: "premise, people and place ask about the conflict",
			msgs: []Message{
				user("It's about my grandmother Rosa who ran a bakery."),
				assistant("Who else is in it?"),
				user("Her brother Tomas. They lived in Lisbon in 1974."),
			},
			want: []topic{topicConflict},
		},
		{
			name: "a question already asked is not asked again",
			msgs: []Message{
				user("A lighthouse keeper finds a message in a bottle."),
				assistant("Who do we follow through this story, and what do they want?"),
				user("not sure yet"),
			},
			want: []topic{topicPlace},
		},
		{
			name: "everything covered asks a deepening question",
			msgs: []Message{
				user("It's about my grandmother Rosa who ran a bakery in Lisbon in 1974."),
				user("The bakery is going to be lost to debt."),
				user("In the end she forgives her brother."),
				user("Bittersweet, a warm drama."),
			},
			want: nil,
		},
		{
			name: "every topic asked once moves on to deepening",
			msgs: []Message{
				user("hmm"),
				assistant("What is it about?"), user("no idea"),
				assistant("Who is in it?"), user("no idea"),
				assistant("Where is it?"), user("no idea"),
				assistant("What's at stake?"), user("no idea"),
				assistant("How does it end?"), user("no idea"),
				assistant("How should it feel?"), user("no idea"),
			},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := InterviewReply(tt.msgs)
			if got := askedTopics(reply); !slices.Equal(got, tt.want) {
				t.Errorf("reply %q asks %v, want %v", reply, got, tt.want)
			}
		})
	}
}

func TestOfflineConversationVaries(t *testing.T) {
	answers := []string{
		"It's about my grandmother who ran a bakery in Lisbon.",
		"Her name was Rosa, and her brother Tomas helped her.",
		"It was 1974, right during the revolution.",
		"The bakery is going to be lost to debt.",
		"In the end she forgives him.",
		"Bittersweet, like a warm drama.",
		"The flour on her hands.",
	}
	var msgs []Message
	seen := map[string]bool{}
	for i, a := range answers {
		msgs = append(msgs, user(a))
		reply := InterviewReply(msgs)
		if seen[reply] {
			t.Errorf("turn %d repeats an earlier reply: %q", i, reply)
		}
		seen[reply] = true
		if i > 0 && strings.Contains(reply, "(offline interviewer)") {
			t.Errorf("turn %d repeats the offline label: %q", i, reply)
		}
		msgs = append(msgs, assistant(reply))
	}
	if first := msgs[1].Content; !strings.HasPrefix(first, "(offline interviewer)") {
		t.Errorf("first reply %q is not labelled", first)
	}
	if !strings.Contains(msgs[1].Content, "Lisbon") {
		t.Errorf("first reply %q does not reflect the place", msgs[1].Content)
	}
	if !strings.Contains(msgs[3].Content, "Rosa") {
		t.Errorf("second reply %q does not reflect the names", msgs[3].Content)
	}
}

func TestOfflineQuestionCues(t *testing.T) {
	for tp := topicPremise; tp < numTopics; tp++ {
		for _, q := range questions(tp) {
			if got := askedTopics(q); !slices.Equal(got, []topic{tp}) {
				t.Errorf("question %q reads as topics %v, want [%v]", q, got, tp)
			}
		}
	}
	for _, q := range deepeningQuestions() {
		if got := askedTopics(q); len(got) != 0 {
			t.Errorf("deepening question %q reads as topics %v", q, got)
		}
	}
}

func TestParaphrase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"I want to make a film about my dad.", "you want to make a film about your dad"},
		{"I am the one who left; nobody knows.", "you are the one who left"},
		{"Our house burned down when we were kids and nobody ever talked about it again", "your house burned down when you were kids and nobody ever talked…"},
		// A cut never leaves "and…", "the…" or punctuation before the ellipsis.
		{"The big storm is the center: a fishing boat loses power and she keeps the light going by hand.", "the big storm is the center: a fishing boat loses power…"},
		{"We sold the farm in the spring and moved to the city with the kids.", "you sold the farm in the spring and moved to the city…"},
		{"She kept the light burning every night of her life, and then one day, the letter came.", "she kept the light burning every night of her life…"},
	}
	for _, tt := range tests {
		if got := paraphrase(tt.in, nil); got != tt.want {
			t.Errorf("paraphrase(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExtractEntities(t *testing.T) {
	tests := []struct {
		in                   string
		names, places, times []string
	}{
		{in: "It's about my grandmother.", names: nil},
		{in: "Maria is a nurse in Porto.", names: []string{"Maria"}, places: []string{"Porto"}},
		{in: "Her brother Tomas came back from Berlin in 1989.", names: []string{"Tomas"}, places: []string{"Berlin"}, times: []string{"1989"}},
		{in: "It happens in the 80s.", times: []string{"the 80s"}},
		{in: "I think Monday is when I met Ana's mother.", names: []string{"Ana"}},
		{
			in:     "Her name is Ada Whitlock and she kept the lighthouse on Gull Rock in Maine for forty years.",
			names:  []string{"Ada Whitlock"},
			places: []string{"Gull Rock", "Maine"},
		},
		{
			in:    "It is set in the winter of 1962 when the Coast Guard decided to automate the light.",
			names: []string{"the Coast Guard"},
			times: []string{"winter 1962"},
		},
		{in: "Ada Whitlock kept the light.", names: []string{"Ada Whitlock"}},
		{in: "In June 1962 she sailed to the Bay of Fundy.", places: []string{"the Bay of Fundy"}, times: []string{"June 1962"}},
		{in: "They met in Lisbon, Portugal.", places: []string{"Lisbon", "Portugal"}},
		{in: "In Lisbon, Maria met Tomas.", names: []string{"Maria", "Tomas"}, places: []string{"Lisbon"}},
		// Capitalised sentence openers are not names.
		{in: "The storm came. It was cold. Her hands froze. In the end She left. Then Later Maybe."},
		{in: "Grandma Rosa and Mr Silva argued: Silva's boat was gone.", names: []string{"Rosa", "Mr Silva", "Silva"}},
	}
	for _, tt := range tests {
		e := extractEntities(tt.in)
		if !slices.Equal(e.names, tt.names) || !slices.Equal(e.places, tt.places) || !slices.Equal(e.times, tt.times) {
			t.Errorf("extractEntities(%q) = %+v, want names %v places %v times %v", tt.in, e, tt.names, tt.places, tt.times)
		}
	}
}

func TestOfflineCancelMidStream(t *testing.T) {
	// An hour between words: only a timer that honours ctx lets this return.
	o := NewOffline(OfflineConfig{TokenDelay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []string
	err := o.StreamChat(ctx, []Message{user("hello")}, func(d string) error {
		got = append(got, d)
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(got) != 1 {
		t.Errorf("emitted %d deltas after cancel, want 1", len(got))
	}
}

func TestOfflineEmitError(t *testing.T) {
	errStop := errors.New("stop")
	calls := 0
	err := NewOffline(OfflineConfig{}).StreamChat(t.Context(), nil, func(string) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Fatalf("err = %v after %d calls, want errStop after 1", err, calls)
	}
}

// converse plays turns against InterviewReply and returns its replies.
func converse(turns []string) []string {
	var msgs []Message
	var replies []string
	for _, u := range turns {
		msgs = append(msgs, user(u))
		r := InterviewReply(msgs)
		replies = append(replies, r)
		msgs = append(msgs, assistant(r))
	}
	return replies
}

var adaWhitlock = []string{
	"A film about my grandmother",
	"Her name is Ada Whitlock and she kept the lighthouse on Gull Rock in Maine for forty years.",
	"It is set in the winter of 1962 when the Coast Guard decided to automate the light.",
	"The big storm is the center: a fishing boat loses power and she keeps the light going by hand.",
	"In the end she saves the crew but still has to leave.",
	"It should feel quiet and bittersweet, like a small drama.",
}

func TestOfflineReplies(t *testing.T) {
	tests := []struct {
		name        string
		turns       []string
		reply       int // which reply to check
		want, avoid []string
		asks        []topic // if non-nil, the topics the reply must ask; empty = none
	}{
		{
			name:  "a film about a person covers the premise and asks about that person",
			turns: adaWhitlock[:1],
			want:  []string{"(offline interviewer)", "Who is she?", "Tell me about your grandmother."},
			avoid: []string{"what is this story about", "what is it about"},
			asks:  []topic{topicPeople},
		},
		{
			name:  "a story about a man asks who he is",
			turns: []string{"a movie about my dad"},
			want:  []string{"Who is he", "your dad"},
			asks:  []topic{topicPeople},
		},
		{
			name:  "a story about a group asks who they are",
			turns: []string{"A story about two sisters"},
			want:  []string{"Who are they", "the two sisters"},
			asks:  []topic{topicPeople},
		},
		{
			name:  "a film about a thing asks who is at the centre",
			turns: []string{"A film about a lighthouse"},
			want:  []string{"Who is at the centre"},
			avoid: []string{"what is this story about"},
			asks:  []topic{topicPeople},
		},
		{
			name:  "a bare about-phrase is not a premise",
			turns: []string{"A film about it"},
			asks:  []topic{topicPremise},
		},
		{
			name:  "consecutive capitals are one name, and lists join properly",
			turns: adaWhitlock[:2],
			reply: 1,
			want:  []string{"Ada Whitlock, Gull Rock and Maine"},
			avoid: []string{"Ada, Whitlock", "Gull in", "Her "},
		},
		{
			name:  "a setting message reflects its time",
			turns: adaWhitlock[:3],
			reply: 2,
			want:  []string{"Winter 1962 —"},
			avoid: []string{"Coast and Guard", "It —", "It and"},
		},
		{
			name:  "a setting message with a place reflects place and time",
			turns: []string{"It takes place in Lisbon in the 80s."},
			want:  []string{"Lisbon in the 80s"},
		},
		{
			name:  "a trimmed paraphrase ends in a single ellipsis, not on a conjunction",
			turns: adaWhitlock[:4],
			reply: 3,
			want:  []string{"a fishing boat loses power…"},
			avoid: []string{"….", "and…"},
		},
		{
			name:  "the summary lists grouped names and reads naturally",
			turns: adaWhitlock[:5],
			reply: 4,
			want: []string{
				summaryLead + " your grandmother Ada Whitlock and the Coast Guard, on Gull Rock in Maine, in winter 1962.",
			},
			avoid: []string{"Ada, Whitlock", "Gull,"},
		},
		{
			name:  "the summary nests comma-separated places",
			turns: []string{"It's about my brother Sam.", "We grew up in Porto, Portugal in the 90s.", "We lost the house in the end.", "A quiet drama."},
			reply: 3,
			want:  []string{summaryLead + " your brother Sam, in Porto, Portugal, in the 90s."},
		},
		{
			name:  "after the summary the interviewer deepens",
			turns: adaWhitlock,
			reply: 5,
			want:  []string{"bittersweet"},
			avoid: []string{summaryLead},
			asks:  []topic{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := converse(tt.turns)[tt.reply]
			for _, w := range tt.want {
				if !strings.Contains(reply, w) {
					t.Errorf("reply %q does not contain %q", reply, w)
				}
			}
			for _, w := range tt.avoid {
				if strings.Contains(reply, w) {
					t.Errorf("reply %q contains %q", reply, w)
				}
			}
			if got := askedTopics(reply); tt.asks != nil && !slices.Equal(got, tt.asks) {
				t.Errorf("reply %q asks %v, want %v", reply, got, tt.asks)
			}
		})
	}
}

func TestOfflineWholeInterviewDeterministic(t *testing.T) {
	first, second := converse(adaWhitlock), converse(adaWhitlock)
	if !slices.Equal(first, second) {
		t.Fatalf("not deterministic:\n%q\n%q", first, second)
	}
	for i, r := range first {
		if strings.Contains(r, "….") || strings.Contains(r, "..") {
			t.Errorf("reply %d has doubled punctuation: %q", i, r)
		}
	}
}
