// Command storyeval measures dossier extraction: it plays each story
// conversation of an eval file through storyd's session and dossier actors
// (in process, on a temporary SQLite store), compares the resulting dossier
// with the gold one, and counts the extraction calls and prompt tokens —
// beside what the original backend would have spent (the whole transcript
// re-sent every two user turns).
//
//	go run ./cmd/storyeval -stories ../shared/eval/stories.json
//
// With OPENAI_API_KEY or OPENAI_BASE_URL (or EXTRACTION_*) set, extraction
// uses that provider (EXTRACTION_MODEL); otherwise the offline extractor.
// The interviewer is always the offline one, so runs are reproducible.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/story"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storyeval:", err)
		os.Exit(1)
	}
}

type evalFile struct {
	Stories []evalStory `json:"stories"`
}

type evalStory struct {
	ID        string   `json:"id"`
	UserTurns []string `json:"user_turns"`
	Gold      struct {
		Characters []struct {
			Name    string   `json:"name"`
			Aliases []string `json:"aliases"`
		} `json:"characters"`
		Locations  []string `json:"locations"`
		Themes     []string `json:"themes"`
		PlotPoints []string `json:"plot_points"`
	} `json:"gold"`
}

// outcome is one played conversation.
type outcome struct {
	dossier      story.Snapshot
	calls        int64
	promptTokens int64
	// original is the original backend's cost on the same transcript.
	originalCalls, originalTokens int
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("storyeval", flag.ContinueOnError)
	path := fs.String("stories", "../shared/eval/stories.json", "eval file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	var f evalFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("parse %s: %w", *path, err)
	}
	extractor, name, err := extractorFrom(getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "extractor: %s\n\n", name)
	fmt.Fprintf(out, "%-14s %-22s %-22s %-22s %-22s %s\n", "story", "characters P/R/F1", "locations P/R/F1", "themes P/R/F1", "plot points P/R/F1", "calls / prompt tokens (original)")
	for _, s := range f.Stories {
		o, err := play(ctx, extractor, s.UserTurns)
		if err != nil {
			return fmt.Errorf("story %s: %w", s.ID, err)
		}
		fmt.Fprintf(out, "%-14s %-22s %-22s %-22s %-22s %d / %d (%d / %d)\n", s.ID,
			prf(scoreCharacters(o.dossier, s)), prf(score(o.dossier.Locations, s.Gold.Locations, sameLocation)),
			prf(score(o.dossier.Themes, s.Gold.Themes, sameMeaning)), prf(score(o.dossier.PlotPoints, s.Gold.PlotPoints, sameMeaning)),
			o.calls, o.promptTokens, o.originalCalls, o.originalTokens)
	}
	// Cost grows with length: the same stories' turns, cycled to 30 and 60.
	fmt.Fprintf(out, "\n%-10s %-28s %-28s %s\n", "turns", "storyd calls / prompt tokens", "original calls / tokens", "ratio calls, tokens")
	var all []string
	for _, s := range f.Stories {
		all = append(all, s.UserTurns...)
	}
	for _, n := range []int{30, 60} {
		turns := make([]string, n)
		for i := range turns {
			turns[i] = all[i%len(all)]
		}
		o, err := play(ctx, extractor, turns)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-10d %-28s %-28s %.1f×, %.1f×\n", n, fmt.Sprintf("%d / %d", o.calls, o.promptTokens),
			fmt.Sprintf("%d / %d", o.originalCalls, o.originalTokens),
			float64(o.originalCalls)/float64(max(o.calls, 1)), float64(o.originalTokens)/float64(max(o.promptTokens, 1)))
	}
	return nil
}

func extractorFrom(getenv func(string) string) (actors.Extractor, string, error) {
	key, base := getenv("OPENAI_API_KEY"), getenv("OPENAI_BASE_URL")
	if getenv("EXTRACTION_API_KEY") != "" || getenv("EXTRACTION_BASE_URL") != "" {
		key, base = getenv("EXTRACTION_API_KEY"), getenv("EXTRACTION_BASE_URL")
	}
	if key == "" && base == "" {
		e := llm.NewOfflineExtractor()
		return e, e.Name(), nil
	}
	model := getenv("EXTRACTION_MODEL")
	if model == "" {
		model = "gpt-4o"
	}
	e, err := llm.NewOpenAIExtractor(llm.OpenAIConfig{BaseURL: base, APIKey: key, Model: model})
	if err != nil {
		return nil, "", err
	}
	return e, e.Name(), nil
}

