package llm

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// OfflineConfig configures an [Offline] provider.
type OfflineConfig struct {
	// TokenDelay is waited between streamed words, so that a terminal
	// (curl -N) visibly streams; 0 streams as fast as emit allows.
	TokenDelay time.Duration
}

// Offline is a deterministic story-intake interviewer that needs no network
// and no key: it reflects what the person just said and asks for what is
// still missing (premise, people, place and time, conflict, ending, tone).
// The same conversation always gets the same reply. It is safe for
// concurrent use.
type Offline struct {
	tokenDelay time.Duration
}

// NewOffline returns an offline interviewer.
func NewOffline(cfg OfflineConfig) *Offline {
	return &Offline{tokenDelay: max(cfg.TokenDelay, 0)}
}

// Name identifies the provider: "offline".
func (o *Offline) Name() string { return "offline" }

// StreamChat composes the interviewer's next reply to msgs and streams it
// word by word through emit (each delta is a word with its trailing space).
// It returns an error wrapping ctx.Err() as soon as ctx ends, and the
// error of emit, wrapped, if emit fails.
func (o *Offline) StreamChat(ctx context.Context, msgs []Message, emit func(delta string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("llm: offline: %w", err)
	}
	words := strings.Fields(InterviewReply(msgs))
	var timer *time.Timer
	if o.tokenDelay > 0 {
		timer = time.NewTimer(o.tokenDelay)
		defer timer.Stop()
	}
	for i, w := range words {
		if i > 0 {
			if timer != nil {
				timer.Reset(o.tokenDelay)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return fmt.Errorf("llm: offline: %w", ctx.Err())
				}
			} else if err := ctx.Err(); err != nil {
				return fmt.Errorf("llm: offline: %w", err)
			}
		}
		if i < len(words)-1 {
			w += " "
		}
		if err := emit(w); err != nil {
			return fmt.Errorf("llm: offline: emit: %w", err)
		}
	}
	return nil
}

// InterviewReply returns the offline interviewer's whole reply to msgs, the
// text [Offline.StreamChat] streams. It is deterministic.
func InterviewReply(msgs []Message) string {
	a := analyze(msgs)
	var parts []string
	if a.assistantTurns == 0 {
		parts = append(parts, "(offline interviewer)")
	}
	if a.userTurns == 0 {
		parts = append(parts, "Hi! I'm here to help you shape the story you want to film.")
	} else if r := a.reflection(); r != "" {
		parts = append(parts, r)
	}
	next, ok := a.nextTopic()
	if ok {
		parts = append(parts, pick(questions(next), a.userTurns))
	} else {
		if s := a.summary(); s != "" {
			parts = append(parts, s)
		}
		parts = append(parts, pick(deepeningQuestions(), a.userTurns))
	}
	return strings.Join(parts, " ")
}

// topic is one thing a film-story intake needs, in the order it is asked.
type topic int

const (
	topicPremise topic = iota
	topicPeople
	topicPlace
	topicConflict
	topicEnding
	topicTone
	numTopics
)

// questions returns the phrasings for a topic. Every phrasing contains its
// topic's cue (see askedTopics) and no other topic's cue.
func questions(t topic) []string {
	switch t {
	case topicPremise:
		return []string{
			"What's the story you want to film — what is it about?",
			"Tell me the heart of it: what is this story about?",
			"If you had to pitch it in one breath, what would it be about?",
		}
	case topicPeople:
		return []string{
			"Who is at the centre of this story, and what are they like?",
			"Who do we follow through this story, and what do they want?",
			"Who else matters here — who is closest to the heart of it?",
		}
	case topicPlace:
		return []string{
			"Where and when does it take place?",
			"Where are we when this happens — what place, what year or season?",
			"Paint the setting for me: where is it, and in what time?",
		}
	case topicConflict:
		return []string{
			"What goes wrong — what's at stake for them?",
			"What stands in their way, and what's at stake if they fail?",
			"What's the trouble at the core of it — what's at stake?",
		}
	case topicEnding:
		return []string{
			"How does it end — what has changed by the last scene?",
			"How do you want to leave them at the end?",
			"What ending do you imagine for them?",
		}
	case topicTone:
		return []string{
			"How should it feel to watch — funny, tense, tender, something else?",
			"What tone do you imagine: what genre, what mood?",
			"When the lights come up, what should people feel?",
		}
	}
	return nil
}

