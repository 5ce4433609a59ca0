package llm

import (
	"context"
	"fmt"
	"slices"
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
		if a.remembers {
			parts = append(parts, "Welcome back — I remember the story so far.")
		}
	}
	if a.userTurns == 0 {
		parts = append(parts, "Hi! I'm here to help you shape the story you want to film.")
	} else if r := a.reflection(); r != "" {
		parts = append(parts, r)
	}
	next, ok := a.nextTopic()
	switch {
	case ok && next == topicPeople && a.subject != nil:
		parts = append(parts, a.subject.peopleQuestion(a.userTurns))
	case ok:
		parts = append(parts, pick(questions(next), a.userTurns))
	default:
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
	remembers      bool // the prompt carries the project's dossier (DossierContext)
	summarized     bool
	last           string   // last user message
	lastPremise    bool     // the last user message only stated the premise
	lastSetting    bool     // the last user message talks about the setting
	lastNames      []string // names mentioned in the last user message
	lastPlaces     []string
	lastTimes      []string
	names          []string // everything mentioned, first mention first
	places         []place
	times          []string
	subject        *subject // what the story is about, from the latest "a film about …"
}

func analyze(msgs []Message) *analysis {
	a := &analysis{}
	titles := titleRegexp()
	var userText strings.Builder
	longTurn, people := false, false
	for _, m := range msgs {
		switch m.Role {
		case RoleUser:
			a.userTurns++
			a.last = strings.TrimSpace(m.Content)
			userText.WriteString(m.Content)
			userText.WriteString("\n")
			content := m.Content
			if title := findTitle(titles, content); title != "" {
				// The title's words name the film, not a person or a place.
				content = strings.Replace(content, title, "the film", 1)
			}
			toks := tokenize(content)
			if len(toks) >= 6 {
				longTurn = true
			}
			e := extractEntities(content)
			a.lastNames, a.lastPlaces, a.lastTimes = e.names, e.places, e.times
			a.names = appendNew(a.names, e.names...)
			for _, p := range e.placeRefs {
				if !slices.ContainsFunc(a.places, func(q place) bool { return q.name == p.name }) {
					a.places = append(a.places, p)
				}
			}
			a.times = appendNew(a.times, e.times...)
			s := findSubject(toks)
			a.lastPremise = s != nil && s.rest == 0
			a.lastSetting = hasPhrase(normalize(m.Content), settingPhrases())
			from, to := 0, 0
			if s != nil {
				a.subject = s
				from, to = s.from, s.to
			}
			if len(e.names) > 0 || mentionsPeople(toks, from, to) {
				people = true
			}
			if a.subject != nil && a.subject.name == "" && a.subject.kind != kindNone {
				a.subject.name = givenName(toks, a.subject.kind)
			}
		case RoleSystem:
			if cov, ok := dossierCoverage(m.Content); ok {
				a.remembers = true
				for t, c := range cov {
					a.covered[t] = a.covered[t] || c
				}
			}
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
	a.covered[topicPremise] = a.covered[topicPremise] || longTurn || a.subject != nil
	a.covered[topicPeople] = a.covered[topicPeople] || people
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
	case a.lastPremise && len(a.lastNames) == 0 && len(a.lastPlaces) == 0 && len(a.lastTimes) == 0:
		// The question that follows names the subject; don't repeat it.
		return pick([]string{
			"That sounds like a story worth telling.",
			"What a good place to start.",
			"I'd love to help you tell it.",
		}, n)
	case a.lastSetting && len(a.lastTimes) > 0 && len(a.lastPlaces) > 0:
		return upperFirst(fmt.Sprintf(pick([]string{
			"%s in %s — I can already picture it.",
			"%s in %s. That gives us somewhere to stand.",
		}, n), joinAnd(a.lastPlaces), joinAnd(a.lastTimes)))
	case a.lastSetting && len(a.lastTimes) > 0:
		return upperFirst(fmt.Sprintf(pick([]string{
			"%s — that anchors us in time.",
			"%s — good, now I know when we are.",
		}, n), joinAnd(a.lastTimes)))
	case len(a.lastNames) > 0 && len(a.lastPlaces) > 0:
		return upperFirst(fmt.Sprintf(pick([]string{
			"%s — I can already picture it.",
			"%s. That's a strong start.",
		}, n), joinAnd(slices.Concat(a.lastNames, a.lastPlaces))))
	case len(a.lastNames) > 0:
		return upperFirst(fmt.Sprintf(pick([]string{
			"%s — I'd like to know more.",
			"I like %s already.",
			"I want to hear more about %s.",
		}, n), joinAnd(a.lastNames)))
	case len(a.lastPlaces) > 0:
		return upperFirst(fmt.Sprintf(pick([]string{
			"%s — I can already picture it.",
			"%s makes a vivid setting.",
			"Good, %s gives us somewhere to stand.",
		}, n), joinAnd(a.lastPlaces)))
	case len(a.lastTimes) > 0:
		return upperFirst(fmt.Sprintf(pick([]string{
			"%s — that anchors us in time.",
			"So, %s. Good to know the period.",
		}, n), joinAnd(a.lastTimes)))
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
	s := pick([]string{"So ", "Got it — ", "I hear you: "}, n) + p
	if !strings.HasSuffix(p, "…") {
		s += "."
	}
	return s
}

func isGreeting(w string) bool {
	switch strings.ToLower(strings.TrimRightFunc(w, unicode.IsPunct)) {
	case "hi", "hello", "hey", "hiya", "howdy", "greetings", "yo":
		return true
	}
	return false
}

// summary lists what was gathered, once, when every topic is covered: who,
// where, when — "your grandmother Ada Whitlock, on Gull Rock in Maine, in
// winter 1962".
func (a *analysis) summary() string {
	if a.summarized {
		return ""
	}
	var parts []string
	people := slices.Clone(a.names)
	if s := a.subject; s != nil && s.kind != kindNone {
		if i := slices.Index(people, s.name); s.name != "" && i >= 0 {
			people[i] = s.phrase + " " + s.name
		} else if len(people) == 0 {
			people = []string{s.phrase}
		}
	}
	if len(people) > 0 {
		parts = append(parts, joinAnd(people))
	}
	if len(a.places) > 0 {
		parts = append(parts, placeList(a.places))
	}
	if len(a.times) > 0 {
		parts = append(parts, "in "+joinAnd(a.times))
	}
	if len(parts) == 0 {
		return ""
	}
	return summaryLead + " " + strings.Join(parts, ", ") + "."
}

// placeList renders places with their prepositions, nesting a place that
// was named as lying in the one before it: "on Gull Rock in Maine".
func placeList(places []place) string {
	if len(places) > 3 {
		places = places[:3]
	}
	var b strings.Builder
	for i, p := range places {
		prep := p.prep
		nested := i > 0 && p.inner != "" && places[i-1].name == p.inner
		switch {
		case nested && prep == ",":
			b.WriteString(", " + p.name)
			continue
		case nested:
			b.WriteString(" in " + p.name)
			continue
		case i > 0:
			b.WriteString(" and ")
		}
		switch prep {
		case "on", "at", "near":
		default:
			prep = "in"
		}
		b.WriteString(prep + " " + p.name)
	}
	return b.String()
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
// interviewer can say back: pronouns swapped, trimmed to a few words. A
// trimmed paraphrase ends at a word boundary with a single "…", never on a
// dangling "and", "of", "the".
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
		if i == 0 && !startsName(names, core) {
			w = lowerFirst(w)
		}
		out = append(out, w)
	}
	trim := func(s string) string {
		return strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) })
	}
	if truncated {
		// End on a content word: drop trailing punctuation, and words like
		// "and", "of", "the" that leave the phrase dangling.
		for len(out) > 1 {
			core := trim(out[len(out)-1])
			if core == "" || danglingWord(strings.ToLower(core)) {
				out = out[:len(out)-1]
				continue
			}
			out[len(out)-1] = core
			break
		}
	}
	p := trim(strings.Join(out, " "))
	if p == "" {
		return ""
	}
	if truncated {
		p += "…"
	}
	return p
}

