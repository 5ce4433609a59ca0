package story

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestNormalizeKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"  Zoë  ", "zoe"},
		{"ZOË", "zoe"},
		{"Zoe\u0308", "zoe"}, // decomposed
		{"José Ñúñez", "jose nunez"},
		{"Mei-Lin", "mei lin"},
		{"O'Brien", "obrien"},
		{"O’Brien", "obrien"},
		{"Grief & loss!", "grief loss"},
		{"  a   b\t c ", "a b c"},
		{"Straße", "strasse"},
		{"Łódź", "lodz"},
		{"Nguyễn Văn Ơn", "nguyen van on"},
		{"ÆSIR Œuvre", "aesir oeuvre"},
		{"İstanbul", "istanbul"},
		{"李小龙", "李小龙"},
		{"ΑΘΗΝΑ", "αθηνα"}, // other scripts: case folded only
		{"Mission 2", "mission 2"},
		{"—", ""},
		{"???", ""},
		{"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			if got := NormalizeKey(tc.in); got != tc.want {
				t.Fatalf("NormalizeKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestIsAlias(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"Mei", "Mei Lin", true},
		{"Lin", "Mei Lin", true},
		{"Lin Mei", "Mei Lin", true},
		{"Tom", "Tom Pruitt", true},
		{"Tom Hale", "Tom Pruitt", false},
		{"Mary Smith", "John Smith", false},
		{"Grandma Ada", "Ada Whitlock", true},
		{"Grandma", "Grandma Ada", true},
		{"Grandma", "Grandpa", false},
		{"Dr. Smith", "John Smith", true},
		{"Mr Pruitt", "Mrs Pruitt", false},
		{"The Doctor", "The Master", false},
		{"李小龙", "李小", false},
		{"Zoë", "ZOE", false}, // the same key is not an alias, it is the same name
	}
	for _, tc := range cases {
		t.Run(tc.a+"~"+tc.b, func(t *testing.T) {
			if got := isAlias(NormalizeKey(tc.a), NormalizeKey(tc.b)); got != tc.want {
				t.Fatalf("isAlias = %v, want %v", got, tc.want)
			}
		})
	}
}

// ch builds a character; rels may be nil.
func ch(name, desc, arc string, rels ...string) Character {
	if rels == nil {
		rels = []string{}
	}
	return Character{Name: name, Description: desc, Relationships: rels, CharacterArc: arc}
}

// snap builds a normalized snapshot from a few sections.
func snap(edit func(s *Snapshot)) Snapshot {
	var s Snapshot
	if edit != nil {
		edit(&s)
	}
	s.Normalize()
	return s
}

type mergeCase struct {
	name        string
	current     Snapshot
	prot        Protection
	extracted   Snapshot
	want        Snapshot
	wantChanged []string
}

