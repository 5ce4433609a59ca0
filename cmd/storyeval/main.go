// Command storyeval measures dossier extraction: it plays each story
// conversation of an eval file through storyd's session and dossier actors
// (in process, on a temporary SQLite store), compares the resulting dossier
// with the gold one, and counts the extraction calls and prompt tokens.
// Beside it, on the same transcript and the same model, it runs the
// original backend's approach (the whole transcript re-sent every two user
// turns, the answer replacing the dossier) and scores that too.
//
//	go run ./cmd/storyeval -stories ../shared/eval/stories.json
//
// The model: with OPENAI_API_KEY or OPENAI_BASE_URL (or EXTRACTION_*) set,
// that provider (EXTRACTION_MODEL, default gpt-4o). Otherwise a fake
// OpenAI-compatible server on loopback (llm/llmtest) whose "model" reads
// the Person lines of the prompt it gets with the offline heuristics and
// answers in the strict JSON-schema format: both approaches then go
// through the real OpenAI extractor and the wire, and the calls and prompt
// tokens are what the server received and reported. With -offline the
// actors use the offline extractor in process instead (what make run
// does); the original is then not run.
//
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
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/llm/llmtest"
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
	Gold      gold     `json:"gold"`
}

type gold struct {
	Characters []struct {
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	} `json:"characters"`
	Locations  []string `json:"locations"`
	Themes     []string `json:"themes"`
	PlotPoints []string `json:"plot_points"`
}

// cost is what an approach spent on extraction.
type cost struct {
	calls, promptTokens, completionTokens int64
}

// outcome is one played conversation.
type outcome struct {
	dossier    story.Snapshot
	cost       cost
	transcript []llm.Turn
}

// batching is the dossier batching of a run (-extract-turns,
// -extract-tokens; 0 takes storyd's default).
type batching struct{ turns, tokens int }

// maxTurns bounds -lengths.
const maxTurns = 500

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("storyeval", flag.ContinueOnError)
	fs.SetOutput(out)
	path := fs.String("stories", "../shared/eval/stories.json", "eval file")
	offline := fs.Bool("offline", false, "extract with the offline extractor in process (no model, no original run)")
	var batch batching
	fs.IntVar(&batch.turns, "extract-turns", 0, "batch size in turns (0: storyd's default)")
	fs.IntVar(&batch.tokens, "extract-tokens", 0, "batch size in tokens (0: storyd's default)")
	lengths := fs.String("lengths", "30,60", "comma-separated conversation lengths to measure cost at (the stories' turns cycled); empty for none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var ns []int
	for _, f := range strings.Split(*lengths, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 || n > maxTurns {
			return fmt.Errorf("-lengths: %q is not a number of turns from 2 to %d", f, maxTurns)
		}
		ns = append(ns, n)
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	var f evalFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("parse %s: %w", *path, err)
	}
	if len(f.Stories) == 0 {
		return fmt.Errorf("%s holds no stories", *path)
	}

	var (
		extractor  actors.Extractor
		original   *llm.OpenAIExtractor
		schemaNote string
	)
	if *offline {
		e := llm.NewOfflineExtractor()
		extractor = e
		fmt.Fprintf(out, "extractor: %s, in process\n\n", e.Name())
	} else {
		e, name, fake, err := extractorFrom(getenv)
		if err != nil {
			return err
		}
		if fake != nil {
			defer fake.Close()
			defer func() {
				if rs := fake.Requests(); len(rs) > 0 {
					schemaNote = fmt.Sprintf("\nEvery call also sends the JSON schema (response_format): about %d tokens, on both sides alike, not counted above.\n",
						llm.EstimateTokens(string(rs[0].ResponseFormat)))
					fmt.Fprint(out, schemaNote)
				}
			}()
		}
		extractor, original = e, e
		fmt.Fprintf(out, "extractor: %s\n\n", name)
	}

	fmt.Fprintf(out, "%-13s %-9s %-16s %-16s %-16s %-16s %s\n", "story", "approach", "characters P/R/F1", "locations P/R/F1",
		"themes P/R/F1", "plot points P/R/F1", "calls / prompt tokens / completion tokens")
	var all []string
	for _, s := range f.Stories {
		all = append(all, s.UserTurns...)
		o, err := play(ctx, extractor, batch, s.UserTurns)
		if err != nil {
			return fmt.Errorf("story %s: %w", s.ID, err)
		}
		printScores(out, s.ID, "storyd", o.dossier, s.Gold, o.cost)
		if original != nil {
			d, c, err := playOriginal(ctx, original, o.transcript)
			if err != nil {
				return fmt.Errorf("story %s, original: %w", s.ID, err)
			}
			printScores(out, "", "original", d, s.Gold, c)
		}
	}
	if len(ns) == 0 {
		return nil
	}
	// Cost grows with length: the same stories' turns, cycled.
	fmt.Fprintf(out, "\n%-6s %-30s %-30s %s\n", "turns", "storyd calls / prompt tokens", "original calls / prompt tokens", "ratio (calls, tokens)")
	for _, n := range ns {
		turns := make([]string, n)
		for i := range turns {
			turns[i] = all[i%len(all)]
		}
		o, err := play(ctx, extractor, batch, turns)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%-6d %-30s", n, fmt.Sprintf("%d / %d", o.cost.calls, o.cost.promptTokens))
		if original != nil {
			_, c, err := playOriginal(ctx, original, o.transcript)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %-30s %.1f×, %.1f×", fmt.Sprintf("%d / %d", c.calls, c.promptTokens),
				float64(c.calls)/float64(max(o.cost.calls, 1)), float64(c.promptTokens)/float64(max(o.cost.promptTokens, 1)))
		}
		fmt.Fprintln(out, line)
	}
	return nil
}