// danglingWord reports whether w cannot end a trimmed phrase: conjunctions,
// prepositions, articles, possessives and auxiliaries.
func danglingWord(w string) bool {
	switch w {
	case "and", "or", "but", "so", "nor", "yet", "then", "because", "if", "when", "while",
		"as", "that", "which", "who", "whose", "where", "though", "although", "until",
		"of", "to", "in", "on", "at", "by", "for", "from", "with", "into", "onto", "about",
		"over", "under", "after", "before", "during", "through", "without", "like", "than",
		"the", "a", "an", "your", "his", "her", "their", "its", "this", "these", "those",
		"is", "are", "was", "were", "be", "been", "has", "have", "had", "will", "would",
		"can", "could", "should", "not", "very", "just", "also", "still":
		return true
	}
	return false
}

// startsName reports whether w is the first word of one of names ("Ada"
// of "Ada Whitlock", "Coast" of "the Coast Guard").
func startsName(names []string, w string) bool {
	for _, n := range names {
		first, _, _ := strings.Cut(strings.TrimPrefix(n, "the "), " ")
		if first == w || strings.TrimSuffix(w, "'s") == first {
			return true
		}
	}
	return false
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

// token is one word of a message: letters, digits, inner apostrophes and
// hyphens, with ’ read as '.
type token struct {
	text string
	brk  bool // punctuation, not just space, separates it from the previous token
}

func tokenize(s string) []token {
	var (
		toks []token
		cur  strings.Builder
		brk  bool
	)
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		if t := strings.Trim(cur.String(), "'-"); t != "" {
			toks = append(toks, token{text: t, brk: brk})
			brk = false
		} else {
			brk = true // a lone dash or quote
		}
		cur.Reset()
	}
	for _, r := range s {
		if r == '’' {
			r = '\''
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-' {
			cur.WriteRune(r)
			continue
		}
		flush()
		if !unicode.IsSpace(r) {
			brk = true
		}
	}
	flush()
	return toks
}