func mergeCases() []mergeCase {
	base := snap(func(s *Snapshot) {
		s.Title = "Gull Rock"
		s.Logline = "A keeper guards a dying light."
		s.Characters = []Character{ch("Ada Whitlock", "The last keeper", "", "Tom's aunt")}
		s.Themes = []string{"Duty"}
		s.Locations = []string{"Lighthouse"}
		s.PlotPoints = []string{"The lamp fails"}
		s.Scenes = []Scene{{OneLiner: "Ada climbs the stairs"}}
	})
	with := func(edit func(s *Snapshot)) Snapshot {
		s := cloneSnapshot(base)
		edit(&s)
		return s
	}
	return []mergeCase{
		{name: "empty extraction", current: base, extracted: snap(nil), want: base},
		{name: "zero extraction", current: base, extracted: Snapshot{}, want: base},
		{name: "garbage extraction", current: base,
			extracted: snap(func(s *Snapshot) {
				s.Title, s.Genre = "Unknown", "N/A"
				s.Characters = []Character{ch("—", "someone", ""), ch("???", "", ""), ch("Unknown", "x", "")}
				s.Themes = []string{"...", "none"}
				s.Locations = []string{"-"}
				s.Scenes = []Scene{{OneLiner: "?!"}}
			}), want: base},
		{name: "extraction lacking items deletes nothing", current: base,
			extracted: snap(func(s *Snapshot) { s.Themes = []string{"duty"} }), want: base},
		{name: "empty field takes the extracted value", current: base,
			extracted:   snap(func(s *Snapshot) { s.Genre, s.Tone = "Gothic", "Bleak" }),
			want:        with(func(s *Snapshot) { s.Genre, s.Tone = "Gothic", "Bleak" }),
			wantChanged: []string{SectionGenre, SectionTone}},
		{name: "placeholder current value is filled", current: with(func(s *Snapshot) { s.Genre = "TBD" }),
			extracted:   snap(func(s *Snapshot) { s.Genre = "Gothic" }),
			want:        with(func(s *Snapshot) { s.Genre = "Gothic" }),
			wantChanged: []string{SectionGenre}},
		{name: "restated text keeps the current one", current: base,
			extracted: snap(func(s *Snapshot) {
				s.Title = "Gull Rock Light"
				s.Logline = "A lighthouse keeper protects a failing lamp."
				s.Characters = []Character{ch("ada whitlock", "THE LAST KEEPER.", "")}
			}), want: with(func(s *Snapshot) { s.Title = "Gull Rock Light" }),
			wantChanged: []string{SectionTitle}},
		{name: "longer restatement containing the text extends it", current: base,
			extracted: snap(func(s *Snapshot) {
				s.Logline = "A keeper guards a dying light, and the town that needs it."
				s.Characters = []Character{ch("Ada Whitlock", "The last keeper of Gull Rock", "Lets the light go")}
			}), want: with(func(s *Snapshot) {
				s.Logline = "A keeper guards a dying light, and the town that needs it."
				s.Characters[0].Description = "The last keeper of Gull Rock"
				s.Characters[0].CharacterArc = "Lets the light go"
			}), wantChanged: []string{SectionLogline, SectionCharacters}},
		{name: "duplicate character by case is merged", current: base,
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("ADA WHITLOCK", "", "", "TOM'S AUNT", "Widow of Sam")}
			}),
			want:        with(func(s *Snapshot) { s.Characters[0].Relationships = []string{"Tom's aunt", "Widow of Sam"} }),
			wantChanged: []string{SectionCharacters}},
		{name: "unicode names match case- and accent-insensitively",
			current: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Zoë", "A diver", ""), ch("José Ñúñez", "", "")}
			}),
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("ZOË", "", "Learns to surface"), ch("jose nunez", "A fisherman", "")}
			}),
			want: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Zoë", "A diver", "Learns to surface"), ch("José Ñúñez", "A fisherman", "")}
			}), wantChanged: []string{SectionCharacters}},
		{name: "CJK names compare as whole strings",
			current:   snap(func(s *Snapshot) { s.Characters = []Character{ch("李小龙", "", "")} }),
			extracted: snap(func(s *Snapshot) { s.Characters = []Character{ch("李小", "", ""), ch("李小龙", "演员", "")} }),
			want: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("李小龙", "演员", ""), ch("李小", "", "")}
			}), wantChanged: []string{SectionCharacters}},
		{name: "alias extends the name and keeps both facts",
			current:   snap(func(s *Snapshot) { s.Characters = []Character{ch("Mei", "A nurse", "", "Tom's sister")} }),
			extracted: snap(func(s *Snapshot) { s.Characters = []Character{ch("Mei Lin", "A surgeon", "Forgives Tom", "Owes Ada")} }),
			want: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Mei Lin", "A nurse", "Forgives Tom", "Tom's sister", "Owes Ada")}
			}), wantChanged: []string{SectionCharacters}},
		{name: "short alias merges into the full name",
			current:     snap(func(s *Snapshot) { s.Characters = []Character{ch("Tom Pruitt", "", "")} }),
			extracted:   snap(func(s *Snapshot) { s.Characters = []Character{ch("Tom", "A boatman", "")} }),
			want:        snap(func(s *Snapshot) { s.Characters = []Character{ch("Tom Pruitt", "A boatman", "")} }),
			wantChanged: []string{SectionCharacters}},
		{name: "two Toms: ambiguous alias is dropped",
			current: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Tom Pruitt", "", ""), ch("Tom Hale", "", "")}
			}),
			extracted: snap(func(s *Snapshot) { s.Characters = []Character{ch("Tom", "A boatman", "")} }),
			want: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Tom Pruitt", "", ""), ch("Tom Hale", "", "")}
			})},
		{name: "extraction listing both names keeps them apart",
			current: snap(func(s *Snapshot) { s.Characters = []Character{ch("Tom Pruitt", "The father", "")} }),
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Tom", "The son", ""), ch("Tom Pruitt", "The father", "")}
			}),
			want: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Tom Pruitt", "The father", ""), ch("Tom", "The son", "")}
			}), wantChanged: []string{SectionCharacters}},
		{name: "title and surname share a word",
			current:     snap(func(s *Snapshot) { s.Characters = []Character{ch("Grandma Ada", "Keeps bees", "")} }),
			extracted:   snap(func(s *Snapshot) { s.Characters = []Character{ch("Ada Whitlock", "", "Gives up the bees")} }),
			want:        snap(func(s *Snapshot) { s.Characters = []Character{ch("Grandma Ada", "Keeps bees", "Gives up the bees")} }),
			wantChanged: []string{SectionCharacters}},
		{name: "shared surname is two people",
			current:     snap(func(s *Snapshot) { s.Characters = []Character{ch("Mary Smith", "", "")} }),
			extracted:   snap(func(s *Snapshot) { s.Characters = []Character{ch("John Smith", "", "")} }),
			want:        snap(func(s *Snapshot) { s.Characters = []Character{ch("Mary Smith", "", ""), ch("John Smith", "", "")} }),
			wantChanged: []string{SectionCharacters}},
		{name: "aliases within one extraction collapse",
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Mei Lin", "A nurse", ""), ch("MEI LIN", "", "Leaves", "Tom's sister")}
			}),
			current: snap(nil),
			want: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Mei Lin", "A nurse", "Leaves", "Tom's sister")}
			}), wantChanged: []string{SectionCharacters}},
		{name: "new character is cleaned of placeholders", current: snap(nil),
			extracted:   snap(func(s *Snapshot) { s.Characters = []Character{ch("Sam", "Unknown", "N/A", "—", "Ada's husband")} }),
			want:        snap(func(s *Snapshot) { s.Characters = []Character{ch("Sam", "", "", "Ada's husband")} }),
			wantChanged: []string{SectionCharacters}},
		{name: "protected field is not overwritten, a new relationship is still added", current: base,
			prot: Protection{Fields: map[string]bool{SectionTitle: true},
				Characters: map[string]map[string]bool{"ada whitlock": {fieldDescription: true, fieldRelationships: true}}},
			extracted: snap(func(s *Snapshot) {
				s.Title = "Gull Rock Light"
				s.Characters = []Character{ch("Ada Whitlock", "The last keeper of Gull Rock", "", "Mei's mentor")}
			}),
			want:        with(func(s *Snapshot) { s.Characters[0].Relationships = []string{"Tom's aunt", "Mei's mentor"} }),
			wantChanged: []string{SectionCharacters}},
		{name: "protected character keeps its name",
			current: snap(func(s *Snapshot) { s.Characters = []Character{ch("Mei", "", "")} }),
			prot:    Protection{Characters: map[string]map[string]bool{"mei": {fieldName: true}}},
			extracted: snap(func(s *Snapshot) {
				s.Characters = []Character{ch("Mei Lin", "A nurse", "")}
			}),
			want:        snap(func(s *Snapshot) { s.Characters = []Character{ch("Mei", "A nurse", "")} }),
			wantChanged: []string{SectionCharacters}},
		{name: "deleted items never return", current: base,
			prot: Protection{Removed: map[string][]string{
				SectionThemes: {"loss"}, SectionPlotPoints: {"tom drowns"}, SectionScenes: {"tom drowns"},
				SectionCharacters: {"mei lin"}, SectionLocations: {"harbour"},
				sectionRelationships: {"ada whitlock/mei s mentor", "ada whitlock/meis mentor"},
			}},
			extracted: snap(func(s *Snapshot) {
				s.Themes = []string{"Loss!"}
				s.PlotPoints = []string{"Tom drowns."}
				s.Scenes = []Scene{{OneLiner: "TOM DROWNS"}}
				s.Characters = []Character{ch("Mei Lin", "", ""), ch("Mei", "", ""), ch("Ada Whitlock", "", "", "Mei's mentor")}
				s.Locations = []string{"The harbour", "Harbour"}
			}), want: base},
		{name: "fuzzy union of lists", current: base,
			extracted: snap(func(s *Snapshot) {
				s.Themes = []string{"duty.", "Grief & loss", "grief, loss"}
				s.PlotPoints = []string{"The lamp fails!", "Tom returns"}
			}), want: with(func(s *Snapshot) {
				s.Themes = []string{"Duty", "Grief & loss"}
				s.PlotPoints = []string{"The lamp fails", "Tom returns"}
			}), wantChanged: []string{SectionThemes, SectionPlotPoints}},
		{name: "more specific location replaces the general one", current: base,
			extracted:   snap(func(s *Snapshot) { s.Locations = []string{"Gull Rock lighthouse", "lighthouse", "Harbour"} }),
			want:        with(func(s *Snapshot) { s.Locations = []string{"Gull Rock lighthouse", "Harbour"} }),
			wantChanged: []string{SectionLocations}},
		{name: "less specific location is already there", current: with(func(s *Snapshot) { s.Locations = []string{"Gull Rock lighthouse"} }),
			extracted: snap(func(s *Snapshot) { s.Locations = []string{"Lighthouse", "gull rock"} }),
			want:      with(func(s *Snapshot) { s.Locations = []string{"Gull Rock lighthouse"} })},
		{name: "protected location is not replaced", current: base,
			prot:      Protection{Items: map[string][]string{SectionLocations: {"lighthouse"}}},
			extracted: snap(func(s *Snapshot) { s.Locations = []string{"Gull Rock lighthouse"} }),
			want:      base},
		{name: "location covering two places is dropped",
			current:   snap(func(s *Snapshot) { s.Locations = []string{"kitchen", "Mei's flat"} }),
			extracted: snap(func(s *Snapshot) { s.Locations = []string{"Mei's flat kitchen"} }),
			want:      snap(func(s *Snapshot) { s.Locations = []string{"kitchen", "Mei's flat"} })},
		{name: "scenes union by one_liner and fill details", current: base,
			extracted: snap(func(s *Snapshot) {
				s.Scenes = []Scene{{OneLiner: "Ada climbs the stairs.", TimeOfDay: "Night", InteriorExterior: "INT"},
					{OneLiner: "Tom rows out", Tone: "Unknown"}}
			}),
			want: with(func(s *Snapshot) {
				s.Scenes = []Scene{{OneLiner: "Ada climbs the stairs", TimeOfDay: "Night", InteriorExterior: "INT"},
					{OneLiner: "Tom rows out"}}
			}), wantChanged: []string{SectionScenes}},
		{name: "protected scene is untouched", current: base,
			prot:      Protection{Items: map[string][]string{SectionScenes: {"ada climbs the stairs"}}},
			extracted: snap(func(s *Snapshot) { s.Scenes = []Scene{{OneLiner: "Ada climbs the stairs", TimeOfDay: "Night"}} }),
			want:      base},
		{name: "lists stop at MaxItems",
			current:   snap(func(s *Snapshot) { s.Themes = numbered("t", MaxItems) }),
			extracted: snap(func(s *Snapshot) { s.Themes = []string{"one more"} }),
			want:      snap(func(s *Snapshot) { s.Themes = numbered("t", MaxItems) })},
		{name: "overlong extracted text is ignored", current: snap(nil),
			extracted: snap(func(s *Snapshot) { s.Title = strings.Repeat("x", MaxTextLength+1) }),
			want:      snap(nil)},
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strings.Repeat("i", i+1)
	}
	return out
}