func printScores(out io.Writer, id, approach string, d story.Snapshot, g gold, c cost) {
	fmt.Fprintf(out, "%-13s %-9s %-16s %-16s %-16s %-16s %d / %d / %d\n", id, approach,
		prf(scoreCharacters(d, g)), prf(score(d.Locations, g.Locations, sameLocation)),
		prf(score(d.Themes, g.Themes, sameMeaning)), prf(score(d.PlotPoints, g.PlotPoints, sameMeaning)),
		c.calls, c.promptTokens, c.completionTokens)
}

// extractorFrom returns the OpenAI extractor for the configured provider,
// or for a fake model it starts (returned, for the caller to close).
func extractorFrom(getenv func(string) string) (*llm.OpenAIExtractor, string, *llmtest.Server, error) {
	key, base := getenv("OPENAI_API_KEY"), getenv("OPENAI_BASE_URL")
	if getenv("EXTRACTION_API_KEY") != "" || getenv("EXTRACTION_BASE_URL") != "" {
		key, base = getenv("EXTRACTION_API_KEY"), getenv("EXTRACTION_BASE_URL")
	}
	model := getenv("EXTRACTION_MODEL")
	var fake *llmtest.Server
	if key == "" && base == "" {
		fake = llmtest.Start()
		fake.SetResponder(fakeExtractionModel(llm.NewOfflineExtractor()))
		key, base = "sk-fake", fake.URL()
	}
	e, err := llm.NewOpenAIExtractor(llm.OpenAIConfig{BaseURL: base, APIKey: key, Model: model, Timeout: 2 * time.Minute})
	if err != nil {
		if fake != nil {
			fake.Close()
		}
		return nil, "", nil, err
	}
	name := e.Name()
	if fake != nil {
		name += " (a fake model on loopback: offline heuristics over the prompt's Person lines, answered over the OpenAI wire format)"
	}
	return e, name, fake, nil
}

// fakeExtractionModel answers an extraction request the way a model that
// follows the prompt would, with heuristics instead of a model: it reads the
// turns of the prompt (the Person and Interviewer lines) and answers what
// the offline extractor finds in them, as strict schema JSON. It reads no
// dossier brief: what it answers comes from the turns it was sent, so an
// approach that sends the whole transcript gets the whole dossier back.
func fakeExtractionModel(x *llm.OfflineExtractor) func(llmtest.Request) llmtest.Response {
	return func(r llmtest.Request) llmtest.Response {
		if len(r.Messages) == 0 {
			return llmtest.Response{Status: 400}
		}
		turns := parseTurns(r.Messages[len(r.Messages)-1].Content)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := x.Extract(ctx, llm.ExtractRequest{Turns: turns})
		if err != nil {
			return llmtest.Response{Status: 500}
		}
		answer := string(res.Snapshot.JSON())
		return llmtest.Response{Tokens: []string{answer}, CompletionTokens: llm.EstimateTokens(answer)}
	}
}

// parseTurns reads the turns back out of an extraction prompt: "[Turn n]"
// opens a turn, "Person: " and "Interviewer: " open its two sides, other
// lines continue the side they follow, up to the closing instruction.
func parseTurns(prompt string) []llm.Turn {
	var (
		turns []llm.Turn
		side  *string
	)
	for _, line := range strings.Split(prompt, "\n") {
		switch {
		case strings.HasPrefix(line, "[Turn "):
			turns = append(turns, llm.Turn{})
			side = nil
		case len(turns) == 0:
		case strings.HasPrefix(line, "Person: "):
			t := &turns[len(turns)-1]
			t.User, side = strings.TrimPrefix(line, "Person: "), &t.User
		case strings.HasPrefix(line, "Interviewer: "):
			t := &turns[len(turns)-1]
			t.Assistant, side = strings.TrimPrefix(line, "Interviewer: "), &t.Assistant
		case strings.HasPrefix(line, "Answer with "):
			side = nil
		case side != nil && line != "":
			*side += "\n" + line
		}
	}
	return turns
}