func lowerAt(toks []token, i int) string {
	if i < 0 || i >= len(toks) {
		return ""
	}
	return strings.ToLower(toks[i].text)
}

// entities are the concrete details found in one message.
type entities struct {
	names, places, times []string
	placeRefs            []place // places, with how they were introduced
}

// place is a place name and the preposition that introduced it ("on Gull
// Rock"; "," for "Lisbon, Portugal"); inner is the place named just before it when the message put it
// inside this one: in "on Gull Rock in Maine", Maine's inner is "Gull Rock".
type place struct {
	name, prep, inner string
}

// extractEntities finds names (runs of capitalised words, "Ada Whitlock",
// "the Coast Guard"; places when they follow a place preposition), years
// and decades in a message. A capitalised word opening a sentence counts
// only when it reads like a name: part of a run, possessive, or followed by
// a verb like "is".
func extractEntities(msg string) entities {
	var e entities
	for _, sentence := range splitSentences(msg) {
		toks := tokenize(sentence)
		lastPlaceEnd, lastPlace := -2, ""
		for i := 0; i < len(toks); i++ {
			lower := strings.ToLower(toks[i].text)
			if isTimeWord(lower) {
				e.times = appendNew(e.times, timeLabel(toks, i))
				continue
			}
			parts, end, possessive := nameRun(toks, i)
			if len(parts) == 0 {
				continue
			}
			start := i
			i = end - 1
			if start == 0 && len(parts) == 1 && !possessive && !nameFollower(lowerAt(toks, end)) {
				continue
			}
			name := strings.Join(parts, " ")
			k := start - 1 // the word before the run, skipping "the"
			if k >= 0 && !toks[start].brk && lowerAt(toks, k) == "the" {
				name = "the " + name
				k--
			}
			prep, inner := "", ""
			switch {
			case k >= 0 && !toks[k+1].brk && isPlacePreposition(lowerAt(toks, k)):
				prep = lowerAt(toks, k)
				if prep == "in" && k-1 == lastPlaceEnd && !toks[k].brk {
					inner = lastPlace // "on Gull Rock in Maine"
				}
			case start-1 == lastPlaceEnd && toks[start].brk && !possessive &&
				(end == len(toks) || toks[end].brk || isPlacePreposition(lowerAt(toks, end))):
				prep, inner = ",", lastPlace // "in Lisbon, Portugal"
			}
			if prep != "" {
				if !contains(e.places, name) {
					e.places = append(e.places, name)
					e.placeRefs = append(e.placeRefs, place{name: name, prep: prep, inner: inner})
				}
				lastPlaceEnd, lastPlace = end-1, name
			} else {
				e.names = appendNew(e.names, name)
			}
		}
	}
	return e
}

