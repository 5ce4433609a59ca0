package story

import (
	"slices"
	"strings"
	"unicode"
)

// Section names, as Merge and Changed report them and as Protection keys them.
const (
	SectionTitle      = "title"
	SectionLogline    = "logline"
	SectionGenre      = "genre"
	SectionTone       = "tone"
	SectionCharacters = "characters"
	SectionThemes     = "themes"
	SectionLocations  = "locations"
	SectionPlotPoints = "plot_points"
	SectionScenes     = "scenes"
)

// Character field names, as Protection.Characters keys them.
const (
	fieldName          = "name"
	fieldDescription   = "description"
	fieldRelationships = "relationships"
	fieldArc           = "character_arc"
)

// sectionRelationships keys Protection.Removed entries "<character key>/<relationship key>".
const sectionRelationships = "relationships"

// Merge applies an extraction to the current dossier under the protection
// people's edits earned. It never deletes anything and never touches what a
// person owns; its rules, one by one:
//
//   - Text fields (title, logline, genre, tone, a character's description and
//     arc, a scene's details): an empty (or placeholder) field takes the
//     extracted text; a filled one keeps its text unless the extracted text is a
//     strict extension of it (its key contains the current key as whole words
//     and is longer). Extraction never rewrites text otherwise: models restate.
//   - Unusable extracted values are ignored: empty keys (only punctuation, such
//     as "—" or "???"), placeholders ("unknown", "n/a", "tbd", …) and strings
//     longer than MaxTextLength.
//   - Characters match by NormalizeKey of the name first. Failing that, by
//     alias: the name words of one, honorifics and kinship titles ("Grandma",
//     "Dr") left out, are a subset of the other's ("Mei" ⊂ "Mei Lin", "Grandma
//     Ada" ⊂ "Ada Whitlock"). An alias merges only when exactly one character
//     (or deleted name) qualifies and the extraction does not itself list the
//     matched character under another name; two candidates are ambiguous and
//     the extracted character is dropped, a distinct listing is added as a new
//     character. Names without spaces (CJK) compare as whole strings.
//   - An alias that extends an unprotected character's full name renames it
//     ("Mei" becomes "Mei Lin"); a character a person touched keeps its name.
//   - Themes, plot points and relationships are unioned by key; locations too,
//     where one containing the other as whole words is the same place: the
//     more specific wording replaces a single unprotected match, and is
//     dropped when it would cover several places or a protected one.
//   - Scenes are unioned by one_liner key; a matched scene a person did not
//     touch has its details filled like text fields.
//   - A field a person edited is never changed; an item a person deleted
//     (character, relationship, theme, location, plot point, scene) is never
//     added back; additions stop at MaxItems per list.
//
// It returns the merged snapshot and the sections that changed in the fixed
// order of Changed, nil when nothing did: the caller writes a version only
// then. The inputs are not modified.
func Merge(current Snapshot, prot Protection, extracted Snapshot) (merged Snapshot, changed []string) {
	m := cloneSnapshot(current)
	x := cloneSnapshot(extracted)
	x.Normalize()

	m.Title = mergeField(prot.field(SectionTitle), m.Title, x.Title)
	m.Logline = mergeField(prot.field(SectionLogline), m.Logline, x.Logline)
	m.Genre = mergeField(prot.field(SectionGenre), m.Genre, x.Genre)
	m.Tone = mergeField(prot.field(SectionTone), m.Tone, x.Tone)
	m.Characters = mergeCharacters(m.Characters, x.Characters, prot)
	m.Themes = unionItems(m.Themes, x.Themes, prot.Removed[SectionThemes])
	m.Locations = mergeLocations(m.Locations, x.Locations, prot)
	m.PlotPoints = unionItems(m.PlotPoints, x.PlotPoints, prot.Removed[SectionPlotPoints])
	m.Scenes = mergeScenes(m.Scenes, x.Scenes, prot)

	changed = Changed(current, m)
	if changed == nil {
		return cloneSnapshot(current), nil
	}
	return m, changed
}

// Changed lists the sections that differ between two snapshots, in the fixed
// order title, logline, genre, tone, characters, themes, locations,
// plot_points, scenes; nil when none does. A nil list equals an empty one.
func Changed(before, after Snapshot) []string {
	var out []string
	add := func(section string, differ bool) {
		if differ {
			out = append(out, section)
		}
	}
	add(SectionTitle, before.Title != after.Title)
	add(SectionLogline, before.Logline != after.Logline)
	add(SectionGenre, before.Genre != after.Genre)
	add(SectionTone, before.Tone != after.Tone)
	add(SectionCharacters, !slices.EqualFunc(before.Characters, after.Characters, sameCharacter))
	add(SectionThemes, !slices.Equal(before.Themes, after.Themes))
	add(SectionLocations, !slices.Equal(before.Locations, after.Locations))
	add(SectionPlotPoints, !slices.Equal(before.PlotPoints, after.PlotPoints))
	add(SectionScenes, !slices.Equal(before.Scenes, after.Scenes))
	return out
}

