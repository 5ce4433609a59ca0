package llm

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/storyd/storyd/story"
)

// Limits of what the offline extractor writes.
const (
	offlineDescMax      = 400 // bytes of a description it builds
	offlineDescMaxSents = 3   // sentences it puts in one description
	offlineItemMax      = 300 // bytes of one plot point or theme
	offlineThemeWords   = 16  // a longer "theme" is a premise, not a theme
)

// OfflineExtractor is a deterministic, network-free dossier extractor for
// running storyd without a model. It reads only the person's words (never
// the interviewer's) and finds, with plain heuristics:
//
//   - characters: capitalised name runs that are not places ("Ada Whitlock",
//     "Grandpa Chen"), merged with their short forms ("Ada") and nicknames
//     ("everyone calls her Little Mei"), described by the sentences that
//     introduce them or start with their pronoun;
//   - relationships: "my grandmother, Ada", "her best friend Jun", "their
//     father, Amos", "Her only friend is Tom", "two brothers, Eli and Caleb",
//     "teams up with", "in love with", "the relationship between X and Y";
//   - locations: names after a place preposition ("on Gull Rock", "outside
//     Dalhart"), "the coast of Maine", or with a place word ("Port Clyde",
//     "the Xinyi district", "Route 66");
//   - themes: "it's about …", "I want it to be about …", "themes: …",
//     "also about …";
//   - plot points: sentences with an event verb or a time marker ("loses",
//     "agrees", "in the morning", "the ending");
//   - title ("it's called …"), genre words ("comedy heist") and tone words
//     in sentences about the tone ("bittersweet, quiet").
//
// Its answer is the current dossier with what it found added: it never
// removes or rewrites a filled field. It is immutable after construction and
// safe for concurrent use.
type OfflineExtractor struct {
	themeRes []*regexp.Regexp // group 1 holds the themes
	alsoRe   *regexp.Regexp   // "Also about …" after a theme sentence
	titleRe  *regexp.Regexp   // the words before a title
}

// titleRegexp matches the words before a title ("it's called", "working
// title is", "call it").
func titleRegexp() *regexp.Regexp {
	const apos = `(?:'|’)`
	return regexp.MustCompile(`(?i)(?:\b(?:it|this|film|movie|story|short|script|project|documentary)` + apos + `?s?\s+(?:is\s+)?(?:called|titled|named)|\btitled|\b(?:working\s+)?title\s+(?:is|would be|will be)|\btitle\s*:|\b(?:call|calling)\s+it)\s*[:\-–—]?\s*`)
}

// NewOfflineExtractor returns the offline extractor.
func NewOfflineExtractor() *OfflineExtractor {
	const apos = `(?:'|’)`
	return &OfflineExtractor{
		themeRes: []*regexp.Regexp{
			regexp.MustCompile(`(?i)\bthem(?:e|es|atically)\b\s*(?:[:\-–—]|\bare\b|\bis\b|\binclude\b|\bincludes\b|\bof\b|\blike\b)\s*(.+)`),
			regexp.MustCompile(`(?i)\b(?:it` + apos + `s|it is|it` + apos + `ll be|it will be|this is|that` + apos + `s|(?:film|story|movie)` + apos + `s|(?:film|story|movie|short) is|want it to be|wanted it to be|it should be|it was)\s+(?:really\s+|mostly\s+|all\s+|also\s+|ultimately\s+|deep down\s+)?about\s+(.+)`),
			regexp.MustCompile(`(?i)\bexplores\s+(.+)`),
		},
		alsoRe:  regexp.MustCompile(`(?i)^\s*(?:and\s+)?also\s+(?:about\s+|that\s+)?(.+)`),
		titleRe: titleRegexp(),
	}
}

// Name identifies the extractor: "offline".
func (e *OfflineExtractor) Name() string { return "offline" }

// Extract returns req.Current with what the new turns' user text adds. It
// reports no tokens (no model is used) and fails only when ctx has ended.
// The same request always gets the same answer.
func (e *OfflineExtractor) Extract(ctx context.Context, req ExtractRequest) (ExtractResult, error) {
	if err := ctx.Err(); err != nil {
		return ExtractResult{}, fmt.Errorf("llm: offline extract: %w", err)
	}
	if !hasNewText(req.Turns) {
		return unchanged(req.Current), nil
	}
	b := newDossierBuilder(req.Current)
	var sents []*xsent
	for _, t := range req.Turns {
		text := t.User
		if title := e.findTitle(text); title != "" {
			b.out.Title = title
			// The title's words name the film, not a person or a place
			// ("The Keeper of Gull Rock").
			text = strings.Replace(text, title, "the film", 1)
		}
		for _, s := range splitTextSentences(text) {
			sents = append(sents, newXSent(s))
		}
	}
	// Pass 1: who is a person and what is a place, across all new turns,
	// so that "Mei" opening a sentence or "to Tom" resolve to people.
	for _, s := range sents {
		s.hits = findNames(s.toks)
		for _, h := range s.hits {
			if h.kind == hitPlace && !h.weak {
				b.knownPlaces[strings.ToLower(h.name)] = true
			}
		}
	}
	for _, s := range sents {
		for _, h := range s.hits {
			if h.kind == hitPerson && !h.tentative && !b.knownPlaces[strings.ToLower(h.name)] {
				b.knownPeople.add(strings.ToLower(h.name), 0)
			}
		}
	}
	// Pass 2: everything else, in order.
	prevThemes := false
	for _, s := range sents {
		if err := ctx.Err(); err != nil {
			return ExtractResult{}, fmt.Errorf("llm: offline extract: %w", err)
		}
		themes := e.findThemes(s, prevThemes, b)
		prevThemes = len(themes) > 0
		for _, th := range themes {
			b.addTheme(th)
		}
		b.sentence(s, len(themes) > 0)
	}
	b.finish()
	out := b.out
	out.Normalize()
	if err := out.Validate(); err != nil {
		return ExtractResult{}, invalidExtraction("offline dossier", err)
	}
	return ExtractResult{Snapshot: out}, nil
}

// findTitle returns the title the person gave in msg, if any: quoted after
// "it's called", "the title is", "call it"…, or a capitalised phrase there.
func (e *OfflineExtractor) findTitle(msg string) string { return findTitle(e.titleRe, msg) }

// findTitle returns the title msg gives after a match of titleRe ("It's
// called The Keeper of Gull Rock."), or "".
func findTitle(titleRe *regexp.Regexp, msg string) string {
	loc := titleRe.FindStringIndex(msg)
	if loc == nil {
		return ""
	}
	rest := msg[loc[1]:]
	r, size := utf8.DecodeRuneInString(rest)
	if closing, ok := closingQuote(r); ok {
		inner := rest[size:]
		if i := strings.IndexRune(inner, closing); i > 0 {
			return strings.TrimSpace(inner[:i])
		}
		return ""
	}
	if !unicode.IsUpper(r) && !unicode.IsDigit(r) {
		return ""
	}
	if i := strings.IndexAny(rest, ".!?\n,;:"); i >= 0 {
		rest = rest[:i]
	}
	words := strings.Fields(rest)
	if len(words) == 0 || len(words) > 10 || words[0] == "I" {
		return ""
	}
	return strings.Join(words, " ")
}