// deepeningQuestions are asked once every topic is covered. They carry no
// topic cue.
func deepeningQuestions() []string {
	return []string{
		"What's one image from this story you can't stop seeing?",
		"Is there a scene you already know has to be in the film? Describe it.",
		"Why does this story matter to you — why tell it now?",
		"What's a small detail only you would know, the kind a camera should catch?",
		"If the audience remembers one moment, which should it be?",
	}
}

// summaryLead starts the one-time summary; its presence in an earlier
// assistant message means the summary was already given.
const summaryLead = "Here's what I have so far:"

func pick(options []string, n int) string {
	if len(options) == 0 {
		return ""
	}
	return options[n%len(options)]
}

// analysis is what the interviewer knows about the conversation.
type analysis struct {
	userTurns      int
	assistantTurns int
	covered        [numTopics]bool
	summarized     bool
	last           string   // last user message
	lastNames      []string // names mentioned in the last user message
	lastPlaces     []string
	lastTimes      []string
	names          []string // everything mentioned, first mention first
	places         []string
	times          []string
}

func analyze(msgs []Message) *analysis {
	a := &analysis{}
	var userText strings.Builder
	longTurn := false
	for _, m := range msgs {
		switch m.Role {
		case RoleUser:
			a.userTurns++
			a.last = strings.TrimSpace(m.Content)
			userText.WriteString(m.Content)
			userText.WriteString("\n")
			if len(strings.Fields(m.Content)) >= 6 {
				longTurn = true
			}
			e := extractEntities(m.Content)
			a.lastNames, a.lastPlaces, a.lastTimes = e.names, e.places, e.times
			a.names = appendNew(a.names, e.names...)
			a.places = appendNew(a.places, e.places...)
			a.times = appendNew(a.times, e.times...)
		case RoleAssistant:
			a.assistantTurns++
			for _, t := range askedTopics(m.Content) {
				a.covered[t] = true
			}
			if strings.Contains(m.Content, summaryLead) {
				a.summarized = true
			}
		}
	}
	text := normalize(userText.String())
	words := wordSet(text)
	a.covered[topicPremise] = a.covered[topicPremise] || longTurn
	a.covered[topicPeople] = a.covered[topicPeople] || len(a.names) > 0 || words.hasAny(peopleWords())
	a.covered[topicPlace] = a.covered[topicPlace] || len(a.places) > 0 || len(a.times) > 0 ||
		words.hasAny(placeWords()) || hasPhrase(text, placePhrases())
	a.covered[topicConflict] = a.covered[topicConflict] || words.hasAny(conflictWords())
	a.covered[topicEnding] = a.covered[topicEnding] || words.hasAny(endingWords()) || hasPhrase(text, endingPhrases())
	a.covered[topicTone] = a.covered[topicTone] || words.hasAny(toneWords())
	return a
}

func (a *analysis) nextTopic() (topic, bool) {
	for t := topicPremise; t < numTopics; t++ {
		if !a.covered[t] {
			return t, true
		}
	}
	return 0, false
}

// reflection briefly mirrors the last user message.
func (a *analysis) reflection() string {
	n := a.userTurns
	last := strings.TrimSpace(a.last)
	switch {
	case last == "":
		return ""
	case strings.HasSuffix(last, "?"):
		return pick([]string{
			"Good question — I'm only the offline interviewer, so I'll keep to asking.",
			"I can't answer that one offline, but I can keep listening.",
		}, n)
	case len(a.lastNames) > 0 && len(a.lastPlaces) > 0:
		return fmt.Sprintf(pick([]string{
			"%s in %s — I can already picture it.",
			"%s, in %s. That's a strong start.",
		}, n), joinAnd(a.lastNames), joinAnd(a.lastPlaces))
	case len(a.lastNames) > 0:
		return fmt.Sprintf(pick([]string{
			"%s — I'd like to know more.",
			"I like %s already.",
			"I want to hear more of %s.",
		}, n), joinAnd(a.lastNames))
	case len(a.lastPlaces) > 0:
		return fmt.Sprintf(pick([]string{
			"%s — I can already picture it.",
			"%s makes a vivid setting.",
			"Good, %s gives us somewhere to stand.",
		}, n), joinAnd(a.lastPlaces))
	case len(a.lastTimes) > 0:
		return fmt.Sprintf(pick([]string{
			"%s — that anchors us in time.",
			"So, %s. Good to know the period.",
		}, n), joinAnd(a.lastTimes))
	}
	words := strings.Fields(last)
	if len(words) < 4 && isGreeting(words[0]) {
		return pick([]string{"Hello!", "Hi there!"}, n)
	}
	if len(words) < 4 {
		return pick([]string{"Okay.", "Thanks, that helps.", "Fair enough."}, n)
	}
	p := paraphrase(last, a.lastNames)
	if p == "" {
		return pick([]string{"Okay.", "Thanks, that helps."}, n)
	}
	return fmt.Sprintf(pick([]string{"So %s.", "Got it — %s.", "I hear you: %s."}, n), p)
}