// NormalizeKey is the matching key of a name or item: lower case, common
// Latin accents folded (precomposed via a table, decomposed by dropping
// combining marks), apostrophes dropped ("O'Brien" is "obrien"), every other
// punctuation mark or symbol a space, spaces collapsed and trimmed. Letters of
// other scripts are kept as they are, so CJK names compare as whole strings.
func NormalizeKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	gap := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r), r == '\'', r == '\u2019', r == '\u2018', r == '\u02bc':
			continue
		case unicode.IsLetter(r) || unicode.IsNumber(r):
			if gap && b.Len() > 0 {
				b.WriteByte(' ')
			}
			gap = false
			r = unicode.ToLower(r)
			if f := foldLatin(r); f != "" {
				b.WriteString(f)
			} else {
				b.WriteRune(r)
			}
		default:
			gap = true
		}
	}
	return b.String()
}

// foldLatin is the unaccented spelling of a lower-case Latin letter, or "".
func foldLatin(r rune) string {
	if r < 0xdf {
		return ""
	}
	switch {
	case r == 'ß':
		return "ss"
	case r >= 'à' && r <= 'å', r >= 0x100 && r <= 0x105, r == 0x1ce, r >= 0x1ea0 && r <= 0x1eb7:
		return "a"
	case r == 'æ':
		return "ae"
	case r == 'ç', r >= 0x106 && r <= 0x10d:
		return "c"
	case r == 'ð', r >= 0x10e && r <= 0x111:
		return "d"
	case r >= 'è' && r <= 'ë', r >= 0x112 && r <= 0x11b, r >= 0x1eb8 && r <= 0x1ec7:
		return "e"
	case r >= 0x11c && r <= 0x123:
		return "g"
	case r >= 0x124 && r <= 0x127:
		return "h"
	case r >= 'ì' && r <= 'ï', r >= 0x128 && r <= 0x131, r == 0x1d0, r >= 0x1ec8 && r <= 0x1ecb:
		return "i"
	case r >= 0x132 && r <= 0x133:
		return "ij"
	case r >= 0x134 && r <= 0x135:
		return "j"
	case r >= 0x136 && r <= 0x138:
		return "k"
	case r >= 0x139 && r <= 0x142:
		return "l"
	case r == 'ñ', r >= 0x143 && r <= 0x14b:
		return "n"
	case r >= 'ò' && r <= 'ö', r == 'ø', r >= 0x14c && r <= 0x151, r == 0x1a1, r == 0x1d2, r >= 0x1ecc && r <= 0x1ee3:
		return "o"
	case r >= 0x152 && r <= 0x153:
		return "oe"
	case r >= 0x154 && r <= 0x159:
		return "r"
	case r >= 0x15a && r <= 0x161, r == 0x17f, r == 0x219:
		return "s"
	case r >= 0x162 && r <= 0x167, r == 0x21b:
		return "t"
	case r == 'þ':
		return "th"
	case r >= 'ù' && r <= 'ü', r >= 0x168 && r <= 0x173, r == 0x1b0, r >= 0x1d4 && r <= 0x1dc, r >= 0x1ee4 && r <= 0x1ef1:
		return "u"
	case r >= 0x174 && r <= 0x175:
		return "w"
	case r == 'ý', r == 'ÿ', r >= 0x176 && r <= 0x178, r >= 0x1ef2 && r <= 0x1ef9:
		return "y"
	case r >= 0x179 && r <= 0x17e:
		return "z"
	case r == 'ς':
		return "σ"
	}
	return ""
}

// usableKey is the key of an extracted value, or "" when the value is
// garbage: punctuation only, a placeholder, or too long to store.
func usableKey(s string) string {
	if len(s) > MaxTextLength {
		return ""
	}
	k := NormalizeKey(s)
	switch k {
	case "unknown", "n a", "na", "none", "null", "nil", "tbd", "tba", "tbc", "todo", "undefined",
		"not specified", "unspecified", "not applicable", "placeholder", "untitled", "unnamed":
		return ""
	}
	return k
}

// containsWords reports whether key hay contains key needle as whole words.
func containsWords(hay, needle string) bool {
	return needle != "" && strings.Contains(" "+hay+" ", " "+needle+" ")
}

