package story

import (
	"fmt"
	"strings"
)

// BriefPlotPoints is how many of the newest plot points Brief shows, and
// BriefForPlotPoints how many BriefFor shows (an extraction needs only the
// thread to continue from); older ones are counted, not listed.
const (
	BriefPlotPoints    = 6
	BriefForPlotPoints = 3
)

// Brief renders the dossier as compact plain text, one line per filled
// section, for a model's prompt: the chat model reads it as the story's
// memory across sessions. Plot points show only the newest
// BriefPlotPoints, with a count of the rest, so the brief grows with the
// cast and the world, not with every event told. Empty sections are left
// out; an empty dossier is "".
func (s Snapshot) Brief() string {
	return s.brief(BriefPlotPoints, func(Character) bool { return true })
}

// BriefFor is Brief for an extraction of the given new text: characters
// the text names (a word of their name, titles aside, appears in it) are
// shown whole — the model may extend them — and the others by name only,
// enough to match them without repeating what cannot change. It keeps an
// incremental extraction's prompt from growing with every description.
func (s Snapshot) BriefFor(text string) string {
	words := map[string]bool{}
	for _, w := range strings.Fields(NormalizeKey(text)) {
		words[w] = true
	}
	return s.brief(BriefForPlotPoints, func(c Character) bool {
		_, ws := nameWords(NormalizeKey(c.Name))
		for _, w := range ws {
			if words[w] {
				return true
			}
		}
		return false
	})
}

// brief renders the dossier with the newest plots plot points; whole(c)
// says whether character c is shown with its details or by name only.
func (s Snapshot) brief(plots int, whole func(Character) bool) string {
	var b strings.Builder
	field := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	field("Title", s.Title)
	field("Logline", s.Logline)
	field("Genre", s.Genre)
	field("Tone", s.Tone)
	var others []string
	shown := 0
	for _, c := range s.Characters {
		if !whole(c) {
			others = append(others, c.Name)
			continue
		}
		if shown == 0 {
			b.WriteString("Characters:\n")
		}
		shown++
		b.WriteString("- " + c.Name)
		if c.Description != "" {
			b.WriteString(": " + c.Description)
		}
		if len(c.Relationships) > 0 {
			b.WriteString(" (" + strings.Join(c.Relationships, "; ") + ")")
		}
		if c.CharacterArc != "" {
			b.WriteString(" Arc: " + c.CharacterArc)
		}
		b.WriteByte('\n')
	}
	if len(others) > 0 {
		label := "Characters"
		if shown > 0 {
			label = "Other characters"
		}
		fmt.Fprintf(&b, "%s (details not shown): %s\n", label, strings.Join(others, "; "))
	}
	list := func(name string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", name, strings.Join(items, "; "))
		}
	}
	list("Themes", s.Themes)
	list("Locations", s.Locations)
	if n := len(s.PlotPoints); n > 0 {
		shown := s.PlotPoints
		if n > plots {
			shown = shown[n-plots:]
			fmt.Fprintf(&b, "Plot points (the newest %d of %d):\n", plots, n)
		} else {
			b.WriteString("Plot points:\n")
		}
		for _, p := range shown {
			b.WriteString("- " + p + "\n")
		}
	}
	if len(s.Scenes) > 0 {
		b.WriteString("Scenes:\n")
		for _, sc := range s.Scenes {
			b.WriteString("- " + sc.OneLiner)
			var det []string
			for _, d := range []string{sc.InteriorExterior, sc.TimeOfDay, sc.Tone} {
				if d != "" {
					det = append(det, d)
				}
			}
			if len(det) > 0 {
				b.WriteString(" [" + strings.Join(det, ", ") + "]")
			}
			b.WriteByte('\n')
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}
