package story

import (
	"fmt"
	"strings"
	"testing"
)

func TestBrief(t *testing.T) {
	if got := (Snapshot{}).Brief(); got != "" {
		t.Errorf("empty dossier: %q", got)
	}
	s := Snapshot{
		Title: "The Keeper", Tone: "quiet",
		Characters: []Character{
			{Name: "Ada Whitlock", Description: "Keeps the light.", Relationships: []string{"grandmother of the storyteller", "friend of Tom"}, CharacterArc: "lets go"},
			{Name: "Tom"},
		},
		Themes:    []string{"duty", "change"},
		Locations: []string{"Gull Rock"},
		Scenes:    []Scene{{OneLiner: "Ada at the lamp", InteriorExterior: "INT", TimeOfDay: "NIGHT"}, {OneLiner: "The letter"}},
	}
	want := `Title: The Keeper
Tone: quiet
Characters:
- Ada Whitlock: Keeps the light. (grandmother of the storyteller; friend of Tom) Arc: lets go
- Tom
Themes: duty; change
Locations: Gull Rock
Scenes:
- Ada at the lamp [INT, NIGHT]
- The letter`
	if got := s.Brief(); got != want {
		t.Errorf("Brief:\n%s\nwant:\n%s", got, want)
	}

	// Plot points: only the newest are listed, the rest counted.
	for i := 1; i <= BriefPlotPoints+3; i++ {
		s.PlotPoints = append(s.PlotPoints, fmt.Sprintf("event %d", i))
	}
	got := s.Brief()
	head := fmt.Sprintf("Plot points (the newest %d of %d):\n", BriefPlotPoints, BriefPlotPoints+3)
	if !strings.Contains(got, head+"- event 4\n") || strings.Contains(got, "- event 3\n") ||
		!strings.Contains(got, fmt.Sprintf("- event %d\n", BriefPlotPoints+3)) {
		t.Errorf("plot points:\n%s", got)
	}
}

// An extraction's brief shows in full only the characters the new text
// names; the rest by name.
func TestBriefFor(t *testing.T) {
	s := Snapshot{Characters: []Character{
		{Name: "Ada Whitlock", Description: "Keeps the light."},
		{Name: "Grandpa Chen", Description: "Runs the stall."},
		{Name: "Tom Pruitt", Description: "Mailboat captain."},
	}}
	got := s.BriefFor("Ada hated the letter. Grandpa came by; TOM did not.")
	want := "Characters:\n- Ada Whitlock: Keeps the light.\n- Tom Pruitt: Mailboat captain.\nOther characters (details not shown): Grandpa Chen"
	if got != want {
		t.Errorf("BriefFor:\n%s\nwant:\n%s", got, want)
	}
	if got, want := s.BriefFor("Nobody here."), "Characters (details not shown): Ada Whitlock; Grandpa Chen; Tom Pruitt"; got != want {
		t.Errorf("BriefFor, none named:\n%s\nwant:\n%s", got, want)
	}
	if got := s.BriefFor(""); got == s.Brief() {
		t.Errorf("BriefFor(\"\") shows details")
	}
}