func isGreeting(w string) bool {
	switch strings.ToLower(strings.TrimRightFunc(w, unicode.IsPunct)) {
	case "hi", "hello", "hey", "hiya", "howdy", "greetings", "yo":
		return true
	}
	return false
}

// summary lists what was gathered, once, when every topic is covered.
func (a *analysis) summary() string {
	if a.summarized {
		return ""
	}
	var parts []string
	if len(a.names) > 0 {
		parts = append(parts, joinAnd(a.names))
	}
	if len(a.places) > 0 {
		parts = append(parts, joinAnd(a.places))
	}
	if len(a.times) > 0 {
		parts = append(parts, joinAnd(a.times))
	}
	if len(parts) == 0 {
		return ""
	}
	return summaryLead + " " + strings.Join(parts, ", ") + "."
}

// askedTopics returns the topics an assistant message asked about, judged
// by cue words in its question sentences.
func askedTopics(msg string) []topic {
	var out []topic
	for _, q := range questionSentences(msg) {
		w := wordSet(normalize(q))
		if w["about"] {
			out = append(out, topicPremise)
		}
		if w["who"] {
			out = append(out, topicPeople)
		}
		if w["where"] {
			out = append(out, topicPlace)
		}
		if w["stake"] || w["stakes"] {
			out = append(out, topicConflict)
		}
		if w["end"] || w["ending"] || w["ends"] {
			out = append(out, topicEnding)
		}
		if w["feel"] || w["tone"] || w["mood"] || w["genre"] {
			out = append(out, topicTone)
		}
	}
	return out
}

