package story

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Snapshot is a story dossier: the seed's four sections (characters,
// themes, locations, plot points) plus title, logline, genre, tone and
// scenes. Every list is non-nil once Normalize ran.
type Snapshot struct {
	Title      string      `json:"title"`
	Logline    string      `json:"logline"`
	Genre      string      `json:"genre"`
	Tone       string      `json:"tone"`
	Characters []Character `json:"characters"`
	Themes     []string    `json:"themes"`
	Locations  []string    `json:"locations"`
	PlotPoints []string    `json:"plot_points"`
	Scenes     []Scene     `json:"scenes"`
}

// Character is one person of the story.
type Character struct {
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Relationships []string `json:"relationships"`
	CharacterArc  string   `json:"character_arc"`
}

// Scene is one scene the person already sees.
type Scene struct {
	OneLiner         string `json:"one_liner"`
	InteriorExterior string `json:"interior_exterior"`
	TimeOfDay        string `json:"time_of_day"`
	Tone             string `json:"tone"`
}

// ErrInvalid wraps every reason a snapshot is refused.
var ErrInvalid = errors.New("story: invalid snapshot")

// Limits keep a dossier a dossier.
const (
	MaxItems      = 500       // per list
	MaxTextLength = 8 << 10   // per string, in bytes
	MaxBytes      = 512 << 10 // the whole snapshot, as JSON
)

// Parse decodes and validates a snapshot sent by a client: a JSON object
// whose known fields have the right types; unknown fields are refused;
// missing sections are empty. It returns the snapshot normalised.
func Parse(raw []byte) (Snapshot, error) {
	var s Snapshot
	if len(raw) > MaxBytes {
		return s, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Snapshot{}, fmt.Errorf("%w: unexpected data after the object", ErrInvalid)
	}
	s.Normalize()
	return s, s.Validate()
}

// Normalize trims strings, drops empty list entries and makes every list
// non-nil.
func (s *Snapshot) Normalize() {
	s.Title, s.Logline = strings.TrimSpace(s.Title), strings.TrimSpace(s.Logline)
	s.Genre, s.Tone = strings.TrimSpace(s.Genre), strings.TrimSpace(s.Tone)
	chars := make([]Character, 0, len(s.Characters))
	for _, c := range s.Characters {
		c.Name = strings.TrimSpace(c.Name)
		c.Description = strings.TrimSpace(c.Description)
		c.CharacterArc = strings.TrimSpace(c.CharacterArc)
		c.Relationships = cleanList(c.Relationships)
		if c.Name != "" {
			chars = append(chars, c)
		}
	}
	s.Characters = chars
	s.Themes, s.Locations, s.PlotPoints = cleanList(s.Themes), cleanList(s.Locations), cleanList(s.PlotPoints)
	scenes := make([]Scene, 0, len(s.Scenes))
	for _, sc := range s.Scenes {
		sc.OneLiner = strings.TrimSpace(sc.OneLiner)
		if sc.OneLiner != "" {
			scenes = append(scenes, sc)
		}
	}
	s.Scenes = scenes
}

// Validate checks the limits.
func (s Snapshot) Validate() error {
	lists := map[string]int{"characters": len(s.Characters), "themes": len(s.Themes),
		"locations": len(s.Locations), "plot_points": len(s.PlotPoints), "scenes": len(s.Scenes)}
	for name, n := range lists {
		if n > MaxItems {
			return fmt.Errorf("%w: %s has %d items, more than %d", ErrInvalid, name, n, MaxItems)
		}
	}
	long := func(v string) bool { return len(v) > MaxTextLength }
	if long(s.Title) || long(s.Logline) || long(s.Genre) || long(s.Tone) {
		return fmt.Errorf("%w: a text field is longer than %d bytes", ErrInvalid, MaxTextLength)
	}
	return nil
}

// JSON encodes the snapshot.
func (s Snapshot) JSON() json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic("story: encode snapshot: " + err.Error()) // strings and slices only
	}
	return b
}

func cleanList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
