package llm

import (
	"errors"
	"strings"

	"github.com/storyd/storyd/story"
)

// Error codes of the extraction role, beside those of errors.go.
const (
	// CodeExtractionInvalid means the model's dossier could not be used: the
	// answer was cut off (finish_reason "length"), was not JSON, or did not
	// match the dossier schema. The caller may retry once; it must never
	// store anything from such an answer.
	CodeExtractionInvalid = "extraction_invalid"
	// CodeExtractionRefused means the model refused to extract (a refusal
	// message or a content filter stop).
	CodeExtractionRefused = "extraction_refused"
)

// Sentinels of the extraction codes. An [*Error] with one of these codes
// carries its sentinel in its chain, so errors.Is(err, ErrExtractionInvalid)
// holds as well as CodeOf(err) == CodeExtractionInvalid.
var (
	// ErrExtractionInvalid matches errors with code [CodeExtractionInvalid].
	ErrExtractionInvalid = errors.New("llm: invalid extraction")
	// ErrExtractionRefused matches errors with code [CodeExtractionRefused].
	ErrExtractionRefused = errors.New("llm: extraction refused")
)

// ExtractRequest is one incremental extraction: the current dossier and only
// the conversation turns that arrived since the last extraction, so the cost
// of one extraction does not grow with the length of the conversation.
type ExtractRequest struct {
	// Current is the dossier as it stands; the answer keeps its facts.
	Current story.Snapshot
	// Turns are the new turns, oldest first.
	Turns []Turn
}

// Turn is one exchange of the conversation: what the person said and what
// the interviewer answered. Facts come from User only; Assistant is context.
type Turn struct{ User, Assistant string }

// ExtractResult is what an extractor found in the new turns. The caller
// merges it into the stored dossier (story.Merge: hand edits win, nothing
// is deleted) and decides whether anything changed.
type ExtractResult struct {
	// Snapshot holds what the new turns add, normalised: the model answers
	// only that; the offline extractor answers the current dossier with
	// its findings added. Either merges the same way.
	Snapshot story.Snapshot
	// PromptTokens and CompletionTokens come from the API's usage report
	// when it has one, else they are estimated; both are 0 when no model
	// was called.
	PromptTokens, CompletionTokens int
}

// extractionFailure is the cause inside an extraction [*Error]: a message
// and the errors it wraps (the code's sentinel and, when there is one, the
// underlying parse or validation error).
type extractionFailure struct {
	msg  string
	errs []error
}

func (f *extractionFailure) Error() string   { return f.msg }
func (f *extractionFailure) Unwrap() []error { return f.errs }

// invalidExtraction returns an [*Error] with code [CodeExtractionInvalid].
// cause may be nil.
func invalidExtraction(msg string, cause error) *Error {
	f := &extractionFailure{msg: msg, errs: []error{ErrExtractionInvalid}}
	if cause != nil {
		f.msg += ": " + cause.Error()
		f.errs = append(f.errs, cause)
	}
	return &Error{Code: CodeExtractionInvalid, Err: f}
}

// refusedExtraction returns an [*Error] with code [CodeExtractionRefused].
func refusedExtraction(msg string) *Error {
	return &Error{Code: CodeExtractionRefused, Err: &extractionFailure{msg: msg, errs: []error{ErrExtractionRefused}}}
}

// hasNewText reports whether any turn carries text worth extracting from.
func hasNewText(turns []Turn) bool {
	for _, t := range turns {
		if strings.TrimSpace(t.User) != "" {
			return true
		}
	}
	return false
}

// unchanged returns cur normalised: the answer to a request with nothing new.
func unchanged(cur story.Snapshot) ExtractResult {
	cur = cloneSnapshot(cur)
	cur.Normalize()
	return ExtractResult{Snapshot: cur}
}

// cloneSnapshot deep-copies s, so a result never aliases the caller's slices.
func cloneSnapshot(s story.Snapshot) story.Snapshot {
	out := s
	out.Characters = make([]story.Character, len(s.Characters))
	for i, c := range s.Characters {
		c.Relationships = append([]string(nil), c.Relationships...)
		out.Characters[i] = c
	}
	out.Themes = append([]string(nil), s.Themes...)
	out.Locations = append([]string(nil), s.Locations...)
	out.PlotPoints = append([]string(nil), s.PlotPoints...)
	out.Scenes = append([]story.Scene(nil), s.Scenes...)
	return out
}

// ExtractionPromptTokens estimates the prompt tokens an extraction request
// costs with a model (system prompt, current dossier, turns): what the
// offline extractor would have spent, and how the eval compares approaches.
func ExtractionPromptTokens(req ExtractRequest) int {
	return EstimateMessagesTokens(extractionMessages(req))
}