// nameRun returns the run of name words starting at toks[i] — capitalised
// words, joined by "of", "de", "van"… between two of them — and the index
// after it. A possessive ("Ada's") ends the run.
func nameRun(toks []token, i int) (parts []string, end int, possessive bool) {
	j := i
	if isTitle(lowerAt(toks, i)) && j+1 < len(toks) && !toks[j+1].brk && isNameWord(stripPossessive(toks[j+1].text)) {
		parts = append(parts, toks[i].text)
		j++
	}
	for ; j < len(toks); j++ {
		if j > i && toks[j].brk {
			break
		}
		w := toks[j].text
		if len(parts) > 0 && isNameConnector(strings.ToLower(w)) && j+1 < len(toks) && !toks[j+1].brk &&
			isNameWord(stripPossessive(toks[j+1].text)) {
			parts = append(parts, strings.ToLower(w))
			continue
		}
		base := stripPossessive(w)
		if !isNameWord(base) {
			break
		}
		parts = append(parts, base)
		if base != w {
			return parts, j + 1, true
		}
	}
	return parts, j, false
}

func stripPossessive(w string) string {
	return strings.TrimSuffix(strings.TrimSuffix(w, "'s"), "'S")
}

// isNameWord: capitalised, two letters or more, not an acronym, not a
// common word.
func isNameWord(w string) bool {
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r) && utf8.RuneCountInString(w) >= 2 && !isAllUpper(w) && !notAName(strings.ToLower(w))
}

func isNameConnector(w string) bool {
	switch w {
	case "of", "de", "da", "di", "do", "du", "del", "della", "van", "von", "der", "den", "la", "le", "y", "bin", "al":
		return true
	}
	return false
}

func isTitle(w string) bool {
	switch w {
	case "mr", "mrs", "ms", "dr", "st", "mt":
		return true
	}
	return false
}

// findSubject finds "a film/story/movie about X" (or "it's about X") in a
// message and returns X.
func findSubject(toks []token) *subject {
	for i := 1; i < len(toks); i++ {
		if lowerAt(toks, i) != "about" || toks[i].brk || !introducesSubject(toks, i) {
			continue
		}
		from := i + 1
		to := from
		for to < len(toks) && to-from < 6 && !(to > from && toks[to].brk) && !(to == from && toks[to].brk) &&
			!subjectStop(lowerAt(toks, to)) {
			to++
		}
		s := &subject{from: from, to: to, rest: len(toks) - to}
		var phrase []string
		content := false
		for j := from; j < to; j++ {
			w := toks[j].text
			if j > from && isNameWord(stripPossessive(w)) {
				parts, _, _ := nameRun(toks, j)
				s.name = strings.Join(parts, " ")
				break
			}
			lower := strings.ToLower(w)
			if sw, ok := swapPronoun(lower); ok {
				lower = sw
			}
			if !determiner(lower) {
				content = true
			}
			phrase = append(phrase, lower)
		}
		if !content {
			return nil
		}
		s.phrase = strings.Join(phrase, " ")
		s.kind = personKindOf(phrase[len(phrase)-1])
		return s
	}
	return nil
}

// introducesSubject reports whether the "about" at toks[i] follows a film
// word ("a film about") or "it's"/"this is" ("it's about").
func introducesSubject(toks []token, i int) bool {
	switch lowerAt(toks, i-1) {
	case "film", "movie", "story", "documentary", "doc", "short", "tale", "biopic", "drama", "comedy", "piece",
		"it's", "that's", "story's", "film's":
		return true
	case "is", "was":
		switch lowerAt(toks, i-2) {
		case "it", "this", "that", "story", "film", "movie":
			return true
		}
	}
	return false
}

func subjectStop(w string) bool {
	switch w {
	case "who", "whose", "that", "which", "and", "but", "or", "when", "where", "while", "because",
		"as", "since", "in", "at", "on", "during", "with", "from", "after", "before", "set", "is",
		"was", "are", "were", "has", "had", "for", "to", "like", "through", "until", "who's", "how",
		"why", "what":
		return true
	}
	return false
}

func determiner(w string) bool {
	switch w {
	case "a", "an", "the", "your", "his", "her", "their", "its", "this", "that", "these", "those",
		"some", "it", "him", "them", "you", "me", "us", "one", "two", "three", "late", "dear", "own":
		return true
	}
	return false
}