func closingQuote(r rune) (rune, bool) {
	switch r {
	case '"', '\'', '*':
		return r, true
	case '“':
		return '”', true
	case '‘':
		return '’', true
	case '«':
		return '»', true
	}
	return 0, false
}

// findThemes returns the themes s states. prev says whether the sentence
// before stated themes, so that "Also about quiet love." continues them.
func (e *OfflineExtractor) findThemes(s *xsent, prev bool, b *dossierBuilder) []string {
	var raw string
	explicit := false
	for i, re := range e.themeRes {
		if m := re.FindStringSubmatch(s.text); m != nil {
			raw, explicit = m[1], i == 0
			break
		}
	}
	if raw == "" && prev {
		if m := e.alsoRe.FindStringSubmatch(s.text); m != nil {
			raw = m[1]
		}
	}
	if raw == "" {
		return nil
	}
	parts := splitThemes(raw)
	if !explicit && len(parts) > 0 && b.namesPerson(parts[0]) {
		return nil // "it's about my grandmother, Rosa, who…": who, not what
	}
	var out []string
	for _, p := range parts {
		if !explicit && b.namesPerson(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// splitThemes splits "duty and what happens…, grief, and brothers…" into
// its phrases. " and " splits only after a short phrase, so a clause keeps
// its own "and".
func splitThemes(raw string) []string {
	if i := strings.IndexAny(raw, ";:()—–"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.Index(raw, " - "); i >= 0 {
		raw = raw[:i]
	}
	var out []string
	for _, part := range strings.Split(raw, ",") {
		for part != "" {
			part = trimThemePhrase(part)
			head, tail, ok := strings.Cut(part, " and ")
			if ok && len(strings.Fields(head)) <= 3 {
				if head = trimThemePhrase(head); head != "" {
					out = append(out, head)
				}
				part = tail
				continue
			}
			if part != "" {
				out = append(out, part)
			}
			break
		}
	}
	kept := out[:0]
	for _, p := range out {
		if n := len(strings.Fields(p)); n > 0 && n <= offlineThemeWords {
			kept = append(kept, p)
		}
	}
	return kept
}

func trimThemePhrase(p string) string {
	p = strings.TrimSpace(p)
	for {
		lower := strings.ToLower(p)
		trimmed := false
		for _, pre := range []string{"and ", "also ", "or ", "the theme of ", "themes of ", "about ", "that "} {
			if strings.HasPrefix(lower, pre) {
				p, trimmed = strings.TrimSpace(p[len(pre):]), true
				break
			}
		}
		if !trimmed {
			break
		}
	}
	return strings.TrimRightFunc(p, func(r rune) bool { return unicode.IsPunct(r) && r != '\'' && r != '’' || unicode.IsSpace(r) })
}

// xsent is one sentence of the person's text, tokenised.
type xsent struct {
	text  string
	toks  []token
	spans [][2]int // byte span of each token in text
	hits  []nameHit
}

func newXSent(text string) *xsent {
	toks, spans := tokenizeSpans(text)
	return &xsent{text: text, toks: toks, spans: spans}
}

// splitTextSentences splits s into trimmed sentences that keep their
// punctuation. A period ends a sentence only before a space, a quote or the
// end, so "14.5" stays whole.
func splitTextSentences(s string) []string {
	var out []string
	start := 0
	cut := func(end int) {
		if t := strings.TrimSpace(s[start:end]); t != "" {
			out = append(out, t)
		}
		start = end
	}
	for i, r := range s {
		if i < start {
			continue // inside closing quotes already taken
		}
		end := i + utf8.RuneLen(r)
		switch r {
		case '\n', '!', '?', '。', '！', '？', '…':
		case '.':
			next, _ := utf8.DecodeRuneInString(s[end:])
			if end < len(s) && !unicode.IsSpace(next) && !strings.ContainsRune(`"”’')`, next) {
				continue
			}
		default:
			continue
		}
		for end < len(s) {
			next, size := utf8.DecodeRuneInString(s[end:])
			if !strings.ContainsRune(`"”’')!?.`, next) {
				break
			}
			end += size
		}
		cut(end)
	}
	cut(len(s))
	return out
}

// tokenizeSpans is [tokenize] that also returns each token's byte span in s.
func tokenizeSpans(s string) ([]token, [][2]int) {
	var (
		toks  []token
		spans [][2]int
		cur   strings.Builder
		from  = -1
		brk   bool
	)
	flush := func(end int) {
		if cur.Len() == 0 {
			return
		}
		if t := strings.Trim(cur.String(), "'-"); t != "" {
			toks = append(toks, token{text: t, brk: brk})
			spans = append(spans, [2]int{from, end})
			brk = false
		} else {
			brk = true
		}
		cur.Reset()
		from = -1
	}
	for i, r := range s {
		if r == '’' {
			r = '\''
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-' {
			if from < 0 {
				from = i
			}
			cur.WriteRune(r)
			continue
		}
		flush(i)
		if !unicode.IsSpace(r) {
			brk = true
		}
	}
	flush(len(s))
	return toks, spans
}

// hitKind says what a capitalised name is.
type hitKind int

const (
	hitOther  hitKind = iota // an event, a boat, an institution
	hitPerson                // a character
	hitPlace                 // a location
)

// nameHit is one name found in a sentence.
type nameHit struct {
	start, end int // token span, a kin title included ("Grandpa Chen")
	name       string
	kind       hitKind
	possessive bool
	weak       bool // a place only because of a weak preposition ("to Tom")
	tentative  bool // a lone capitalised word opening the sentence
}

// findNames finds and classifies the names in one sentence.
func findNames(toks []token) []nameHit {
	var hits []nameHit
	for i := 0; i < len(toks); i++ {
		parts, end, poss := nameRun(toks, i)
		if len(parts) == 0 {
			continue
		}
		h := nameHit{start: i, end: end, possessive: poss}
		i = end - 1
		if k := h.start - 1; k >= 0 && !toks[h.start].brk && isKinTitle(lowerAt(toks, k)) && startsUpper(toks[k].text) {
			h.start = k
			parts = append([]string{toks[k].text}, parts...)
		}
		k := h.start - 1 // the word before the name, "the" skipped
		the := false
		if k >= 0 && !toks[h.start].brk && lowerAt(toks, k) == "the" {
			the = true
			k--
		}
		prep := ""
		if k >= 0 && !toks[k+1].brk {
			prep = lowerAt(toks, k)
		}
		headed := false
		if !poss {
			j := h.end
			if j < len(toks) && !toks[j].brk && isDigits(toks[j].text) && numberedPlace(parts[len(parts)-1]) {
				parts = append(parts, toks[j].text) // "Route 66"
				h.end++
				headed = true
			} else if j < len(toks) && !toks[j].brk && isPlaceHead(lowerAt(toks, j)) {
				parts = append(parts, lowerAt(toks, j)) // "Xinyi district"
				h.end++
				headed = true
			} else if j+1 < len(toks) && !toks[j].brk && !toks[j+1].brk &&
				isPlaceModifier(lowerAt(toks, j)) && isPlaceHead(lowerAt(toks, j+1)) {
				parts = append(parts, lowerAt(toks, j), lowerAt(toks, j+1)) // "Shilin night market"
				h.end += 2
				headed = true
			}
		}
		h.name = strings.Join(parts, " ")
		single := len(parts) == 1
		switch {
		case poss:
			h.kind = hitPerson
		case h.end < len(toks) && !toks[h.end].brk && isCalendarWord(lowerAt(toks, h.end)):
			h.kind = hitOther // "Black Sunday"
		case isInstitution(parts[len(parts)-1]):
			if isStrongPlacePrep(prep) {
				h.kind = hitPlace
			}
		case headed || hasPlaceWord(parts):
			h.kind = hitPlace
		case isStrongPlacePrep(prep):
			h.kind = hitPlace
		case isWeakPlacePrep(prep):
			h.kind, h.weak = hitPlace, true
		case prep == "of" && k >= 1 && !toks[k].brk && isPlaceNoun(lowerAt(toks, k-1)):
			h.kind = hitPlace // "the coast of Maine"
		case prep == "for" && k >= 1 && !toks[k].brk && isDepartureVerb(lowerAt(toks, k-1)):
			h.kind, h.weak = hitPlace, true // "leave for California"
		case len(hits) > 0 && hits[len(hits)-1].kind == hitPlace && hits[len(hits)-1].end == h.start &&
			toks[h.start].brk && (h.end == len(toks) || toks[h.end].brk):
			h.kind = hitPlace // "Lisbon, Portugal"
		case the:
			h.kind = hitOther // "the Marianne", "the Dust Bowl"
		default:
			h.kind = hitPerson
			h.tentative = h.start == 0 && single && !nameFollower(lowerAt(toks, h.end))
		}
		hits = append(hits, h)
	}
	// "Eli and Caleb Sutter": Eli is a Sutter too.
	for i := 0; i+1 < len(hits); i++ {
		a, b := &hits[i], &hits[i+1]
		if a.kind == hitPerson && b.kind == hitPerson && a.start == a.end-1 && !a.possessive &&
			lowerAt(toks, a.end) == "and" && b.start == a.end+1 && !toks[a.end].brk && !toks[b.start].brk &&
			b.end-b.start == 2 && !isKinTitle(lowerAt(toks, b.start)) {
			a.name += " " + stripPossessive(toks[b.end-1].text)
		}
	}
	return hits
}

// nameIndex finds names by their words: a name matches another when the
// words of one are all words of the other ("Ada" and "Ada Whitlock").
type nameIndex struct {
	words  [][]string       // the words of each name added
	owners []int            // what each name refers to
	byWord map[string][]int // word → indexes of the names holding it
	exact  map[string]int   // lower-case name → its first owner
}

// add records a lower-case name of owner; a name it holds already is kept
// with its first owner.
func (x *nameIndex) add(lower string, owner int) {
	if _, ok := x.exact[lower]; ok {
		return
	}
	if x.exact == nil {
		x.exact, x.byWord = make(map[string]int), make(map[string][]int)
	}
	x.exact[lower] = owner
	ws := nameWords(lower)
	n := len(x.words)
	x.words = append(x.words, ws)
	x.owners = append(x.owners, owner)
	for _, w := range ws {
		if l := x.byWord[w]; len(l) == 0 || l[len(l)-1] != n {
			x.byWord[w] = append(l, n)
		}
	}
}

// find returns the owner of lower: of the exact name if there is one, else
// the lowest owner of a name whose words hold its words or are held by
// them; -1 when none.
func (x *nameIndex) find(lower string) int {
	if o, ok := x.exact[lower]; ok {
		return o
	}
	ws := nameWords(lower)
	best := -1
	for _, w := range ws {
		for _, n := range x.byWord[w] {
			o := x.owners[n]
			if (best < 0 || o < best) && (subsetOf(ws, x.words[n]) || subsetOf(x.words[n], ws)) {
				best = o
			}
		}
	}
	return best
}

// mention is a character named (hit != nil) or referred to by the pronoun
// opening a sentence.
type mention struct {
	ci  int
	hit *nameHit
}

// relation is a relationship found, rendered once names are final.
type relation struct {
	ci     int
	form   relForm
	role   string
	others []int // characters; empty with relOfStoryteller
}

type relForm int

const (
	relOf            relForm = iota // "grandmother of Ada Whitlock"
	relOfStoryteller                // "grandmother of the storyteller"
	relNamed                        // "Tom Pruitt (only real friend)"
	relPhrase                       // "teams up with Grandpa Chen"
	relWith                         // "relationship with Grandpa Chen"
)

// charState is what the builder knows about one character of out.
type charState struct {
	fresh   bool // created by this extraction
	descN   int  // sentences this extraction added to its description
	arcOpen bool // its arc was empty
}

// dossierBuilder adds what the sentences say to a copy of the dossier.
type dossierBuilder struct {
	out         story.Snapshot
	chars       []charState
	rels        []relation
	names       nameIndex       // names of the characters of out, owner = index
	knownPeople nameIndex       // person names found in pass 1 and current characters
	knownPlaces map[string]bool // lower-case place names found in pass 1 or current
	focus       int             // the first character named in the last sentence that named one
	group       []int           // the characters of the last sentence that named several
	recent      []int           // characters by latest mention, most recent last
	genres      []string
	tones       []string
}

func newDossierBuilder(cur story.Snapshot) *dossierBuilder {
	out := cloneSnapshot(cur)
	out.Normalize()
	b := &dossierBuilder{out: out, focus: -1, knownPlaces: make(map[string]bool)}
	for i, c := range out.Characters {
		b.chars = append(b.chars, charState{arcOpen: c.CharacterArc == ""})
		b.names.add(strings.ToLower(c.Name), i)
		b.knownPeople.add(strings.ToLower(c.Name), 0)
		// Characters are listed in order of first mention: the last one is
		// the best guess for a "her" before anyone is named again.
		b.recent = append(b.recent, i)
	}
	for _, l := range out.Locations {
		b.knownPlaces[strings.ToLower(l)] = true
	}
	return b
}

// namesPerson reports whether a theme candidate is really a person: "my
// grandmother", "a boy who…", or a character's name.
func (b *dossierBuilder) namesPerson(p string) bool {
	words := strings.Fields(strings.ToLower(p))
	if len(words) == 0 {
		return false
	}
	switch words[0] {
	case "a", "an", "my", "our", "his", "her", "their", "your", "two", "three":
		return true
	}
	first, _ := utf8.DecodeRuneInString(p)
	return unicode.IsUpper(first) && b.isKnownPerson(strings.Fields(p)[0])
}

// findChar returns the character called name (exactly, by an alias, or by
// a part of the name: "Ada" is "Ada Whitlock"), or -1.
func (b *dossierBuilder) findChar(name string) int {
	return b.names.find(strings.ToLower(name))
}

// isCharacterAlias reports whether name is exactly a name of a character.
func (b *dossierBuilder) isCharacterAlias(name string) bool {
	_, ok := b.names.exact[strings.ToLower(name)]
	return ok
}

// isKnownPerson reports whether name matches a person found in pass 1 or a
// current character.
func (b *dossierBuilder) isKnownPerson(name string) bool {
	return b.knownPeople.find(strings.ToLower(name)) >= 0
}

// character returns the character called name, creating it, or -1 when
// the list is full.
func (b *dossierBuilder) character(name string) int {
	if ci := b.findChar(name); ci >= 0 {
		c := &b.out.Characters[ci]
		lower := strings.ToLower(name)
		b.names.add(lower, ci)
		// A fresh "Ada" becomes "Ada Whitlock" when the full name comes.
		if b.chars[ci].fresh && len(nameWords(lower)) > len(nameWords(strings.ToLower(c.Name))) &&
			subsetOf(nameWords(strings.ToLower(c.Name)), nameWords(lower)) {
			c.Name = name
		}
		return ci
	}
	if len(b.out.Characters) >= story.MaxItems {
		return -1
	}
	b.out.Characters = append(b.out.Characters, story.Character{Name: name, Relationships: []string{}})
	b.chars = append(b.chars, charState{fresh: true, arcOpen: true})
	b.names.add(strings.ToLower(name), len(b.out.Characters)-1)
	return len(b.out.Characters) - 1
}

// sentence reads one sentence. themed says it stated themes.
func (b *dossierBuilder) sentence(s *xsent, themed bool) {
	toks := s.toks
	var ms []mention
	for hi := range s.hits {
		h := &s.hits[hi]
		kind := h.kind
		switch {
		case h.tentative && !b.isKnownPerson(h.name):
			continue
		case kind == hitPlace && h.weak && b.isKnownPerson(h.name):
			kind = hitPerson
		case kind == hitPerson && b.knownPlaces[strings.ToLower(h.name)] && !b.isCharacterAlias(h.name):
			kind = hitPlace // "Maine" was "the coast of Maine" before
		}
		switch kind {
		case hitPlace:
			b.addLocation(h.name)
		case hitPerson:
			ci := -1
			if isNicknameCue(toks, h.start) {
				if ref := b.resolve(lowerAt(toks, h.start-1), ms, h.start, -1); len(ref) == 1 {
					ci = ref[0]
					b.names.add(strings.ToLower(h.name), ci)
				}
			}
			if ci < 0 {
				ci = b.character(h.name)
			}
			if ci < 0 || slices.ContainsFunc(ms, func(m mention) bool { return m.ci == ci }) {
				continue
			}
			ms = append(ms, mention{ci: ci, hit: h})
			b.touch(ci)
		}
	}
	named := len(ms)
	if named == 0 && b.focus >= 0 && len(toks) > 0 && isSubjectPronoun(lowerAt(toks, 0)) {
		ms = append(ms, mention{ci: b.focus})
		b.touch(b.focus)
	}

	for i, m := range ms {
		if m.hit != nil {
			b.relationsOf(s, ms, m)
			if i+1 < len(ms) && ms[i+1].hit != nil {
				b.pairRelations(toks, m, ms[i+1])
			}
		}
	}
	b.betweenRelation(toks, ms)
	b.describe(s, ms)
	b.arcs(s, ms)
	b.styles(s)
	if !themed && isPlotSentence(s) {
		b.addPlotPoint(s.text)
	}

	if named > 0 {
		b.focus = ms[0].ci
		if named > 1 {
			b.group = b.group[:0]
			for _, m := range ms[:named] {
				b.group = append(b.group, m.ci)
			}
		}
	}
}

// touch records a mention of ci.
func (b *dossierBuilder) touch(ci int) {
	b.recent = slices.DeleteFunc(b.recent, func(x int) bool { return x == ci })
	b.recent = append(b.recent, ci)
}

// resolve finds who a pronoun at token pos refers to, never self: "my" and
// "our" are the storyteller (nil); "their" the last group; "her"/"his" the
// first character named before it in the sentence, else the most recent.
func (b *dossierBuilder) resolve(pron string, ms []mention, pos, self int) []int {
	switch pron {
	case "my", "our", "me", "us", "i":
		return nil
	case "their", "them", "they":
		var g []int
		for _, ci := range b.group {
			if ci != self {
				g = append(g, ci)
			}
		}
		if len(g) > 0 {
			return g
		}
	}
	for _, m := range ms {
		if m.hit != nil && m.hit.start < pos && m.ci != self {
			return []int{m.ci}
		}
	}
	for i := len(b.recent) - 1; i >= 0; i-- {
		if b.recent[i] != self {
			return []int{b.recent[i]}
		}
	}
	return nil
}

// relationsOf finds "my grandmother, Ada", "Her friend is Tom", "Amos, their
// father", "Tom is her friend" and "X teams up with Y" around m.
func (b *dossierBuilder) relationsOf(s *xsent, ms []mention, m mention) {
	toks, h := s.toks, m.hit
	var role, owner string
	var ownerAt int
	j := h.start - 1
	if w := lowerAt(toks, j); (w == "named" || w == "called") && !toks[h.start].brk {
		j--
	} else if (w == "is" || w == "was") && !toks[h.start].brk {
		j--
	}
	if r, o, at, ok := roleBefore(toks, j); ok {
		role, owner, ownerAt = r, o, at
	} else if r, o, at, ok := roleAfter(toks, h.end); ok {
		role, owner, ownerAt = r, o, at
	}
	if role != "" {
		b.addOwnedRelation(m.ci, role, owner, b.resolve(owner, ms, ownerAt, m.ci))
	}
	b.withRelation(toks, ms, m)
}

// addOwnedRelation records that ci is the role of owner's referents.
func (b *dossierBuilder) addOwnedRelation(ci int, role, owner string, refs []int) {
	if owner == "my" || owner == "our" {
		b.rels = append(b.rels, relation{ci: ci, form: relOfStoryteller, role: role})
		return
	}
	if len(refs) == 0 {
		return
	}
	b.rels = append(b.rels, relation{ci: ci, form: relOf, role: role, others: refs})
	for _, o := range refs {
		b.rels = append(b.rels, relation{ci: o, form: relNamed, role: role, others: []int{ci}})
	}
}

// roleBefore reads "<my|her|his|their> <adjectives> <role>" ending at
// token j and returns the role phrase, the possessive and its position.
func roleBefore(toks []token, j int) (role, owner string, at int, ok bool) {
	if j < 0 || !isRoleWord(lowerAt(toks, j)) {
		return "", "", 0, false
	}
	q := j - 1
	for q >= 0 && j-q <= 4 && !toks[q+1].brk && isAdjLike(lowerAt(toks, q)) {
		q--
	}
	if q < 0 || toks[q+1].brk || !isPossessiveDet(lowerAt(toks, q)) {
		return "", "", 0, false
	}
	return joinLower(toks[q+1 : j+1]), lowerAt(toks, q), q, true
}

// roleAfter reads ", their father" or "is her friend" at token e, ending
// the clause.
func roleAfter(toks []token, e int) (role, owner string, at int, ok bool) {
	if e >= len(toks) {
		return "", "", 0, false
	}
	p := e
	if w := lowerAt(toks, e); (w == "is" || w == "was") && !toks[e].brk {
		p = e + 1
		if p < len(toks) && toks[p].brk {
			return "", "", 0, false
		}
	} else if !toks[e].brk {
		return "", "", 0, false
	}
	if !isPossessiveDet(lowerAt(toks, p)) {
		return "", "", 0, false
	}
	for r := p + 1; r < len(toks) && r <= p+4 && !toks[r].brk; r++ {
		w := lowerAt(toks, r)
		if isRoleWord(w) {
			if r+1 < len(toks) && !toks[r+1].brk && lowerAt(toks, r+1) != "and" {
				return "", "", 0, false // "her friend's boat"…
			}
			return joinLower(toks[p+1 : r+1]), lowerAt(toks, p), p, true
		}
		if !isAdjLike(w) {
			break
		}
	}
	return "", "", 0, false
}

// withRelation reads "X teams up with Y" and "X is a little in love with
// her": a relation verb between X and a following "with".
func (b *dossierBuilder) withRelation(toks []token, ms []mention, m mention) {
	h := m.hit
	for w := h.end; w < len(toks) && w-h.end <= 8; w++ {
		if w > h.end && slices.ContainsFunc(ms, func(o mention) bool { return o.hit != nil && o.hit.start == w }) {
			return // another character comes first
		}
		if lowerAt(toks, w) != "with" || toks[w].brk {
			continue
		}
		from := -1
		for k := h.end; k < w; k++ {
			if isWithTrigger(lowerAt(toks, k)) {
				from = k
				break
			}
		}
		if from < 0 {
			return
		}
		// Start the phrase after the last clause word before the trigger:
		// "is gentle and a little in love" → "a little in love".
		for k := from - 1; k >= h.end; k-- {
			if toks[k+1].brk || isClauseWord(lowerAt(toks, k)) {
				break
			}
			from = k
		}
		phrase := joinLower(toks[from:w]) + " with"
		var other []int
		if o := slices.IndexFunc(ms, func(o mention) bool { return o.hit != nil && o.hit.start == w+1 }); o >= 0 {
			other = []int{ms[o].ci}
		} else if p := lowerAt(toks, w+1); (p == "her" || p == "him" || p == "them") && (w+2 >= len(toks) || toks[w+2].brk) {
			other = b.resolve(p, ms, w+1, m.ci)
		}
		if len(other) > 0 && !slices.Contains(other, m.ci) {
			b.rels = append(b.rels, relation{ci: m.ci, form: relPhrase, role: phrase, others: other})
		}
		return
	}
}

// pairRelations reads "two brothers, Eli and Caleb" and "Eli and Caleb are
// brothers" for two characters named one after the other.
func (b *dossierBuilder) pairRelations(toks []token, x, y mention) {
	if lowerAt(toks, x.hit.end) != "and" || toks[x.hit.end].brk || y.hit.start != x.hit.end+1 {
		return
	}
	role := groupRole(lowerAt(toks, x.hit.start-1))
	if role == "" {
		e := y.hit.end
		if v := lowerAt(toks, e); v == "are" || v == "were" {
			e++
			if isSmallNumber(lowerAt(toks, e)) {
				e++
			}
			role = groupRole(lowerAt(toks, e))
		}
	}
	if role == "" {
		return
	}
	b.rels = append(b.rels,
		relation{ci: x.ci, form: relOf, role: role, others: []int{y.ci}},
		relation{ci: y.ci, form: relOf, role: role, others: []int{x.ci}})
}

// betweenRelation reads "the relationship between X and Y".
func (b *dossierBuilder) betweenRelation(toks []token, ms []mention) {
	for i, m := range ms {
		if m.hit == nil || lowerAt(toks, m.hit.start-1) != "between" || i+1 >= len(ms) || ms[i+1].hit == nil {
			continue
		}
		n := ms[i+1]
		if lowerAt(toks, m.hit.end) != "and" || n.hit.start != m.hit.end+1 {
			continue
		}
		b.rels = append(b.rels,
			relation{ci: m.ci, form: relWith, role: "relationship with", others: []int{n.ci}},
			relation{ci: n.ci, form: relWith, role: "relationship with", others: []int{m.ci}})
	}
}

// describe adds the sentence (or the clause about a character) to the
// descriptions of the characters it introduces.
func (b *dossierBuilder) describe(s *xsent, ms []mention) {
	toks := s.toks
	for i, m := range ms {
		if m.hit == nil {
			b.addDescription(m.ci, s.text)
			continue
		}
		h := m.hit
		before := lowerAt(toks, h.start-1)
		_, _, roleAt, hasRole := roleBefore(toks, h.start-1)
		appos := h.end < len(toks) && ((toks[h.end].brk && isAppositiveStart(lowerAt(toks, h.end))) ||
			(!toks[h.end].brk && (lowerAt(toks, h.end) == "who" || lowerAt(toks, h.end) == "whose")))
		intro := hasRole || before == "named" || before == "called" || before == "is" || before == "was"
		switch {
		case i == 0 && (h.start <= 6 || appos || intro):
			b.addDescription(m.ci, s.text)
		case i > 0 && (appos || hasRole):
			from := s.spans[h.start][0]
			if hasRole {
				from = s.spans[roleAt][0]
			}
			to := len(s.text)
			for _, n := range ms[i+1:] {
				if n.hit != nil {
					to = s.spans[n.hit.start][0]
					if c := strings.LastIndexByte(s.text[:to], ','); c > s.spans[h.end-1][1] {
						to = c
					}
					break
				}
			}
			b.addDescription(m.ci, asSentence(s.text[from:to]))
		}
	}
}

// addDescription appends text to the description of ci while it has room.
func (b *dossierBuilder) addDescription(ci int, text string) {
	st := &b.chars[ci]
	c := &b.out.Characters[ci]
	if st.descN >= offlineDescMaxSents || text == "" || strings.Contains(c.Description, text) {
		return
	}
	if c.Description == "" {
		c.Description = truncateWords(text, offlineDescMax)
	} else if len(c.Description)+1+len(text) <= offlineDescMax {
		c.Description += " " + text
	} else {
		return
	}
	st.descN++
}

// arcs takes the first sentence where a character "finally agrees",
// "learns", "becomes"… as its arc, when it has none.
func (b *dossierBuilder) arcs(s *xsent, ms []mention) {
	if len(ms) != 1 || !hasArcMarker(s.toks) {
		return // with two characters, whose arc it is is a guess
	}
	m := ms[0]
	if m.hit != nil && m.hit.start > 3 {
		return
	}
	if st := &b.chars[m.ci]; st.arcOpen && b.out.Characters[m.ci].CharacterArc == "" {
		b.out.Characters[m.ci].CharacterArc = truncateWords(trimClause(s.text), offlineItemMax)
	}
}

// styles collects genre phrases and, in sentences about the tone, tone words.
func (b *dossierBuilder) styles(s *xsent) {
	toks := s.toks
	genres := genrePhrases(toks)
	for _, g := range genres {
		b.genres = appendNewFold(b.genres, g)
	}
	cue := len(genres) > 0
	for i := range toks {
		if isToneCue(lowerAt(toks, i)) {
			cue = true
		}
	}
	if !cue {
		return
	}
	for i := range toks {
		if w := lowerAt(toks, i); isToneWord(w) {
			b.tones = appendNewFold(b.tones, w)
		}
	}
}

func (b *dossierBuilder) addLocation(name string) {
	name = strings.TrimSpace(name)
	if name == "" || len(b.out.Locations) >= story.MaxItems {
		return
	}
	lower := strings.ToLower(name)
	for _, l := range b.out.Locations {
		ll := strings.ToLower(l)
		if ll == lower || containsWords(ll, lower) {
			return
		}
	}
	b.out.Locations = append(b.out.Locations, name)
	b.knownPlaces[lower] = true
}

func (b *dossierBuilder) addTheme(t string) {
	t = truncateWords(t, offlineItemMax)
	if t == "" || len(b.out.Themes) >= story.MaxItems || slices.ContainsFunc(b.out.Themes, func(x string) bool { return strings.EqualFold(x, t) }) {
		return
	}
	b.out.Themes = append(b.out.Themes, t)
}

func (b *dossierBuilder) addPlotPoint(text string) {
	p := truncateWords(strings.TrimRight(strings.TrimSpace(text), "."), offlineItemMax)
	if p == "" || len(b.out.PlotPoints) >= story.MaxItems || slices.ContainsFunc(b.out.PlotPoints, func(x string) bool { return strings.EqualFold(x, p) }) {
		return
	}
	b.out.PlotPoints = append(b.out.PlotPoints, p)
}

// finish renders relationships with the final names and sets genre and tone.
func (b *dossierBuilder) finish() {
	for _, r := range b.rels {
		var text string
		names := func() string {
			var ns []string
			for _, o := range r.others {
				ns = append(ns, b.out.Characters[o].Name)
			}
			return joinAnd(ns)
		}
		switch r.form {
		case relOf:
			text = r.role + " of " + names()
		case relOfStoryteller:
			text = r.role + " of the storyteller"
		case relNamed:
			text = names() + " (" + r.role + ")"
		case relPhrase, relWith:
			text = r.role + " " + names()
		}
		c := &b.out.Characters[r.ci]
		if len(c.Relationships) < story.MaxItems && !slices.ContainsFunc(c.Relationships, func(x string) bool { return strings.EqualFold(x, text) }) {
			c.Relationships = append(c.Relationships, text)
		}
	}
	b.out.Genre = mergeWords(b.out.Genre, b.genres, " / ")
	b.out.Tone = mergeWords(b.out.Tone, b.tones, ", ")
}

// mergeWords appends to cur the words it does not hold yet.
func mergeWords(cur string, add []string, sep string) string {
	for _, a := range add {
		if containsWords(strings.ToLower(cur), strings.ToLower(a)) {
			continue
		}
		if cur == "" {
			cur = a
		} else {
			cur += sep + a
		}
	}
	return cur
}

// isPlotSentence: an event verb or a time marker, and not the person
// talking about the film ("I want…", a question, the tone).
func isPlotSentence(s *xsent) bool {
	toks := s.toks
	if len(toks) == 0 || strings.HasSuffix(s.text, "?") {
		return false
	}
	switch lowerAt(toks, 0) {
	case "i", "i'm", "i'd", "i've", "i'll", "we", "we're", "we'd", "we'll", "let's":
		return false
	}
	for i := range toks {
		if isToneCue(lowerAt(toks, i)) {
			return false
		}
	}
	for i := range toks {
		if isEventWord(lowerAt(toks, i)) {
			return true
		}
	}
	return hasPhrase(normalize(s.text), timePhrases())
}

// genrePhrases returns the genre phrases of a sentence: runs of genre
// words ("comedy heist") and known compounds ("romantic comedy").
func genrePhrases(toks []token) []string {
	var out []string
	for i := 0; i < len(toks); {
		var chain []string
		j := i
		for j < len(toks) && (j == i || !toks[j].brk) {
			n := genreUnit(toks, j)
			if n == 0 {
				break
			}
			chain = append(chain, joinLower(toks[j:j+n]))
			j += n
		}
		if len(chain) == 0 {
			i++
			continue
		}
		out = appendNewFold(out, strings.Join(chain, " "))
		i = j
	}
	return out
}

// genreUnit returns how many tokens a genre word or compound at i spans.
func genreUnit(toks []token, i int) int {
	for _, n := range []int{3, 2} {
		if i+n > len(toks) {
			continue
		}
		joined := true
		for k := i + 1; k < i+n; k++ {
			if toks[k].brk {
				joined = false
			}
		}
		if joined && slices.Contains(genreCompounds(), joinLower(toks[i:i+n])) {
			return n
		}
	}
	if isGenreWord(lowerAt(toks, i)) {
		return 1
	}
	return 0
}

// isNicknameCue reports "calls her", "known as", "nicknamed"… before the
// name at start.
func isNicknameCue(toks []token, start int) bool {
	if toks[start].brk {
		return false
	}
	w1, w2 := lowerAt(toks, start-1), lowerAt(toks, start-2)
	switch {
	case w1 == "nicknamed":
		return true
	case w1 == "as" && w2 == "known":
		return true
	case w1 == "by" && (w2 == "goes" || w2 == "go" || w2 == "went"):
		return true
	case (w1 == "her" || w1 == "him") && (w2 == "calls" || w2 == "call" || w2 == "called"):
		return true
	}
	return false
}

// Word lists.

func isSubjectPronoun(w string) bool {
	switch w {
	case "he", "she", "he's", "she's", "his", "her", "he'd", "she'd", "he'll", "she'll":
		return true
	}
	return false
}

func isPossessiveDet(w string) bool {
	switch w {
	case "my", "our", "her", "his", "their":
		return true
	}
	return false
}

func isKinTitle(w string) bool {
	switch w {
	case "grandpa", "grandma", "granny", "nana", "aunt", "auntie", "uncle", "grandmother", "grandfather",
		"mama", "papa", "sister", "brother", "father", "mother":
		return true
	}
	return false
}

func isRoleWord(w string) bool {
	switch w {
	case "friend", "mother", "father", "mom", "mum", "dad", "brother", "sister", "son", "daughter",
		"grandmother", "grandfather", "grandma", "grandpa", "granny", "nana", "granddaughter", "grandson",
		"husband", "wife", "boyfriend", "girlfriend", "partner", "lover", "fiancé", "fiance", "fiancée",
		"uncle", "aunt", "cousin", "nephew", "niece", "stepfather", "stepmother", "stepbrother", "stepsister",
		"boss", "mentor", "rival", "neighbor", "neighbour", "colleague", "roommate", "teacher", "student",
		"enemy", "ally", "sidekick", "ex", "twin", "guardian", "employer", "assistant", "apprentice",
		"father-in-law", "mother-in-law", "brother-in-law", "sister-in-law", "godfather", "godmother":
		return true
	}
	return false
}

func groupRole(w string) string {
	switch w {
	case "brothers":
		return "brother"
	case "sisters":
		return "sister"
	case "twins":
		return "twin"
	case "cousins":
		return "cousin"
	case "friends":
		return "friend"
	case "siblings":
		return "sibling"
	case "lovers":
		return "lover"
	case "partners":
		return "partner"
	}
	return ""
}

func isSmallNumber(w string) bool {
	switch w {
	case "two", "both", "best", "old", "close", "twin":
		return true
	}
	return false
}

func isAdjLike(w string) bool {
	if w == "" || isPossessiveDet(w) || isClauseWord(w) {
		return false
	}
	for _, r := range w {
		if !unicode.IsLetter(r) && r != '-' {
			return false
		}
	}
	switch w {
	case "a", "an", "the", "with", "to", "of", "in", "on", "at", "for", "from", "by", "named", "called", "this", "that":
		return false
	}
	return true
}

func isClauseWord(w string) bool {
	switch w {
	case "and", "but", "or", "so", "is", "was", "are", "were", "who", "which", "that", "he", "she", "they",
		"he's", "she's", "it", "then", "because", "while", "when":
		return true
	}
	return false
}

func isWithTrigger(w string) bool {
	switch w {
	case "teams", "team", "teamed", "love", "lives", "lived", "works", "worked", "friends", "sides",
		"sided", "partners", "partnered", "falls", "fell", "grew", "grows", "fights", "fought", "argues",
		"clashes", "elopes", "runs", "ran", "escapes", "travels":
		return true
	}
	return false
}

func isAppositiveStart(w string) bool {
	switch w {
	case "the", "a", "an", "who", "whose", "my", "her", "his", "their", "our":
		return true
	}
	return false
}

func isStrongPlacePrep(w string) bool {
	switch w {
	case "in", "at", "on", "near", "outside", "inside", "off", "around", "across", "beyond", "within", "above", "below":
		return true
	}
	return false
}

func isWeakPlacePrep(w string) bool {
	switch w {
	case "to", "from", "into", "toward", "towards", "through", "via", "past":
		return true
	}
	return false
}

func isDepartureVerb(w string) bool {
	switch w {
	case "leave", "leaves", "left", "leaving", "head", "heads", "headed", "heading", "bound", "sail", "sails",
		"sailed", "set", "sets", "depart", "departs", "departed", "flee", "flees", "fled":
		return true
	}
	return false
}

func isPlaceNoun(w string) bool {
	switch w {
	case "coast", "city", "town", "state", "streets", "island", "outskirts", "shores", "shore", "edge", "heart",
		"center", "centre", "suburbs", "county", "province", "village", "region", "north", "south", "east",
		"west", "hills", "banks", "port", "capital", "kingdom", "republic", "land", "mountains", "middle",
		"back", "docks", "slums", "countryside", "coastline", "border", "borders", "valley":
		return true
	}
	return false
}

func isPlaceHead(w string) bool {
	switch w {
	case "market", "district", "panhandle", "province", "county", "city", "town", "village", "valley",
		"river", "island", "islands", "coast", "bay", "harbor", "harbour", "street", "road", "avenue",
		"square", "park", "mountains", "mountain", "desert", "forest", "lake", "neighborhood",
		"neighbourhood", "quarter", "station", "beach", "hills", "canyon", "region", "peninsula", "prairie",
		"plains", "borough", "suburbs", "bazaar", "ranch", "reservation", "strait", "sea", "ocean",
		"highlands", "delta", "gulf", "archipelago", "peak", "glacier", "fjord", "heights", "territory",
		"countryside", "estate", "airport", "port", "basin", "plateau", "steppe", "marshes", "bayou":
		return true
	}
	return false
}

func isPlaceModifier(w string) bool {
	switch w {
	case "night", "fish", "flea", "flower", "street", "food", "farmers", "old", "river", "train", "bus",
		"business", "financial", "historic", "harbor", "harbour", "coal", "mining", "industrial", "red-light",
		"university", "central", "north", "south", "east", "west", "upper", "lower", "inner", "outer":
		return true
	}
	return false
}

// hasPlaceWord reports a capitalised place word inside a name: "Gull
// Rock", "Port Clyde", "Mount Fuji".
func hasPlaceWord(parts []string) bool {
	for _, p := range parts {
		switch strings.ToLower(p) {
		case "rock", "port", "street", "st", "avenue", "ave", "road", "rd", "bay", "island", "islands",
			"mountain", "mountains", "mount", "mt", "river", "lake", "valley", "county", "city", "park",
			"harbor", "harbour", "beach", "market", "district", "bridge", "station", "square", "hill",
			"hills", "falls", "point", "cape", "fort", "coast", "desert", "sea", "ocean", "canyon", "creek",
			"springs", "heights", "village", "town", "peninsula", "forest", "woods", "plains", "lane",
			"boulevard", "quarter", "route", "highway", "reef", "cove", "isle", "glen", "ridge",
			"panhandle", "province", "republic", "kingdom", "gulf", "strait", "straits", "airport":
			return true
		}
	}
	return false
}

func numberedPlace(w string) bool {
	switch strings.ToLower(w) {
	case "route", "highway", "interstate", "road", "street", "pier", "platform", "gate", "block", "sector", "area":
		return true
	}
	return false
}

// isInstitution: names of bodies and events, neither people nor places
// (unless "in"/"at" one): "the Coast Guard", "the Lantern Festival".
func isInstitution(w string) bool {
	switch strings.ToLower(w) {
	case "guard", "festival", "company", "corporation", "corp", "inc", "ltd", "bank", "army", "navy",
		"police", "department", "council", "party", "committee", "bowl", "war", "day", "times", "news",
		"agency", "bureau", "service", "ministry", "office", "institute", "foundation", "association",
		"union", "league", "games", "olympics", "cup", "awards", "fair", "parade", "revolution", "crisis",
		"depression", "act", "church", "school", "university", "college", "hospital":
		return true
	}
	return false
}

func isCalendarWord(w string) bool {
	switch w {
	case "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
		"christmas", "easter", "eve", "day", "night", "week":
		return true
	}
	return false
}

func isDigits(w string) bool {
	if w == "" {
		return false
	}
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isEventWord(w string) bool {
	switch w {
	case "announces", "announced", "loses", "lost", "fails", "failed", "leaves", "left", "dies", "died",
		"arrives", "arrived", "brings", "brought", "finds", "found", "discovers", "discovered", "decides",
		"decided", "agrees", "agreed", "escapes", "escaped", "steals", "stole", "steal", "kills", "killed",
		"saves", "saved", "rescues", "rescued", "meets", "met", "returns", "returned", "wins", "won",
		"crashes", "crashed", "breaks", "broke", "falls", "fell", "drives", "drove", "rows", "rowing", "flees", "fled", "attacks", "attacked", "betrays",
		"betrayed", "admits", "admitting", "admitted", "bribed", "reveals", "revealed", "confesses",
		"confessed", "shelter", "shelters", "sheltered", "teams", "caught", "locked", "trapped",
		"improvise", "improvises", "storm", "plan", "wants", "tries", "tried",
		"sends", "sent", "burns", "burned", "sinks", "sank", "wakes",
		"woke", "learns", "learned", "realizes", "realises", "realized", "forgives", "forgave",
		"marries", "leaving", "arrest", "arrested", "fight", "fights", "fought", "chase", "chases",
		"viral", "inciting", "climax", "ending", "ends", "ended", "begins", "began", "starts", "started":
		return true
	}
	return false
}

func timePhrases() []string {
	return []string{"in the morning", "that night", "all night", "next day", "next morning", "one day",
		"one night", "finally", "eventually", "midway", "later", "suddenly", "at first", "at the end",
		"in the end", "by the end", "last shot", "first shot", "opening", "meanwhile", "afterwards",
		"after the", "before the", "during the", "then"}
}

func hasArcMarker(toks []token) bool {
	for i := range toks {
		switch lowerAt(toks, i) {
		case "finally", "learns", "learned", "realizes", "realises", "realized", "becomes", "became",
			"changes", "changed", "forgives", "forgave", "accepts", "accepted", "grows", "agrees", "agreed":
			return true
		}
	}
	return false
}

func isGenreWord(w string) bool {
	switch w {
	case "comedy", "drama", "thriller", "horror", "romance", "western", "musical", "documentary", "noir",
		"sci-fi", "fantasy", "mystery", "heist", "biopic", "satire", "mockumentary", "melodrama", "rom-com",
		"romcom", "animation", "dramedy", "fable", "fairytale", "coming-of-age", "whodunit", "slasher",
		"farce", "tragedy", "tragicomedy", "docudrama", "procedural", "caper", "parody", "dystopia":
		return true
	}
	return false
}

func genreCompounds() []string {
	return []string{"science fiction", "coming of age", "period drama", "period piece", "road movie",
		"love story", "ghost story", "fairy tale", "romantic comedy", "black comedy", "dark comedy",
		"family drama", "psychological thriller", "war film", "war movie", "war drama", "space opera",
		"courtroom drama", "legal drama", "crime drama", "crime thriller", "crime story", "political thriller",
		"spy thriller", "disaster movie", "monster movie", "action movie", "action film", "action comedy",
		"adventure film", "adventure story", "buddy comedy", "road trip", "sports drama", "survival story",
		"revenge story", "character study", "slice of life", "kitchen sink drama", "film noir"}
}

func isToneCue(w string) bool {
	return strings.HasPrefix(w, "tone") || strings.HasPrefix(w, "tonal") || w == "mood" || w == "moods" ||
		w == "feel" || w == "feels" || w == "feeling" || w == "vibe" || w == "vibes" || w == "atmosphere"
}

func isToneWord(w string) bool {
	switch w {
	case "bittersweet", "quiet", "dark", "hopeful", "tense", "warm", "funny", "comic", "comedic",
		"whimsical", "melancholic", "melancholy", "gritty", "nostalgic", "tender", "uplifting", "playful",
		"somber", "sombre", "lighthearted", "light-hearted", "intimate", "poetic", "dreamy", "moody",
		"suspenseful", "heartwarming", "heartbreaking", "gentle", "eerie", "bleak", "quirky", "epic",
		"romantic", "sad", "joyful", "cozy", "cosy", "lyrical", "satirical", "slow", "atmospheric", "raw",
		"haunting", "grim", "brooding", "elegiac", "wistful", "cheerful", "silly", "absurd", "surreal",
		"contemplative", "meditative", "austere", "chaotic", "frantic", "energetic", "fun", "sweet",
		"cynical", "ironic", "tragic", "triumphant", "spooky", "creepy", "menacing", "claustrophobic",
		"sensual", "deadpan", "zany", "madcap", "calm", "serene", "peaceful", "mysterious", "ominous",
		"light", "heavy", "restrained", "understated", "lush", "hopeless", "angry", "fierce":
		return true
	}
	return false
}

// Small helpers.

func startsUpper(w string) bool {
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r)
}

func joinLower(toks []token) string {
	ws := make([]string, len(toks))
	for i, t := range toks {
		ws[i] = strings.ToLower(t.text)
	}
	return strings.Join(ws, " ")
}

// nameWords splits a lower-case name into its words, without "the" and
// name connectors.
func nameWords(lower string) []string {
	var out []string
	for _, w := range strings.Fields(lower) {
		if w == "the" || isNameConnector(w) {
			continue
		}
		out = append(out, w)
	}
	return out
}

func subsetOf(a, b []string) bool {
	if len(a) == 0 {
		return false
	}
	for _, w := range a {
		if !slices.Contains(b, w) {
			return false
		}
	}
	return true
}

// containsWords reports whether hay holds needle on word boundaries.
func containsWords(hay, needle string) bool {
	return needle != "" && strings.Contains(" "+strings.Join(strings.Fields(hay), " ")+" ",
		" "+strings.Join(strings.Fields(needle), " ")+" ")
}

func appendNewFold(list []string, s string) []string {
	if slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) }) {
		return list
	}
	return append(list, s)
}

// trimClause trims spaces and trailing commas, semicolons and dashes.
func trimClause(s string) string {
	return strings.TrimRightFunc(strings.TrimSpace(s), func(r rune) bool {
		return r == ',' || r == ';' || r == ':' || r == '—' || r == '–' || r == '-' || unicode.IsSpace(r)
	})
}

// asSentence makes a clause read as a sentence: capitalised, with a full
// stop unless it ends in punctuation already.
func asSentence(clause string) string {
	c := trimClause(clause)
	if c == "" {
		return ""
	}
	c = upperFirst(c)
	if r, _ := utf8.DecodeLastRuneInString(c); !unicode.IsPunct(r) {
		c += "."
	}
	return c
}

// truncateWords cuts s to at most n bytes at a word boundary, marking the
// cut with "…".
func truncateWords(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndexByte(s[:n-len("…")+1], ' ')
	if cut <= 0 {
		return truncateText(s, n-len("…"))
	}
	return strings.TrimSpace(s[:cut]) + "…"
}
