package llm

import (
	"slices"
	"strings"
	"testing"

	"github.com/storyd/storyd/story"
)

func TestDossierContext(t *testing.T) {
	if got := DossierContext(story.Snapshot{}); got != "" {
		t.Errorf("empty dossier: %q", got)
	}
	cast := story.Snapshot{
		Characters: []story.Character{{Name: "Ada Whitlock", Description: "Keeps the lighthouse."}},
		Locations:  []string{"Gull Rock"},
	}
	tests := []struct {
		name       string
		snap       story.Snapshot
		missing    []string // labels that must be listed
		notMissing []string // labels that must not be
		wantNoGaps bool
	}{
		{"cast and place, no conflict, ending or tone", cast,
			[]string{"what stands in the way", "how it ends", "how it should feel"},
			[]string{"who it is about", "where and when", "what the story is about"}, false},
		{"an obstacle, an ending and a tone", func() story.Snapshot {
			s := cast
			s.PlotPoints = []string{"The Coast Guard will automate the light", "In the end she leaves the island"}
			s.Themes = []string{"fear of being unneeded"}
			s.Tone = "bittersweet"
			return s
		}(), nil, nil, true},
		{"only themes: nobody, nowhere", story.Snapshot{Themes: []string{"duty"}},
			[]string{"who it is about", "where and when"}, []string{"what the story is about"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DossierContext(tt.snap)
			if !strings.HasPrefix(got, DossierContextLead+"\n"+tt.snap.Brief()) {
				t.Fatalf("context does not open with the lead and the brief:\n%s", got)
			}
			line := ""
			if i := strings.Index(got, missingLead); i >= 0 {
				line = got[i:]
			}
			if tt.wantNoGaps != (line == "") {
				t.Errorf("missing line %q", line)
			}
			for _, m := range tt.missing {
				if !strings.Contains(line, m) {
					t.Errorf("%q not listed as missing in %q", m, line)
				}
			}
			for _, m := range tt.notMissing {
				if strings.Contains(line, m) {
					t.Errorf("%q listed as missing in %q", m, line)
				}
			}
		})
	}
}

// A new session of a project whose dossier knows the people and the place
// is not asked about them again: the offline interviewer steers to the
// first thing the dossier lacks.
func TestOfflineInterviewerRemembersTheDossier(t *testing.T) {
	snap := story.Snapshot{
		Characters: []story.Character{{Name: "Ada Whitlock", Description: "Keeps the lighthouse."}},
		Locations:  []string{"Gull Rock"},
	}
	msgs := []Message{
		{Role: RoleSystem, Content: InterviewerPrompt},
		{Role: RoleSystem, Content: DossierContext(snap)},
		user("hi"),
	}
	reply := InterviewReply(msgs)
	if got := askedTopics(reply); !slices.Equal(got, []topic{topicConflict}) {
		t.Errorf("reply %q asks %v, want the conflict", reply, got)
	}
	if !strings.Contains(reply, "I remember the story so far") {
		t.Errorf("reply %q does not say it remembers", reply)
	}
	// Without the dossier the same greeting asks the premise.
	if got := askedTopics(InterviewReply([]Message{user("hi")})); !slices.Equal(got, []topic{topicPremise}) {
		t.Errorf("without a dossier: asks %v", got)
	}
	// With an ending and a tone told too, it asks what is left.
	snap.PlotPoints = []string{"A storm threatens the boat", "In the end she leaves"}
	snap.Tone = "quiet"
	msgs[1].Content = DossierContext(snap)
	if got := askedTopics(InterviewReply(msgs)); got != nil {
		t.Errorf("everything known: asks %v, want a deepening question", got)
	}
}

// A huge dossier does not flood every chat prompt.
func TestDossierContextIsBounded(t *testing.T) {
	var s story.Snapshot
	for i := range 400 {
		s.Characters = append(s.Characters, story.Character{Name: "Person " + strings.Repeat("x", i%7+1), Description: strings.Repeat("long description ", 50)})
	}
	if got := DossierContext(s); len(got) > MaxMemoryBytes+len(DossierContextLead)+1000 {
		t.Errorf("context is %d bytes", len(got))
	}
}

// The offline interviewer does not take a title's words for a person.
func TestOfflineInterviewerSkipsTheTitle(t *testing.T) {
	reply := InterviewReply([]Message{
		user("A film about my grandmother Ada Whitlock in Maine."),
		assistant("Who else is in it?"),
		user("Her only friend is Tom Pruitt. It's called The Keeper of Gull Rock."),
	})
	if strings.Contains(reply, "Keeper") {
		t.Errorf("reply %q reflects the title as a name", reply)
	}
	if !strings.Contains(reply, "Tom Pruitt") {
		t.Errorf("reply %q does not reflect Tom Pruitt", reply)
	}
}