// subject is what a "film about …" message says the story is about.
type subject struct {
	phrase   string     // "your grandmother", pronouns swapped
	kind     personKind // kindNone when the subject is not a person
	name     string     // the subject's name, if given ("my grandmother Rosa", "her name is Ada")
	from, to int        // the subject's token span in its message
	rest     int        // tokens after the subject in its message
}

type personKind int

const (
	kindNone personKind = iota
	kindShe
	kindHe
	kindThey  // one person, no gender
	kindGroup // several people
)

func personKindOf(w string) personKind {
	switch w {
	case "grandmother", "grandma", "granny", "nana", "mother", "mom", "mum", "sister", "daughter",
		"wife", "aunt", "girlfriend", "stepmother", "niece", "woman", "girl", "lady", "widow",
		"queen", "princess", "nun", "actress", "fiancée", "heroine", "stepsister", "godmother":
		return kindShe
	case "grandfather", "grandpa", "granddad", "father", "dad", "brother", "son", "husband",
		"uncle", "boyfriend", "stepfather", "nephew", "man", "boy", "king", "prince", "priest",
		"widower", "fisherman", "stepbrother", "godfather", "hero":
		return kindHe
	case "friend", "cousin", "partner", "teacher", "neighbor", "neighbour", "boss", "mentor",
		"fiancé", "fiance", "keeper", "child", "kid", "baby", "stranger", "doctor", "nurse",
		"soldier", "artist", "musician", "lover", "protagonist", "grandchild", "spouse", "parent",
		"sibling", "person", "student", "orphan", "immigrant", "refugee", "writer", "painter":
		return kindThey
	case "family", "parents", "grandparents", "sisters", "brothers", "friends", "kids", "children",
		"twins", "couple", "siblings", "cousins", "lovers", "neighbors", "neighbours", "people",
		"women", "men", "girls", "boys", "band", "crew", "team":
		return kindGroup
	}
	return kindNone
}

// peopleQuestion asks about the subject the person named, by pronoun.
func (s *subject) peopleQuestion(n int) string {
	ref := s.phrase
	if first, rest, ok := strings.Cut(ref, " "); ok {
		switch first {
		case "a", "an": // "a lighthouse keeper" → "this lighthouse keeper"
			ref = "this " + rest
		case "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "some", "several":
			ref = "the " + ref
		}
	}
	switch s.kind {
	case kindShe, kindHe:
		p := "she"
		if s.kind == kindHe {
			p = "he"
		}
		return pick([]string{
			fmt.Sprintf("Tell me about %s. Who is %s, and what is %s like?", ref, p, p),
			fmt.Sprintf("Who is %s? Tell me about %s.", p, ref),
		}, n)
	case kindThey:
		return pick([]string{
			fmt.Sprintf("Tell me about %s. Who are they, and what are they like?", ref),
			fmt.Sprintf("Who is %s? Tell me about them.", ref),
		}, n)
	case kindGroup:
		return pick([]string{
			fmt.Sprintf("Tell me about %s. Who are they, and what is each of them like?", ref),
			fmt.Sprintf("Who are they? Tell me about %s.", ref),
		}, n)
	}
	return questions(topicPeople)[0] // "Who is at the centre of this story…"
}

// givenName finds "her name is X", "he's called X", "named X" in a message
// and returns X when the pronoun (if any) fits kind.
func givenName(toks []token, kind personKind) string {
	for i := range toks {
		var at int
		switch lowerAt(toks, i) {
		case "name", "names":
			if v := lowerAt(toks, i+1); v != "is" && v != "was" {
				continue
			}
			at = i + 2
			if !pronounFits(lowerAt(toks, i-1), kind) {
				continue
			}
		case "name's":
			at = i + 1
			if !pronounFits(lowerAt(toks, i-1), kind) {
				continue
			}
		case "named", "called":
			at = i + 1
		default:
			continue
		}
		if at < len(toks) && isNameWord(stripPossessive(toks[at].text)) {
			parts, _, _ := nameRun(toks, at)
			return strings.Join(parts, " ")
		}
	}
	return ""
}

func pronounFits(p string, kind personKind) bool {
	switch p {
	case "her":
		return kind == kindShe
	case "his":
		return kind == kindHe
	case "their":
		return kind == kindThey
	}
	return true
}