func TestMerge(t *testing.T) {
	for _, tc := range mergeCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := Merge(tc.current, tc.prot, tc.extracted)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("merged\n got %+v\nwant %+v", got, tc.want)
			}
			if !slices.Equal(changed, tc.wantChanged) {
				t.Errorf("changed = %q, want %q", changed, tc.wantChanged)
			}
			if tc.wantChanged == nil && changed != nil {
				t.Errorf("changed = %#v, want nil", changed)
			}
		})
	}
}

func TestMergeIsIdempotent(t *testing.T) {
	for _, tc := range mergeCases() {
		t.Run(tc.name, func(t *testing.T) {
			once, _ := Merge(tc.current, tc.prot, tc.extracted)
			twice, changed := Merge(once, tc.prot, tc.extracted)
			if changed != nil || !reflect.DeepEqual(once, twice) {
				t.Fatalf("second merge changed %q:\n once %+v\ntwice %+v", changed, once, twice)
			}
		})
	}
}

func TestMergeLeavesInputsAlone(t *testing.T) {
	for _, tc := range mergeCases() {
		t.Run(tc.name, func(t *testing.T) {
			cur, x, prot := cloneSnapshot(tc.current), cloneSnapshot(tc.extracted), tc.prot.clone()
			got, _ := Merge(tc.current, tc.prot, tc.extracted)
			if !reflect.DeepEqual(cur, cloneSnapshot(tc.current)) || !reflect.DeepEqual(x, cloneSnapshot(tc.extracted)) ||
				!reflect.DeepEqual(prot, tc.prot) {
				t.Fatal("Merge modified its inputs")
			}
			for i := range got.Characters { // the result shares no memory with current
				if i < len(tc.current.Characters) && len(got.Characters[i].Relationships) > 0 &&
					len(tc.current.Characters[i].Relationships) > 0 &&
					&got.Characters[i].Relationships[0] == &tc.current.Characters[i].Relationships[0] {
					t.Fatal("merged relationships alias the current ones")
				}
			}
		})
	}
}

