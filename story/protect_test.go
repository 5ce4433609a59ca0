package story

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func TestEdited(t *testing.T) {
	base := snap(func(s *Snapshot) {
		s.Title = "Gull Rock"
		s.Characters = []Character{ch("Mei", "A nurse", "", "Tom's sister"), ch("Bob", "", "")}
		s.Themes = []string{"Duty", "Loss"}
		s.Locations = []string{"Lighthouse"}
		s.Scenes = []Scene{{OneLiner: "Ada climbs"}}
	})
	cases := []struct {
		name string
		prot Protection
		edit func(s *Snapshot)
		want Protection
	}{
		{name: "no edit", edit: func(*Snapshot) {}, want: Protection{}},
		{name: "top-level fields", edit: func(s *Snapshot) { s.Title, s.Tone = "Gull Rock Light", "Bleak" },
			want: Protection{Fields: map[string]bool{SectionTitle: true, SectionTone: true}}},
		{name: "character description", edit: func(s *Snapshot) { s.Characters[0].Description = "A surgeon" },
			want: Protection{Characters: map[string]map[string]bool{"mei": {fieldDescription: true}}}},
		{name: "relationship deleted and added", edit: func(s *Snapshot) { s.Characters[0].Relationships = []string{"Ada's ward"} },
			want: Protection{Characters: map[string]map[string]bool{"mei": {fieldRelationships: true}},
				Removed: map[string][]string{sectionRelationships: {"mei/toms sister"}}}},
		{name: "alias rename carries protection",
			prot: Protection{Characters: map[string]map[string]bool{"mei": {fieldArc: true}},
				Removed: map[string][]string{sectionRelationships: {"mei/owes ada"}}},
			edit: func(s *Snapshot) { s.Characters[0].Name = "Mei Lin" },
			want: Protection{Characters: map[string]map[string]bool{"mei lin": {fieldArc: true, fieldName: true}},
				Removed: map[string][]string{sectionRelationships: {"mei lin/owes ada"}}}},
		{name: "respelling protects the name", edit: func(s *Snapshot) { s.Characters[0].Name = "MEI" },
			want: Protection{Characters: map[string]map[string]bool{"mei": {fieldName: true}}}},
		{name: "unrelated rename is a delete and an add", edit: func(s *Snapshot) { s.Characters[1].Name = "Robert" },
			want: Protection{Characters: map[string]map[string]bool{"robert": {fieldName: true}},
				Removed: map[string][]string{SectionCharacters: {"bob"}}}},
		{name: "deleted character drops its protection",
			prot: Protection{Characters: map[string]map[string]bool{"bob": {fieldDescription: true}}},
			edit: func(s *Snapshot) { s.Characters = s.Characters[:1] },
			want: Protection{Characters: map[string]map[string]bool{}, Removed: map[string][]string{SectionCharacters: {"bob"}}}},
		{name: "added character protects its filled fields",
			prot: Protection{Removed: map[string][]string{SectionCharacters: {"sam"}}},
			edit: func(s *Snapshot) { s.Characters = append(s.Characters, ch("Sam", "A fisherman", "", "Ada's husband")) },
			want: Protection{Characters: map[string]map[string]bool{"sam": {fieldName: true, fieldDescription: true, fieldRelationships: true}},
				Removed: map[string][]string{}}},
		{name: "list items added, reworded and deleted",
			prot: Protection{Items: map[string][]string{SectionThemes: {"loss"}}, Removed: map[string][]string{SectionThemes: {"grief"}}},
			edit: func(s *Snapshot) {
				s.Themes = []string{"duty", "Grief"}
				s.Locations = []string{"Gull Rock lighthouse"}
			},
			want: Protection{
				Items:   map[string][]string{SectionThemes: {"duty", "grief"}, SectionLocations: {"gull rock lighthouse"}},
				Removed: map[string][]string{SectionThemes: {"loss"}, SectionLocations: {"lighthouse"}}}},
		{name: "scenes edited, added and deleted",
			edit: func(s *Snapshot) { s.Scenes = []Scene{{OneLiner: "Tom rows"}} },
			want: Protection{Items: map[string][]string{SectionScenes: {"tom rows"}},
				Removed: map[string][]string{SectionScenes: {"ada climbs"}}}},
		{name: "scene details edited", edit: func(s *Snapshot) { s.Scenes[0].TimeOfDay = "Night" },
			want: Protection{Items: map[string][]string{SectionScenes: {"ada climbs"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after := cloneSnapshot(base)
			tc.edit(&after)
			before := tc.prot.clone()
			got := tc.prot.Edited(base, after)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Edited\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.prot, before) {
				t.Errorf("Edited modified its receiver: %+v", tc.prot)
			}
		})
	}
}

// TestEditedThenMerge runs a person's edit, then an extraction that restates
// or resurrects what the person changed.
func TestEditedThenMerge(t *testing.T) {
	before := snap(func(s *Snapshot) {
		s.Title = "Gull Rock"
		s.Characters = []Character{ch("Mei", "A nurse", "", "Tom's sister"), ch("Tom", "", "")}
		s.Themes = []string{"Duty", "Loss"}
		s.Locations = []string{"Lighthouse"}
	})
	cases := []struct {
		name      string
		edit      func(s *Snapshot)
		extracted Snapshot
		check     func(t *testing.T, s Snapshot)
	}{
		{name: "edited description survives a restatement",
			edit: func(s *Snapshot) { s.Characters[0].Description = "A surgeon" },
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Mei", "A nurse who works nights", "Leaves", "Owes Ada")}
			}),
			check: func(t *testing.T, s Snapshot) {
				want := ch("Mei", "A surgeon", "Leaves", "Tom's sister", "Owes Ada")
				if !reflect.DeepEqual(s.Characters[0], want) {
					t.Fatalf("%+v", s.Characters[0])
				}
			}},
		{name: "cleared description stays empty",
			edit:      func(s *Snapshot) { s.Characters[0].Description = "" },
			extracted: snap(func(s *Snapshot) { s.Characters = []Character{ch("Mei", "A nurse", "")} }),
			check: func(t *testing.T, s Snapshot) {
				if d := s.Characters[0].Description; d != "" {
					t.Fatalf("description %q", d)
				}
			}},
		{name: "edited description is not extended either",
			edit:      func(s *Snapshot) { s.Characters[0].Description = "A surgeon" },
			extracted: snap(func(s *Snapshot) { s.Characters = []Character{ch("mei", "A surgeon in Oakland", "")} }),
			check: func(t *testing.T, s Snapshot) {
				if d := s.Characters[0].Description; d != "A surgeon" {
					t.Fatalf("description %q", d)
				}
			}},
		{name: "deleted character and theme stay deleted",
			edit: func(s *Snapshot) {
				s.Characters = s.Characters[:1]
				s.Themes = []string{"Duty"}
			},
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Tom", "A boatman", ""), ch("tom", "", "")}
				s.Themes = []string{"loss", "Duty"}
			}),
			check: func(t *testing.T, s Snapshot) {
				if len(s.Characters) != 1 || !slices.Equal(s.Themes, []string{"Duty"}) {
					t.Fatalf("%+v", s)
				}
			}},
		{name: "deleted relationship stays deleted, renamed by alias",
			edit: func(s *Snapshot) {
				s.Characters[0].Relationships = nil
				s.Characters[0].Name = "Mei Lin"
			},
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Mei", "", "", "Tom's sister", "Ada's ward")}
			}),
			check: func(t *testing.T, s Snapshot) {
				if c := s.Characters[0]; c.Name != "Mei Lin" || !slices.Equal(c.Relationships, []string{"Ada's ward"}) {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "edited title survives a longer restatement",
			edit:      func(s *Snapshot) { s.Title = "The Rock" },
			extracted: snap(func(s *Snapshot) { s.Title = "The Rock at Dawn" }),
			check: func(t *testing.T, s Snapshot) {
				if s.Title != "The Rock" {
					t.Fatalf("title %q", s.Title)
				}
			}},
		{name: "a person's location keeps its wording",
			edit:      func(s *Snapshot) { s.Locations = []string{"Lamp room"} },
			extracted: snap(func(s *Snapshot) { s.Locations = []string{"The lamp room at the top", "Lighthouse"} }),
			check: func(t *testing.T, s Snapshot) {
				if !slices.Equal(s.Locations, []string{"Lamp room"}) {
					t.Fatalf("%q", s.Locations)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after := cloneSnapshot(before)
			tc.edit(&after)
			after.Normalize()
			prot := Protection{}.Edited(before, after)
			// The protection is stored as JSON between the edit and the merge.
			raw, err := json.Marshal(prot)
			if err != nil {
				t.Fatal(err)
			}
			var stored Protection
			if err := json.Unmarshal(raw, &stored); err != nil {
				t.Fatal(err)
			}
			merged, _ := Merge(after, stored, tc.extracted)
			tc.check(t, merged)
			if _, changed := Merge(merged, stored, tc.extracted); changed != nil {
				t.Fatalf("second merge changed %q", changed)
			}
		})
	}
}
