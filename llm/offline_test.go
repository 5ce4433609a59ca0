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