// questionSentences returns the sentences of s that end with '?'.
func questionSentences(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		switch r {
		case '.', '!', '\n':
			start = i + 1
		case '?':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// paraphrase turns the first sentence of a user message into something the
// interviewer can say back: pronouns swapped, trimmed to a few words.
func paraphrase(msg string, names []string) string {
	sentence := msg
	if i := strings.IndexAny(msg, ".!?;\n"); i > 0 {
		sentence = msg[:i]
	}
	words := strings.Fields(sentence)
	const maxWords = 12
	truncated := false
	if len(words) > maxWords {
		words, truncated = words[:maxWords], true
	}
	out := make([]string, 0, len(words))
	for i := 0; i < len(words); i++ {
		w := words[i]
		core := strings.TrimRightFunc(w, func(r rune) bool { return unicode.IsPunct(r) && r != '\'' })
		tail := w[len(core):]
		lower := strings.ToLower(strings.ReplaceAll(core, "’", "'"))
		if lower == "i" && i+1 < len(words) && strings.EqualFold(words[i+1], "am") {
			out = append(out, "you are"+tail)
			i++
			continue
		}
		if sw, ok := swapPronoun(lower); ok {
			out = append(out, sw+tail)
			continue
		}
		if i == 0 && !contains(names, core) {
			w = lowerFirst(w)
		}
		out = append(out, w)
	}
	p := strings.TrimRightFunc(strings.Join(out, " "), func(r rune) bool {
		return unicode.IsPunct(r) || unicode.IsSpace(r)
	})
	if p == "" {
		return ""
	}
	if truncated {
		p += "…"
	}
	return p
}

func swapPronoun(w string) (string, bool) {
	switch w {
	case "i", "me":
		return "you", true
	case "i'm":
		return "you're", true
	case "i've":
		return "you've", true
	case "i'd":
		return "you'd", true
	case "i'll":
		return "you'll", true
	case "my", "our":
		return "your", true
	case "mine", "ours":
		return "yours", true
	case "myself":
		return "yourself", true
	case "we", "us":
		return "you", true
	case "we're":
		return "you're", true
	case "we've":
		return "you've", true
	}
	return "", false
}

// entities are the concrete details found in one message.
type entities struct {
	names, places, times []string
}

// extractEntities finds capitalised names (places when they follow a place
// preposition), years and decades in a message.
func extractEntities(msg string) entities {
	var e entities
	for _, sentence := range splitSentences(msg) {
		words := strings.FieldsFunc(sentence, func(r rune) bool {
			return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '’' || r == '-')
		})
		for i, raw := range words {
			w := strings.Trim(strings.ReplaceAll(raw, "’", "'"), "'-")
			if w == "" {
				continue
			}
			lower := strings.ToLower(w)
			if isTimeWord(lower) {
				e.times = appendNew(e.times, timeLabel(w))
				continue
			}
			r, _ := utf8.DecodeRuneInString(w)
			if !unicode.IsUpper(r) || utf8.RuneCountInString(w) < 2 || isAllUpper(w) {
				continue
			}
			possessive := strings.HasSuffix(lower, "'s")
			w = strings.TrimSuffix(strings.TrimSuffix(w, "'s"), "'S")
			lower = strings.ToLower(w)
			if notAName(lower) {
				continue
			}
			if i == 0 {
				// A capital at the start of a sentence proves little; accept
				// it when the next word reads like "Maria is", "Tom's".
				if !possessive && (len(words) < 2 || !nameFollower(strings.ToLower(words[1]))) {
					continue
				}
			}
			if i > 0 && isPlacePreposition(strings.ToLower(words[i-1])) {
				e.places = appendNew(e.places, w)
			} else {
				e.names = appendNew(e.names, w)
			}
		}
	}
	return e
}

func splitSentences(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == '.' || r == '!' || r == '?' || r == '\n' || r == ';' || r == ':' || r == '"' || r == '“' || r == '”'
	})
}

// isTimeWord matches years (1000–2099) and decades (1980s, 80s).
func isTimeWord(w string) bool {
	digits := strings.TrimSuffix(w, "s")
	if digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	switch len(digits) {
	case 4: // 1500–2099
		return (digits[0] == '1' && digits[1] >= '5') || (digits[0] == '2' && digits[1] == '0')
	case 2:
		return strings.HasSuffix(w, "s") && strings.HasSuffix(digits, "0")
	}
	return false
}

func timeLabel(w string) string {
	if strings.HasSuffix(w, "s") { // "80s", "1980s"
		return "the " + w
	}
	return w
}

func isAllUpper(w string) bool {
	for _, r := range w {
		if unicode.IsLetter(r) && !unicode.IsUpper(r) {
			return false
		}
	}
	return true
}

func nameFollower(w string) bool {
	switch w {
	case "is", "was", "and", "has", "had", "lives", "lived", "works", "worked", "who",
		"wants", "wanted", "loves", "loved", "runs", "ran", "grew", "meets", "met", "finds", "found":
		return true
	}
	return false
}

func isPlacePreposition(w string) bool {
	switch w {
	case "in", "at", "from", "to", "near", "across", "outside", "inside", "through", "around", "into", "towards", "toward":
		return true
	}
	return false
}

// notAName lists capitalised words that are not characters or places.
func notAName(w string) bool {
	switch w {
	case "i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "god", "mr", "mrs", "ms", "dr",
		"it", "he", "she", "they", "we", "you", "that", "there", "here", "what", "who", "where",
		"when", "why", "how", "this", "these", "those", "the", "a", "an", "his", "her", "their",
		"our", "my", "your", "its", "let", "one", "everyone", "everybody", "nobody", "someone",
		"somebody", "nothing", "everything", "today", "yesterday", "tomorrow", "yes", "no",
		"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
		"january", "february", "march", "april", "may", "june", "july", "august",
		"september", "october", "november", "december", "christmas", "easter",
		"english", "internet", "tv":
		return true
	}
	return false
}