// extendText is the text a field keeps when extraction offers x for cur: x
// when cur is empty (or a placeholder) or x strictly extends it, cur otherwise.
func extendText(cur, x string) string {
	kx := usableKey(x)
	if kx == "" {
		return cur
	}
	kc := usableKey(cur)
	if kc == "" || (len(kx) > len(kc) && containsWords(kx, kc)) {
		return x
	}
	return cur
}

// mergeField is extendText unless a person owns the field.
func mergeField(protected bool, cur, x string) string {
	if protected {
		return cur
	}
	return extendText(cur, x)
}

// unionItems appends the usable items of xs whose key is neither in cur nor
// removed, up to MaxItems.
func unionItems(cur, xs, removed []string) []string {
	keys := make([]string, len(cur))
	for i, c := range cur {
		keys[i] = NormalizeKey(c)
	}
	for _, x := range xs {
		k := usableKey(x)
		if k == "" || slices.Contains(keys, k) || slices.Contains(removed, k) || len(cur) >= MaxItems {
			continue
		}
		cur = append(cur, x)
		keys = append(keys, k)
	}
	return cur
}

// mergeLocations unions locations, one containing the other being one place.
func mergeLocations(cur, xs []string, prot Protection) []string {
	for _, x := range xs {
		k := usableKey(x)
		if k == "" || slices.ContainsFunc(prot.Removed[SectionLocations], func(r string) bool { return samePlace(k, r) }) {
			continue
		}
		covered, within := false, []int(nil)
		for j, c := range cur {
			kc := NormalizeKey(c)
			if containsWords(kc, k) { // as specific or more already
				covered = true
				break
			}
			if containsWords(k, kc) {
				within = append(within, j)
			}
		}
		switch {
		case covered:
		case len(within) == 0:
			if len(cur) < MaxItems {
				cur = append(cur, x)
			}
		case len(within) == 1 && !prot.item(SectionLocations, NormalizeKey(cur[within[0]])):
			cur[within[0]] = x
		}
	}
	return cur
}

func samePlace(a, b string) bool { return containsWords(a, b) || containsWords(b, a) }

// mergeScenes unions scenes by one_liner and fills an unprotected scene's details.
func mergeScenes(cur, xs []Scene, prot Protection) []Scene {
	for _, x := range xs {
		k := usableKey(x.OneLiner)
		if k == "" || slices.Contains(prot.Removed[SectionScenes], k) {
			continue
		}
		j := slices.IndexFunc(cur, func(s Scene) bool { return NormalizeKey(s.OneLiner) == k })
		switch {
		case j < 0 && len(cur) < MaxItems:
			cur = append(cur, Scene{OneLiner: x.OneLiner, InteriorExterior: extendText("", x.InteriorExterior),
				TimeOfDay: extendText("", x.TimeOfDay), Tone: extendText("", x.Tone)})
		case j >= 0 && !prot.item(SectionScenes, k):
			s := &cur[j]
			s.InteriorExterior = extendText(s.InteriorExterior, x.InteriorExterior)
			s.TimeOfDay = extendText(s.TimeOfDay, x.TimeOfDay)
			s.Tone = extendText(s.Tone, x.Tone)
		}
	}
	return cur
}

// mergeCharacters matches extracted characters to the dossier's: exact keys
// first (whatever their order in the extraction), then aliases.
func mergeCharacters(cur, xs []Character, prot Protection) []Character {
	removed := prot.Removed[SectionCharacters]
	keys := make([]string, len(cur))
	for i, c := range cur {
		keys[i] = NormalizeKey(c.Name)
	}
	claimed := make(map[int]string) // index in cur → key of the extracted name merged into it
	xkeys := make([]string, len(xs))
	for i, x := range xs {
		xkeys[i] = usableKey(x.Name)
	}
	merge := func(j int, x Character, k string, alias bool) {
		cur[j] = mergeCharacter(cur[j], keys[j], x, prot, alias)
		keys[j] = NormalizeKey(cur[j].Name)
		claimed[j] = k
	}
	done := make([]bool, len(xs))
	for i, x := range xs {
		if k := xkeys[i]; k != "" {
			if j := slices.Index(keys, k); j >= 0 {
				merge(j, x, k, false)
				done[i] = true
			}
		}
	}
	for i, x := range xs {
		k := xkeys[i]
		if done[i] || k == "" {
			continue
		}
		if j := slices.Index(keys, k); j >= 0 { // a duplicate within the extraction
			merge(j, x, k, false)
			continue
		}
		if slices.Contains(removed, k) || slices.ContainsFunc(removed, func(r string) bool { return isAlias(k, r) }) {
			continue // a person deleted this one
		}
		var cands []int
		for j, kc := range keys {
			if isAlias(k, kc) {
				cands = append(cands, j)
			}
		}
		switch {
		case len(cands) == 1 && (claimed[cands[0]] == "" || claimed[cands[0]] == k):
			merge(cands[0], x, k, true)
		case len(cands) > 1 || len(cur) >= MaxItems:
			// ambiguous, or full: dropped
		default: // no candidate, or the extraction lists both as distinct people
			cur = append(cur, newCharacter(x))
			keys = append(keys, k)
			claimed[len(cur)-1] = k
		}
	}
	return cur
}