// play runs one conversation through the actors with storyd's default
// batching, then refreshes what is left, and reads the dossier.
func play(ctx context.Context, extractor actors.Extractor, turns []string) (outcome, error) {
	dir, err := os.MkdirTemp("", "storyeval-*")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)
	store, err := persistence.OpenSQLite(ctx, dir)
	if err != nil {
		return outcome{}, err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return outcome{}, err
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	sessions, err := actors.NewSessions(system, actors.Config{
		Store: store, Model: llm.NewOffline(llm.OfflineConfig{}), Extractor: extractor,
		// The idle debounce never fires during a scripted run; the final
		// refresh takes its place.
		ExtractIdle: time.Hour,
	})
	if err != nil {
		return outcome{}, err
	}
	defer sessions.Shutdown(context.Background())

	var o outcome
	user := uuid.NewString()
	sessionID, projectID := "", ""
	var transcript []llm.Turn
	for i, text := range turns {
		q := &collector{done: make(chan struct{})}
		acc, err := sessions.Chat(ctx, actors.ChatRequest{UserID: user, Anonymous: true, SessionID: sessionID, Text: text, Subscriber: q})
		if err != nil {
			return outcome{}, err
		}
		<-q.done
		sessionID, projectID = acc.SessionID, acc.ProjectID
		transcript = append(transcript, llm.Turn{User: text, Assistant: q.reply.String()})
		if (i+1)%2 == 0 { // the original re-sent the whole transcript every two user turns
			o.originalCalls++
			o.originalTokens += llm.ExtractionPromptTokens(llm.ExtractRequest{Turns: transcript})
		}
	}
	// Let the last batch through, then wait until every extraction is done.
	waitIdle(sessions)
	if _, err := sessions.RefreshDossier(ctx, user, projectID); err != nil {
		return outcome{}, err
	}
	waitIdle(sessions)
	d, err := store.GetDossier(ctx, projectID)
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return outcome{}, err
	}
	if err == nil {
		_ = json.Unmarshal(d.Snapshot, &o.dossier)
	}
	st := sessions.Stats()
	o.calls, o.promptTokens = st.Calls, st.PromptTokens
	return o, nil
}

// waitIdle waits until the extraction count stops moving.
func waitIdle(s *actors.Sessions) {
	last := int64(-1)
	for i := 0; i < 200; i++ {
		time.Sleep(25 * time.Millisecond)
		if n := s.Stats().Calls; n == last {
			return
		} else {
			last = n
		}
	}
}

// collector is a subscriber that keeps the reply's text.
type collector struct {
	reply strings.Builder
	done  chan struct{}
}

func (c *collector) Deliver(ev actors.Event) bool {
	if ev.Type == actors.EventText {
		c.reply.WriteString(ev.Content)
	}
	return true
}

func (c *collector) DeliverBatch(evs []actors.Event) bool {
	for _, ev := range evs {
		c.Deliver(ev)
	}
	return true
}

func (c *collector) Drop(error) { close(c.done) }

// Matching, as the eval file says: character names case-insensitively or
// through an alias; locations when one contains the other; themes and plot
// points by meaning — here, at least half of the gold item's content words
// appear in the extracted one (a documented, rough proxy).

func scoreCharacters(d story.Snapshot, s evalStory) (p, r float64) {
	matched := 0
	for _, g := range s.Gold.Characters {
		names := append([]string{g.Name}, g.Aliases...)
		for _, c := range d.Characters {
			if anyEqualFold(c.Name, names) {
				matched++
				break
			}
		}
	}
	correct := 0
	for _, c := range d.Characters {
		for _, g := range s.Gold.Characters {
			if anyEqualFold(c.Name, append([]string{g.Name}, g.Aliases...)) {
				correct++
				break
			}
		}
	}
	return ratio(correct, len(d.Characters)), ratio(matched, len(s.Gold.Characters))
}

func anyEqualFold(name string, names []string) bool {
	for _, n := range names {
		if story.NormalizeKey(n) == story.NormalizeKey(name) {
			return true
		}
	}
	return false
}

func score(got, gold []string, same func(got, gold string) bool) (p, r float64) {
	correct, found := 0, 0
	for _, g := range got {
		for _, w := range gold {
			if same(g, w) {
				correct++
				break
			}
		}
	}
	for _, w := range gold {
		for _, g := range got {
			if same(g, w) {
				found++
				break
			}
		}
	}
	return ratio(correct, len(got)), ratio(found, len(gold))
}

func sameLocation(got, gold string) bool {
	a, b := story.NormalizeKey(got), story.NormalizeKey(gold)
	return a != "" && b != "" && (strings.Contains(a, b) || strings.Contains(b, a))
}

var stopWords = map[string]bool{"the": true, "a": true, "an": true, "of": true, "and": true, "to": true, "in": true,
	"on": true, "at": true, "is": true, "her": true, "his": true, "their": true, "by": true, "for": true, "with": true,
	"being": true, "no": true, "all": true, "when": true, "its": true, "it": true}

func sameMeaning(got, gold string) bool {
	words := strings.Fields(story.NormalizeKey(gold))
	have := map[string]bool{}
	for _, w := range strings.Fields(story.NormalizeKey(got)) {
		have[w] = true
	}
	content, hit := 0, 0
	for _, w := range words {
		if stopWords[w] {
			continue
		}
		content++
		if have[w] {
			hit++
		}
	}
	return content > 0 && hit*2 >= content
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func prf(p, r float64) string {
	f := 0.0
	if p+r > 0 {
		f = 2 * p * r / (p + r)
	}
	return fmt.Sprintf("%.2f/%.2f/%.2f", p, r, f)
}
