package llm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/storyd/storyd/story"
)

// evalStories reads the shared extraction eval set, or skips.
type evalStory struct {
	ID        string   `json:"id"`
	UserTurns []string `json:"user_turns"`
	Gold      struct {
		Characters []struct {
			Name        string   `json:"name"`
			Aliases     []string `json:"aliases"`
			MustMention []string `json:"must_mention"`
		} `json:"characters"`
		Locations []string `json:"locations"`
		Themes    []string `json:"themes"`
		Genre     string   `json:"genre"`
		Tone      string   `json:"tone"`
	} `json:"gold"`
}

func loadEvalStories(t *testing.T) []evalStory {
	t.Helper()
	raw, err := os.ReadFile("../../shared/eval/stories.json")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("eval set ../../shared/eval/stories.json is not here; skipping the offline extraction eval")
	}
	if err != nil {
		t.Fatalf("read eval set: %v", err)
	}
	var f struct {
		Stories []evalStory `json:"stories"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("decode eval set: %v", err)
	}
	if len(f.Stories) < 2 {
		t.Fatalf("eval set has %d stories, want at least 2", len(f.Stories))
	}
	return f.Stories
}

func userTurns(texts ...string) []Turn {
	out := make([]Turn, len(texts))
	for i, s := range texts {
		out[i] = Turn{User: s, Assistant: "Tell me more."}
	}
	return out
}

func extractOffline(t *testing.T, req ExtractRequest) story.Snapshot {
	t.Helper()
	res, err := NewOfflineExtractor().Extract(t.Context(), req)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if res.PromptTokens != 0 || res.CompletionTokens != 0 {
		t.Errorf("offline tokens %d/%d, want 0", res.PromptTokens, res.CompletionTokens)
	}
	if err := res.Snapshot.Validate(); err != nil {
		t.Errorf("invalid snapshot: %v", err)
	}
	return res.Snapshot
}

func characterNames(s story.Snapshot) []string {
	var names []string
	for _, c := range s.Characters {
		names = append(names, c.Name)
	}
	return names
}

func findCharacter(s story.Snapshot, names ...string) (story.Character, bool) {
	for _, c := range s.Characters {
		for _, n := range names {
			if strings.EqualFold(c.Name, n) {
				return c, true
			}
		}
	}
	return story.Character{}, false
}

func locationMatches(got []string, want string) bool {
	return slices.ContainsFunc(got, func(l string) bool {
		l, w := strings.ToLower(l), strings.ToLower(want)
		return strings.Contains(l, w) || strings.Contains(w, l)
	})
}

// TestOfflineExtractorEvalStories runs each eval conversation through the
// extractor at once. The first two stories must yield every gold character
// by its gold name and a gold location; the scores of all are logged.
func TestOfflineExtractorEvalStories(t *testing.T) {
	for i, st := range loadEvalStories(t) {
		t.Run(st.ID, func(t *testing.T) {
			snap := extractOffline(t, ExtractRequest{Turns: userTurns(st.UserTurns...)})
			chars, mentions, mentionsWant, locs := 0, 0, 0, 0
			for _, g := range st.Gold.Characters {
				c, ok := findCharacter(snap, append([]string{g.Name}, g.Aliases...)...)
				if ok {
					chars++
				}
				if i < 2 && !strings.EqualFold(c.Name, g.Name) {
					t.Errorf("no character %q among %q", g.Name, characterNames(snap))
				}
				for _, w := range g.MustMention {
					mentionsWant++
					if strings.Contains(strings.ToLower(c.Description), strings.ToLower(w)) {
						mentions++
					}
				}
			}
			for _, g := range st.Gold.Locations {
				if locationMatches(snap.Locations, g) {
					locs++
				}
			}
			if i < 2 && locs == 0 {
				t.Errorf("no gold location %q among %q", st.Gold.Locations, snap.Locations)
			}
			t.Logf("characters %d/%d (of %d found), descriptions mention %d/%d, locations %d/%d (of %d found), themes %d (gold %d), plot points %d, genre %q (gold %q), tone %q (gold %q)",
				chars, len(st.Gold.Characters), len(snap.Characters), mentions, mentionsWant,
				locs, len(st.Gold.Locations), len(snap.Locations), len(snap.Themes), len(st.Gold.Themes),
				len(snap.PlotPoints), snap.Genre, st.Gold.Genre, snap.Tone, st.Gold.Tone)
		})
	}
}

func TestOfflineExtractorLighthouseDetails(t *testing.T) {
	st := loadEvalStories(t)[0]
	if st.ID != "lighthouse" {
		t.Skipf("first eval story is %q, not lighthouse", st.ID)
	}
	snap := extractOffline(t, ExtractRequest{Turns: userTurns(st.UserTurns...)})
	if !slices.Equal(characterNames(snap), []string{"Ada Whitlock", "Tom Pruitt"}) {
		t.Errorf("characters %q", characterNames(snap))
	}
	ada, _ := findCharacter(snap, "Ada Whitlock")
	tom, _ := findCharacter(snap, "Tom Pruitt")
	if !strings.Contains(ada.Description, "lighthouse") || !strings.Contains(tom.Description, "mailboat") {
		t.Errorf("descriptions %q / %q", ada.Description, tom.Description)
	}
	if !slices.Contains(ada.Relationships, "grandmother of the storyteller") ||
		!slices.Contains(tom.Relationships, "only real friend of Ada Whitlock") {
		t.Errorf("relationships %q / %q", ada.Relationships, tom.Relationships)
	}
	if !slices.Equal(snap.Locations, []string{"Gull Rock", "Maine", "Port Clyde"}) {
		t.Errorf("locations %q", snap.Locations)
	}
	for _, want := range []string{"duty", "quiet love"} {
		if !slices.Contains(snap.Themes, want) {
			t.Errorf("themes %q lack %q", snap.Themes, want)
		}
	}
	if snap.Genre != "drama" || snap.Tone != "bittersweet, quiet" {
		t.Errorf("genre %q tone %q", snap.Genre, snap.Tone)
	}
	if !slices.ContainsFunc(snap.PlotPoints, func(p string) bool { return strings.Contains(p, "the Marianne, loses power") }) {
		t.Errorf("plot points %q lack the storm", snap.PlotPoints)
	}
	for _, p := range snap.PlotPoints {
		if strings.HasPrefix(p, "I ") || strings.Contains(p, "Tone-wise") || strings.Contains(p, "It's about duty") {
			t.Errorf("plot point %q is not an event", p)
		}
	}
}

func TestOfflineExtractorDeterministic(t *testing.T) {
	stories := loadEvalStories(t)
	e := NewOfflineExtractor()
	for _, st := range stories {
		req := ExtractRequest{Turns: userTurns(st.UserTurns...)}
		first, err1 := e.Extract(t.Context(), req)
		second, err2 := NewOfflineExtractor().Extract(t.Context(), req)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(first, second) {
			t.Errorf("%s: not deterministic:\n%+v\n%+v", st.ID, first, second)
		}
	}
}

// TestOfflineExtractorIncremental feeds a story one turn at a time, each
// time with the dossier so far: nothing found earlier is lost and the
// characters and locations found are the same as all at once.
func TestOfflineExtractorIncremental(t *testing.T) {
	for _, st := range loadEvalStories(t) {
		t.Run(st.ID, func(t *testing.T) {
			all := extractOffline(t, ExtractRequest{Turns: userTurns(st.UserTurns...)})
			var cur story.Snapshot
			for _, turn := range userTurns(st.UserTurns...) {
				next := extractOffline(t, ExtractRequest{Current: cur, Turns: []Turn{turn}})
				assertKeeps(t, cur, next)
				cur = next
			}
			if !slices.Equal(characterNames(cur), characterNames(all)) || !slices.Equal(cur.Locations, all.Locations) ||
				!slices.Equal(cur.Themes, all.Themes) || cur.Genre != all.Genre || cur.Tone != all.Tone {
				t.Errorf("turn by turn:\n%+v\nall at once:\n%+v", cur, all)
			}
		})
	}
}

// assertKeeps checks that next holds every fact of cur.
func assertKeeps(t *testing.T, cur, next story.Snapshot) {
	t.Helper()
	for _, c := range cur.Characters {
		n, ok := findCharacter(next, c.Name)
		if !ok {
			t.Errorf("character %q lost", c.Name)
			continue
		}
		if !strings.HasPrefix(n.Description, c.Description) || (c.CharacterArc != "" && n.CharacterArc != c.CharacterArc) {
			t.Errorf("character %q rewritten: %+v → %+v", c.Name, c, n)
		}
		for _, r := range c.Relationships {
			if !slices.Contains(n.Relationships, r) {
				t.Errorf("relationship %q of %q lost", r, c.Name)
			}
		}
	}
	for _, l := range [][2][]string{{cur.Themes, next.Themes}, {cur.Locations, next.Locations}, {cur.PlotPoints, next.PlotPoints}} {
		for _, v := range l[0] {
			if !slices.Contains(l[1], v) {
				t.Errorf("%q lost", v)
			}
		}
	}
	for _, f := range [][2]string{{cur.Title, next.Title}, {cur.Logline, next.Logline}} {
		if f[0] != "" && f[0] != f[1] {
			t.Errorf("%q rewritten to %q", f[0], f[1])
		}
	}
	if !strings.HasPrefix(next.Genre, cur.Genre) || !strings.HasPrefix(next.Tone, cur.Tone) {
		t.Errorf("genre/tone %q/%q rewritten to %q/%q", cur.Genre, cur.Tone, next.Genre, next.Tone)
	}
}

func TestOfflineExtractorKeepsCurrentDossier(t *testing.T) {
	cur := story.Snapshot{
		Title:      "Salt",
		Logline:    "A keeper refuses to leave.",
		Genre:      "drama",
		Characters: []story.Character{{Name: "Ada Whitlock", Description: "Written by hand.", Relationships: []string{"keeper"}, CharacterArc: "Lets go."}},
		Themes:     []string{"duty"},
		Locations:  []string{"Gull Rock"},
		PlotPoints: []string{"The storm."},
		Scenes:     []story.Scene{{OneLiner: "Ada at the lamp."}},
	}
	snapshot := cloneSnapshot(cur)
	got := extractOffline(t, ExtractRequest{Current: cur, Turns: userTurns(
		"Ada finally learns to let go. Her only friend is Tom Pruitt, who rows out from Port Clyde.",
		"It's a bittersweet comedy in tone. It's about duty and loneliness.")})
	assertKeeps(t, cur, got)
	if !reflect.DeepEqual(cur, snapshot) {
		t.Errorf("Extract changed its input:\n%+v\n%+v", cur, snapshot)
	}
	ada, _ := findCharacter(got, "Ada Whitlock")
	if ada.CharacterArc != "Lets go." || !slices.Contains(ada.Relationships, "Tom Pruitt (only friend)") {
		t.Errorf("Ada %+v", ada)
	}
	if _, ok := findCharacter(got, "Tom Pruitt"); !ok {
		t.Errorf("characters %q lack Tom Pruitt", characterNames(got))
	}
	if !slices.Equal(got.Themes, []string{"duty", "loneliness"}) || !slices.Equal(got.Locations, []string{"Gull Rock", "Port Clyde"}) {
		t.Errorf("themes %q locations %q", got.Themes, got.Locations)
	}
	if got.Genre != "drama / comedy" || got.Tone != "bittersweet" || got.Title != "Salt" || len(got.Scenes) != 1 {
		t.Errorf("genre %q tone %q title %q scenes %d", got.Genre, got.Tone, got.Title, len(got.Scenes))
	}
	// The result does not share slices with the input.
	got.Characters[0].Relationships[0] = "changed"
	got.Themes[0] = "changed"
	if cur.Characters[0].Relationships[0] != "keeper" || cur.Themes[0] != "duty" {
		t.Error("the result aliases the current dossier")
	}
}

func TestOfflineExtractorHeuristics(t *testing.T) {
	tests := []struct {
		name  string
		turns []string
		check func(t *testing.T, s story.Snapshot)
	}{
		{"quoted title", []string{`I'd call it "The Last Light". It's about grief and memory.`}, func(t *testing.T, s story.Snapshot) {
			if s.Title != "The Last Light" || !slices.Equal(s.Themes, []string{"grief", "memory"}) {
				t.Errorf("title %q themes %q", s.Title, s.Themes)
			}
		}},
		{"working title", []string{"The working title is Salt and Iron."}, func(t *testing.T, s story.Snapshot) {
			if s.Title != "Salt and Iron" {
				t.Errorf("title %q", s.Title)
			}
		}},
		{"a title's words are no place or person", []string{"Her only friend is Tom Pruitt. It's called The Keeper of Gull Rock."}, func(t *testing.T, s story.Snapshot) {
			if s.Title != "The Keeper of Gull Rock" || len(s.Locations) != 0 || !slices.Equal(characterNames(s), []string{"Tom Pruitt"}) {
				t.Errorf("title %q locations %q characters %q", s.Title, s.Locations, characterNames(s))
			}
		}},
		{"no title without one", []string{"I don't know what to call it yet."}, func(t *testing.T, s story.Snapshot) {
			if s.Title != "" {
				t.Errorf("title %q", s.Title)
			}
		}},
		{"a person is not a theme", []string{"It's about my grandmother, Rosa Díaz, who ran a bakery in Lisbon, Portugal."}, func(t *testing.T, s story.Snapshot) {
			rosa, ok := findCharacter(s, "Rosa Díaz")
			if len(s.Themes) != 0 || !ok || !slices.Contains(rosa.Relationships, "grandmother of the storyteller") {
				t.Errorf("themes %q characters %+v", s.Themes, s.Characters)
			}
			if !slices.Equal(s.Locations, []string{"Lisbon", "Portugal"}) {
				t.Errorf("locations %q", s.Locations)
			}
		}},
		{"short names merge with full names", []string{"Ada Whitlock keeps the light.", "Ada is stubborn. Later Ada's boat sinks."}, func(t *testing.T, s story.Snapshot) {
			if !slices.Equal(characterNames(s), []string{"Ada Whitlock"}) {
				t.Errorf("characters %q", characterNames(s))
			}
		}},
		{"nickname", []string{"The hero is Mei Lin. Everyone calls her Little Mei."}, func(t *testing.T, s story.Snapshot) {
			if !slices.Equal(characterNames(s), []string{"Mei Lin"}) {
				t.Errorf("characters %q", characterNames(s))
			}
		}},
		{"siblings and a parent", []string{"Two brothers, Eli and Caleb Sutter. Their father, Amos Sutter, drinks."}, func(t *testing.T, s story.Snapshot) {
			eli, _ := findCharacter(s, "Eli Sutter")
			amos, _ := findCharacter(s, "Amos Sutter")
			if !slices.Contains(eli.Relationships, "brother of Caleb Sutter") ||
				!slices.Contains(amos.Relationships, "father of Eli Sutter and Caleb Sutter") {
				t.Errorf("characters %+v", s.Characters)
			}
		}},
		{"pronoun sentence describes the last person named", []string{"A developer named Victor Huang wants the market. He's charming in public."}, func(t *testing.T, s story.Snapshot) {
			v, _ := findCharacter(s, "Victor Huang")
			if !strings.Contains(v.Description, "charming") {
				t.Errorf("Victor %+v", v)
			}
		}},
		{"institutions, boats and days are nobody", []string{"The Coast Guard called on Black Sunday. The Marianne sank near the Lantern Festival."}, func(t *testing.T, s story.Snapshot) {
			if len(s.Characters) != 0 {
				t.Errorf("characters %q", characterNames(s))
			}
		}},
		{"interviewer words are not facts", nil, func(t *testing.T, s story.Snapshot) {}},
		{"tone words only in tone talk", []string{"Ada is funny and warm.", "The mood should be dark."}, func(t *testing.T, s story.Snapshot) {
			if s.Tone != "dark" {
				t.Errorf("tone %q", s.Tone)
			}
		}},
		{"questions and wishes are not plot", []string{"Should she die at the end?", "I want her to win."}, func(t *testing.T, s story.Snapshot) {
			if len(s.PlotPoints) != 0 {
				t.Errorf("plot points %q", s.PlotPoints)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, extractOffline(t, ExtractRequest{Turns: userTurns(tt.turns...)}))
		})
	}
}

func TestOfflineExtractorReadsOnlyTheUser(t *testing.T) {
	got := extractOffline(t, ExtractRequest{Turns: []Turn{
		{User: "She is brave.", Assistant: "Is Ada Whitlock from Paris? Is it a comedy about grief?"},
	}})
	if len(got.Characters) != 0 || len(got.Locations) != 0 || len(got.Themes) != 0 || got.Genre != "" {
		t.Errorf("extracted the interviewer's words: %+v", got)
	}
}

func TestOfflineExtractorOddInput(t *testing.T) {
	long := strings.Repeat("Ada Whitlock walks to Gull Rock and finally loses the storm. ", 2000)
	inputs := []string{
		"", " ", "\n\n", ".", "?!", "…", `"`, "'", "'s", "—", "- -", "I", "The The The.", "1962", "Mr.", "Mr. X",
		"Zoë Ørsted lives in São Paulo. Она живёт в Москве. 東京で彼女は働く。",
		"İstanbul’da Ayşe Yılmaz yaşıyor.", "🙂 Ada 🙂 in 🌊 Gull Rock.", "\x00\xff\xfe invalid utf-8 Ada Whitlock",
		"Themes:", "It's about", "It's called \"", "call it", "her best friend", "with", "between Ada and",
		"Two brothers, Eli and", "Everyone calls her", strings.Repeat("A", 10000), long,
		strings.Repeat("Name", 600) + " is here.",
	}
	e := NewOfflineExtractor()
	for _, in := range inputs {
		res, err := e.Extract(t.Context(), ExtractRequest{Turns: []Turn{{User: in}}})
		if err != nil {
			t.Errorf("Extract(%.40q): %v", in, err)
			continue
		}
		if err := res.Snapshot.Validate(); err != nil {
			t.Errorf("Extract(%.40q): %v", in, err)
		}
		if len(res.Snapshot.JSON()) > story.MaxBytes {
			t.Errorf("Extract(%.40q): %d bytes", in, len(res.Snapshot.JSON()))
		}
		for _, c := range res.Snapshot.Characters {
			if len(c.Description) > offlineDescMax {
				t.Errorf("description of %d bytes", len(c.Description))
			}
		}
	}
}