// newCharacter is an extracted character cleaned of unusable values.
func newCharacter(x Character) Character {
	return Character{Name: x.Name, Description: extendText("", x.Description),
		Relationships: unionItems(make([]string, 0, len(x.Relationships)), x.Relationships, nil),
		CharacterArc:  extendText("", x.CharacterArc)}
}

// mergeCharacter merges x into c, whose key is ck, under c's protection.
func mergeCharacter(c Character, ck string, x Character, prot Protection, alias bool) Character {
	owned := prot.Characters[ck]
	if !owned[fieldDescription] {
		c.Description = extendText(c.Description, x.Description)
	}
	if !owned[fieldArc] {
		c.CharacterArc = extendText(c.CharacterArc, x.CharacterArc)
	}
	var removed []string
	for _, r := range prot.Removed[sectionRelationships] {
		if rk, ok := strings.CutPrefix(r, ck+"/"); ok {
			removed = append(removed, rk)
		}
	}
	c.Relationships = unionItems(c.Relationships, x.Relationships, removed)
	if alias && len(owned) == 0 && extendsName(x.Name, c.Name) {
		c.Name = x.Name
	}
	return c
}

// nameWords splits a name key into its titles (honorifics, kinship words)
// and its other words; a name made only of titles keeps them as its words.
func nameWords(key string) (titles, words []string) {
	all := strings.Fields(key)
	for _, w := range all {
		if isTitle(w) {
			titles = append(titles, w)
		} else {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return nil, all
	}
	return titles, words
}

func isTitle(w string) bool {
	switch w {
	case "mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor", "sir", "dame", "lady", "lord",
		"madam", "madame", "captain", "capt", "sgt", "sergeant", "lt", "lieutenant", "detective", "det",
		"officer", "agent", "inspector", "grandma", "grandpa", "granny", "grandmother", "grandfather",
		"nana", "aunt", "auntie", "uncle", "the":
		return true
	}
	return false
}

// isAlias reports whether two different name keys may name one person: the
// words of one, titles aside, are a subset of the other's ("Mei" and "Mei
// Lin", "Grandma Ada" and "Ada Whitlock"), or all its words are ("Grandma"
// and "Grandma Ada"); two names with titles sharing none ("Mr Pruitt",
// "Mrs Pruitt") are different people.
func isAlias(a, b string) bool {
	if a == b || a == "" || b == "" {
		return false
	}
	ta, wa := nameWords(a)
	tb, wb := nameWords(b)
	if len(ta) > 0 && len(tb) > 0 && !slices.ContainsFunc(ta, func(t string) bool { return slices.Contains(tb, t) }) {
		return false
	}
	fa, fb := strings.Fields(a), strings.Fields(b)
	return subset(wa, wb) || subset(wb, wa) || subset(fa, fb) || subset(fb, fa)
}

func subset(small, big []string) bool {
	for _, w := range small {
		if !slices.Contains(big, w) {
			return false
		}
	}
	return true
}

// extendsName reports whether name x has every word of name c and more.
func extendsName(x, c string) bool {
	wx, wc := strings.Fields(NormalizeKey(x)), strings.Fields(NormalizeKey(c))
	return len(wx) > len(wc) && subset(wc, wx)
}

func sameCharacter(a, b Character) bool {
	return a.Name == b.Name && a.Description == b.Description && a.CharacterArc == b.CharacterArc &&
		slices.Equal(a.Relationships, b.Relationships)
}

// cloneSnapshot copies every list, so the copy shares no memory with s.
func cloneSnapshot(s Snapshot) Snapshot {
	c := s
	c.Characters = make([]Character, len(s.Characters))
	for i, ch := range s.Characters {
		ch.Relationships = append([]string{}, ch.Relationships...)
		c.Characters[i] = ch
	}
	c.Themes = append([]string{}, s.Themes...)
	c.Locations = append([]string{}, s.Locations...)
	c.PlotPoints = append([]string{}, s.PlotPoints...)
	c.Scenes = append([]Scene{}, s.Scenes...)
	return c
}