// mentionsPeople reports whether a people word occurs in toks outside the
// span [from, to) — the subject of "a film about my grandmother" says who
// the story is about, not who she is.
func mentionsPeople(toks []token, from, to int) bool {
	for i, t := range toks {
		if i >= from && i < to {
			continue
		}
		w := strings.ToLower(stripPossessive(t.text))
		if slices.Contains(peopleWords(), w) {
			return true
		}
	}
	return false
}

func splitSentences(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '.', '!', '?', '\n', ';', ':', '"', '“', '”', '(', ')', '—', '–':
			return true
		}
		return false
	})
}

// isTimeWord matches years (1500–2099) and decades (1980s, 80s).
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

// timeLabel labels the time word toks[i]: "the 80s", "1962", and with the
// season or month before it, "winter 1962" ("the winter of 1962"), "June 1962".
func timeLabel(toks []token, i int) string {
	w := toks[i].text
	if strings.HasSuffix(w, "s") { // "80s", "1980s"
		return "the " + w
	}
	k := i - 1
	if lowerAt(toks, k) == "of" && !toks[i].brk {
		k--
	}
	if k >= 0 && !toks[k+1].brk {
		switch s := lowerAt(toks, k); s {
		case "winter", "spring", "summer", "autumn", "fall":
			return s + " " + w
		case "january", "february", "march", "april", "may", "june", "july", "august",
			"september", "october", "november", "december":
			return upperFirst(s) + " " + w
		}
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
		"wants", "wanted", "loves", "loved", "runs", "ran", "grew", "meets", "met", "finds", "found",
		"kept", "keeps", "said", "says", "left", "leaves", "died", "dies", "never", "always":
		return true
	}
	return false
}

func isPlacePreposition(w string) bool {
	switch w {
	case "in", "at", "on", "from", "to", "near", "across", "outside", "inside", "through", "around",
		"into", "towards", "toward":
		return true
	}
	return false
}

// notAName lists capitalised words that are not characters or places:
// words that open sentences (pronouns, articles, prepositions,
// conjunctions, common adverbs), titles and kin words that precede a name,
// days, months, seasons and holidays.
func notAName(w string) bool {
	switch w {
	case "i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "god", "mr", "mrs", "ms", "dr",
		"it", "he", "she", "they", "we", "you", "that", "there", "here", "what", "who", "where",
		"when", "why", "how", "this", "these", "those", "the", "a", "an", "his", "her", "their",
		"our", "my", "your", "its", "let", "let's", "one", "everyone", "everybody", "nobody", "someone",
		"somebody", "nothing", "everything", "today", "yesterday", "tomorrow", "yes", "no",
		"him", "them", "us", "me", "hers", "theirs", "mine", "yours", "whose", "which", "whom",
		"in", "on", "at", "by", "for", "with", "from", "to", "of", "into", "onto", "about", "after",
		"before", "during", "since", "until", "over", "under", "without", "through", "across",
		"and", "but", "or", "so", "nor", "yet", "then", "if", "because", "although", "though",
		"while", "once", "also", "still", "just", "even", "only", "now", "later", "soon", "maybe",
		"perhaps", "finally", "eventually", "suddenly", "meanwhile", "sometimes", "every", "each",
		"all", "some", "many", "most", "both", "any", "another", "other", "not", "well", "oh",
		"ah", "actually", "basically", "anyway", "like", "as", "would", "could", "should", "can",
		"will", "do", "does", "did", "is", "are", "was", "were", "be", "been", "have", "has", "had",
		"thanks", "thank", "please", "hi", "hello", "hey", "sorry", "dear", "poor", "sweet",
		"young", "brave", "mom", "mum", "mother", "dad", "father", "grandma", "grandpa", "granny",
		"nana", "aunt", "auntie", "uncle", "film", "movie", "story", "scene", "act", "chapter",
		"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
		"january", "february", "march", "april", "may", "june", "july", "august",
		"september", "october", "november", "december", "christmas", "easter",
		"winter", "spring", "summer", "autumn", "english", "internet", "tv":
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

// settingPhrases mark a message that is about where and when.
func settingPhrases() []string {
	return []string{
		"set in", "set on", "set at", "set during", "takes place", "take place", "took place",
		"setting", "happens in", "happened in", "it's set", "is set",
	}
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
	return slices.Contains(list, s)
}

// joinAnd lists up to three items: "A", "A and B", "A, B and C".
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

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