func TestOfflineExtractorNothingNewAndCancelled(t *testing.T) {
	e := NewOfflineExtractor()
	cur := story.Snapshot{Title: " Salt "}
	res, err := e.Extract(t.Context(), ExtractRequest{Current: cur, Turns: []Turn{{Assistant: "Hello?"}}})
	if err != nil || res.Snapshot.Title != "Salt" || res.Snapshot.Characters == nil {
		t.Errorf("nothing new: %+v, %v", res, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Extract(ctx, ExtractRequest{Turns: userTurns("Ada Whitlock.")}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if e.Name() != "offline" {
		t.Errorf("Name() = %q", e.Name())
	}
}

func TestTokenizeSpansMatchesTokenize(t *testing.T) {
	for _, s := range []string{
		"", "Ada's lighthouse — on Gull Rock, off Maine.", "'quoted' -dash- don’t", "Zoë Ørsted, São Paulo",
		"19-year-old 1962's", "--", "a ' b", "東京で彼女は働く",
	} {
		toks, spans := tokenizeSpans(s)
		if want := tokenize(s); !slices.Equal(toks, want) {
			t.Errorf("tokenizeSpans(%q) = %+v, tokenize %+v", s, toks, want)
		}
		for i, sp := range spans {
			if got := strings.Trim(strings.ReplaceAll(s[sp[0]:sp[1]], "’", "'"), "'-"); got != toks[i].text {
				t.Errorf("%q: span %v is %q, token %q", s, sp, got, toks[i].text)
			}
		}
	}
}

func TestSplitTextSentences(t *testing.T) {
	got := splitTextSentences(`She said "Go." Then 14.5 miles! Why? The end… Next line` + "\nLast")
	want := []string{`She said "Go."`, "Then 14.5 miles!", "Why?", "The end…", "Next line", "Last"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
