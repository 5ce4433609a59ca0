package llm

import (
	"strings"

	"github.com/storyd/storyd/story"
)

// DossierContextLead opens the system message that carries a project's
// dossier into the chat model's context (see DossierContext).
const DossierContextLead = "The story so far, from the project's dossier (this and earlier conversations). Build on it; don't ask again what it already answers:"

// MaxMemoryBytes caps the brief DossierContext puts into every chat
// prompt (about 4,000 tokens); a larger dossier is cut, the rest stays in
// the dossier itself.
const MaxMemoryBytes = 16 << 10

// missingLead opens the line of DossierContext that lists what the story
// still lacks.
const missingLead = "Still missing — steer towards these, one at a time: "

// storyGap is something an intake still needs to learn, with the offline
// interviewer's topic it is and how to tell a dossier already has it.
type storyGap struct {
	topic topic
	label string
	has   func(s story.Snapshot) bool
}

// storyGaps are checked in the order an intake asks about them. The
// conflict and ending checks are word heuristics (the offline
// interviewer's cue words) over what the dossier says.
var storyGaps = []storyGap{
	{topicPremise, "what the story is about", func(s story.Snapshot) bool {
		return s.Logline != "" || len(s.Themes) > 0 || len(s.Characters) > 0 || len(s.PlotPoints) > 0
	}},
	{topicPeople, "who it is about (no characters yet)", func(s story.Snapshot) bool { return len(s.Characters) > 0 }},
	{topicPlace, "where and when it happens (no setting yet)", func(s story.Snapshot) bool { return len(s.Locations) > 0 }},
	{topicConflict, "what stands in the way (no antagonist or obstacle yet)", func(s story.Snapshot) bool {
		return mentionsAny(dossierText(s), conflictWords(), nil)
	}},
	{topicEnding, "how it ends (no ending yet)", func(s story.Snapshot) bool {
		return mentionsAny(strings.Join(s.PlotPoints, "\n"), endingWords(), endingPhrases())
	}},
	{topicTone, "how it should feel (no tone or genre yet)", func(s story.Snapshot) bool { return s.Tone != "" || s.Genre != "" }},
}

// DossierContext renders a project's dossier as a system message for the
// chat model: the story so far (story.Snapshot.Brief) and what it still
// lacks, so a new session of the project knows the story and the
// interviewer steers towards what is missing (no antagonist yet, no
// ending, no setting). An empty dossier gives "": nothing to add.
func DossierContext(s story.Snapshot) string {
	brief := s.Brief()
	if brief == "" {
		return ""
	}
	if len(brief) > MaxMemoryBytes {
		brief = truncateText(brief, MaxMemoryBytes)
	}
	var missing []string
	for _, g := range storyGaps {
		if !g.has(s) {
			missing = append(missing, g.label)
		}
	}
	out := DossierContextLead + "\n" + brief
	if len(missing) > 0 {
		out += "\n" + missingLead + strings.Join(missing, "; ") + "."
	}
	return out
}

// dossierCoverage reads a DossierContext message back: the topics the
// dossier already answers, for the offline interviewer. ok is false when
// msg is not such a message.
func dossierCoverage(msg string) (covered [numTopics]bool, ok bool) {
	if !strings.HasPrefix(msg, DossierContextLead) {
		return covered, false
	}
	missing := ""
	if i := strings.LastIndex(msg, "\n"+missingLead); i >= 0 {
		missing = msg[i:]
	}
	for _, g := range storyGaps {
		covered[g.topic] = !strings.Contains(missing, g.label)
	}
	return covered, true
}

// dossierText is everything a dossier says, for word checks.
func dossierText(s story.Snapshot) string {
	parts := []string{s.Logline, s.Genre, s.Tone}
	for _, c := range s.Characters {
		parts = append(parts, c.Description, c.CharacterArc)
		parts = append(parts, c.Relationships...)
	}
	parts = append(parts, s.Themes...)
	parts = append(parts, s.PlotPoints...)
	return strings.Join(parts, "\n")
}

// mentionsAny reports whether text holds one of words (as a word) or one
// of phrases.
func mentionsAny(text string, words, phrases []string) bool {
	t := normalize(text)
	return wordSet(t).hasAny(words) || hasPhrase(t, phrases)
}