func peopleWords() []string {
	return []string{
		"mother", "mom", "mum", "father", "dad", "sister", "brother", "sisters", "brothers",
		"grandmother", "grandma", "granny", "grandfather", "grandpa", "grandparents",
		"son", "daughter", "wife", "husband", "friend", "friends", "girlfriend", "boyfriend",
		"partner", "uncle", "aunt", "cousin", "family", "parents", "kids", "children",
		"teacher", "boss", "neighbor", "neighbour", "protagonist", "hero", "heroine",
		"character", "characters", "villain", "twins", "couple", "lover", "lovers",
		"myself", "mentor", "stepfather", "stepmother", "fiancé", "fiance",
	}
}

func placeWords() []string {
	return []string{
		"city", "town", "village", "farm", "island", "coast", "desert", "mountains", "mountain",
		"forest", "sea", "ocean", "river", "lake", "school", "hospital", "prison", "ship",
		"apartment", "street", "neighborhood", "neighbourhood", "country", "countryside", "suburb",
		"suburbs", "port", "harbour", "harbor", "church", "factory", "station", "camp", "border",
		"capital", "space", "planet", "kingdom", "valley", "beach",
		"summer", "winter", "spring", "autumn", "century", "decade", "eighties", "nineties",
		"seventies", "sixties", "fifties", "medieval", "future", "nowadays", "today", "childhood",
		"january", "february", "march", "april", "june", "july", "august",
		"september", "october", "november", "december",
	}
}

func placePhrases() []string {
	return []string{"present day", "during the war", "after the war", "years ago", "long ago", "at night"}
}

func conflictWords() []string {
	return []string{
		"lose", "loses", "lost", "losing", "loss", "fight", "fights", "fighting", "war", "secret",
		"secrets", "afraid", "fear", "fears", "betray", "betrays", "betrayal", "danger",
		"problem", "problems", "struggle", "struggles", "conflict", "stake", "stakes", "risk",
		"risks", "threat", "threatens", "illness", "sick", "cancer", "die", "dies", "death",
		"dying", "escape", "escapes", "against", "trouble", "debt", "missing", "divorce",
		"accident", "crime", "murder", "chase", "rival", "enemy", "enemies", "fail", "fails",
		"failure", "poverty", "addiction", "grief", "obstacle", "crisis", "storm", "flood",
		"eviction", "evicted", "bankrupt", "wrong", "jealous", "jealousy",
	}
}

func endingWords() []string {
	return []string{
		"end", "ends", "ending", "ended", "finally", "eventually", "realizes", "realises",
		"learns", "forgives", "forgive", "forgiven", "reunite", "reunites", "reunited",
		"returns", "wins", "survives", "resolution", "closure", "afterwards",
	}
}

func endingPhrases() []string {
	return []string{"in the end", "at last", "ever after", "by the end", "last scene"}
}

func toneWords() []string {
	return []string{
		"comedy", "comedic", "funny", "humor", "humour", "drama", "dramatic", "thriller",
		"horror", "romance", "romantic", "sad", "dark", "hopeful", "bittersweet", "tense",
		"documentary", "noir", "whimsical", "mood", "tone", "melancholic", "melancholy",
		"uplifting", "scary", "epic", "gritty", "nostalgic", "gentle", "tender", "suspense",
		"suspenseful", "mystery", "fantasy", "sci-fi", "western", "musical", "animated",
		"joyful", "heartwarming", "heartbreaking", "moody", "realistic", "poetic", "intimate",
		"genre", "playful", "dreamy", "quirky", "somber", "sombre", "lighthearted",
	}
}

// normalize lowercases s and reduces it to words separated by single
// spaces, with a space at both ends so phrases match on word boundaries.
func normalize(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "’", "'"))
	f := strings.FieldsFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-')
	})
	return " " + strings.Join(f, " ") + " "
}

type words map[string]bool

func wordSet(normalized string) words {
	w := make(words)
	for _, f := range strings.Fields(normalized) {
		w[f] = true
		w[strings.TrimSuffix(f, "'s")] = true
	}
	return w
}

func (w words) hasAny(list []string) bool {
	for _, x := range list {
		if w[x] {
			return true
		}
	}
	return false
}

func hasPhrase(normalized string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(normalized, " "+p+" ") {
			return true
		}
	}
	return false
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func joinAnd(items []string) string {
	if len(items) > 3 {
		items = items[:3]
	}
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	case 2:
		return items[0] + " and " + items[1]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
