package story

import (
	"fmt"
	"testing"
)

// benchSnapshot is a dossier of a long intake: n characters, themes,
// locations, plot points and scenes.
func benchSnapshot(n int, suffix string) Snapshot {
	s := Snapshot{Title: "The Keeper" + suffix, Logline: "A lighthouse keeper's last winter", Genre: "drama", Tone: "quiet"}
	for i := 0; i < n; i++ {
		s.Characters = append(s.Characters, Character{Name: fmt.Sprintf("Character %d", i),
			Description: "a person of the story" + suffix, Relationships: []string{fmt.Sprintf("friend of Character %d", (i+1)%n)},
			CharacterArc: "learns to let go" + suffix})
		s.Themes = append(s.Themes, fmt.Sprintf("theme %d%s", i, suffix))
		s.Locations = append(s.Locations, fmt.Sprintf("location %d", i))
		s.PlotPoints = append(s.PlotPoints, fmt.Sprintf("plot point %d%s", i, suffix))
		s.Scenes = append(s.Scenes, Scene{OneLiner: fmt.Sprintf("scene %d", i), InteriorExterior: "EXT", TimeOfDay: "night", Tone: "cold"})
	}
	return s
}

// BenchmarkMerge is the dossier actor's merge of one extraction into the
// current dossier, with a person's edits protected: what every extraction
// costs besides the model call.
func BenchmarkMerge(b *testing.B) {
	for _, n := range []int{5, 50} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			current, extracted := benchSnapshot(n, ""), benchSnapshot(n+n/5, " (updated)")
			prot := Protection{Fields: map[string]bool{SectionTitle: true},
				Characters: map[string]map[string]bool{NormalizeKey("Character 0"): {fieldDescription: true}}}
			b.ReportAllocs()
			for b.Loop() {
				Merge(current, prot, extracted)
			}
		})
	}
}