// newSessions starts the actors on a temporary SQLite store; stop undoes it.
func newSessions(ctx context.Context, extractor actors.Extractor, batch batching) (s *actors.Sessions, store *persistence.SQLite, stop func(), err error) {
	dir, err := os.MkdirTemp("", "storyeval-*")
	if err != nil {
		return nil, nil, nil, err
	}
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	store, err = persistence.OpenSQLite(ctx, dir)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	undo = append(undo, func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		stop()
		return nil, nil, nil, err
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	undo = append(undo, system.Shutdown)
	s, err = actors.NewSessions(system, actors.Config{
		Store: store, Model: llm.NewOffline(llm.OfflineConfig{}), Extractor: extractor,
		// The idle debounce never fires during a scripted run; the final
		// refresh takes its place.
		ExtractIdle:   time.Hour,
		ExtractTurns:  batch.turns,
		ExtractTokens: batch.tokens,
	})
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	undo = append(undo, func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.Shutdown(c)
	})
	return s, store, stop, nil
}

// play runs one conversation through the actors with storyd's default
// batching, then refreshes what is left, and reads the dossier.
func play(ctx context.Context, extractor actors.Extractor, batch batching, turns []string) (outcome, error) {
	sessions, store, stop, err := newSessions(ctx, extractor, batch)
	if err != nil {
		return outcome{}, err
	}
	defer stop()

	var o outcome
	user := uuid.NewString()
	sessionID, projectID := "", ""
	for _, text := range turns {
		q := &collector{done: make(chan struct{})}
		acc, err := sessions.Chat(ctx, actors.ChatRequest{UserID: user, Anonymous: true, SessionID: sessionID, Text: text, Subscriber: q})
		if err != nil {
			return outcome{}, err
		}
		<-q.done
		sessionID, projectID = acc.SessionID, acc.ProjectID
		o.transcript = append(o.transcript, llm.Turn{User: text, Assistant: q.reply.String()})
	}
	// Extract what is left, and wait until the dossier actor is done.
	if _, err := sessions.RefreshDossier(ctx, user, projectID); err != nil {
		return outcome{}, err
	}
	if err := waitSettled(ctx, sessions, projectID); err != nil {
		return outcome{}, err
	}
	d, err := store.GetDossier(ctx, projectID)
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return outcome{}, err
	}
	if err == nil {
		_ = json.Unmarshal(d.Snapshot, &o.dossier)
	}
	st := sessions.Stats()
	if st.Failures > 0 {
		return outcome{}, fmt.Errorf("%d of %d extractions failed", st.Failures, st.Calls)
	}
	o.cost = cost{calls: st.Calls, promptTokens: st.PromptTokens, completionTokens: st.CompletionTokens}
	return o, nil
}

// playOriginal replays the original backend's extraction on a transcript:
// after every second user turn the whole transcript so far goes to the
// model (the same prompt shape as storyd's, with an empty dossier), and its
// answer replaces the dossier.
func playOriginal(ctx context.Context, x *llm.OpenAIExtractor, transcript []llm.Turn) (story.Snapshot, cost, error) {
	var (
		d story.Snapshot
		c cost
	)
	for i := 2; i <= len(transcript); i += 2 {
		res, err := x.Extract(ctx, llm.ExtractRequest{Turns: transcript[:i]})
		if err != nil {
			return story.Snapshot{}, c, err
		}
		c.calls++
		c.promptTokens += int64(res.PromptTokens)
		c.completionTokens += int64(res.CompletionTokens)
		d = res.Snapshot
	}
	return d, c, nil
}

// waitSettled waits until the project's dossier actor has nothing left to
// do (every extraction done, every version stored), for at most a minute
// per extraction the model may take.
func waitSettled(ctx context.Context, s *actors.Sessions, projectID string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		settled, err := s.DossierSettled(ctx, projectID)
		if err != nil || settled {
			return err
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("dossier of %s: not settled: %w", projectID, ctx.Err())
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

func scoreCharacters(d story.Snapshot, g gold) (p, r float64) {
	matched := 0
	for _, g := range g.Characters {
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
		for _, g := range g.Characters {
			if anyEqualFold(c.Name, append([]string{g.Name}, g.Aliases...)) {
				correct++
				break
			}
		}
	}
	return ratio(correct, len(d.Characters)), ratio(matched, len(g.Characters))
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