func TestChanged(t *testing.T) {
	base := snap(func(s *Snapshot) {
		s.Title = "T"
		s.Characters = []Character{ch("Ada", "", "", "Tom's aunt")}
		s.Themes = []string{"Duty"}
		s.Scenes = []Scene{{OneLiner: "Ada climbs"}}
	})
	cases := []struct {
		name string
		edit func(s *Snapshot)
		want []string
	}{
		{"same", func(*Snapshot) {}, nil},
		{"nil lists equal empty ones", func(s *Snapshot) { s.Locations, s.PlotPoints = nil, nil }, nil},
		{"title", func(s *Snapshot) { s.Title = "U" }, []string{SectionTitle}},
		{"tone and genre in order", func(s *Snapshot) { s.Tone, s.Genre = "x", "y" }, []string{SectionGenre, SectionTone}},
		{"relationship", func(s *Snapshot) { s.Characters[0].Relationships = []string{"Tom's mother"} }, []string{SectionCharacters}},
		{"character order", func(s *Snapshot) {
			s.Characters = append([]Character{ch("Tom", "", "")}, s.Characters...)
		}, []string{SectionCharacters}},
		{"every list", func(s *Snapshot) {
			s.Themes = []string{"duty"}
			s.Locations = []string{"Rock"}
			s.PlotPoints = []string{"p"}
			s.Scenes[0].Tone = "grim"
		}, []string{SectionThemes, SectionLocations, SectionPlotPoints, SectionScenes}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after := cloneSnapshot(base)
			tc.edit(&after)
			if got := Changed(base, after); !slices.Equal(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("Changed = %#v, want %#v", got, tc.want)
			}
		})
	}
}
