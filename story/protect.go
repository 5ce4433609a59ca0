package story

import (
	"slices"
	"strings"
)

// Protection records what people edited, so that extraction may add beside a
// person's work but never overwrite it or bring back what they deleted. It is
// stored beside the snapshot as JSON. Every key is a NormalizeKey; lists are
// sorted and free of duplicates. A zero Protection protects nothing.
type Protection struct {
	// Fields holds the top-level text fields a person edited: "title",
	// "logline", "genre", "tone".
	Fields map[string]bool `json:"fields,omitempty"`
	// Characters maps a character's name key to the fields a person edited:
	// "name", "description", "relationships", "character_arc".
	Characters map[string]map[string]bool `json:"characters,omitempty"`
	// Items maps a section ("themes", "locations", "plot_points", "scenes",
	// the latter by one_liner) to the keys of items a person added or edited.
	Items map[string][]string `json:"items,omitempty"`
	// Removed maps a section ("characters", "themes", "locations",
	// "plot_points", "scenes") to the keys a person deleted; its
	// "relationships" section holds "<character key>/<relationship key>".
	Removed map[string][]string `json:"removed,omitempty"`
}

// Edited computes what a person's edit (before → after, both normalized)
// touched and returns p extended with it; p itself is not modified.
//
// A changed top-level field is protected. Characters pair by name key, then
// by a unique alias (a rename such as "Mei" → "Mei Lin" carries the
// character's protection to the new key and protects its name); a character
// left unpaired was deleted, one unpaired in after was added and gets its
// name and non-empty fields protected. A changed description, arc or
// relationship list is protected; a deleted relationship is recorded as
// removed. List items and scenes (by one_liner) that are new or reworded are
// protected, deleted ones recorded as removed; re-adding an item a person
// once deleted lifts its removal.
func (p Protection) Edited(before, after Snapshot) Protection {
	q := p.clone()
	for _, f := range []struct {
		name      string
		old, next string
	}{{SectionTitle, before.Title, after.Title}, {SectionLogline, before.Logline, after.Logline},
		{SectionGenre, before.Genre, after.Genre}, {SectionTone, before.Tone, after.Tone}} {
		if f.old != f.next {
			if q.Fields == nil {
				q.Fields = make(map[string]bool)
			}
			q.Fields[f.name] = true
		}
	}
	q.editCharacters(before.Characters, after.Characters)
	q.editItems(SectionThemes, before.Themes, after.Themes)
	q.editItems(SectionLocations, before.Locations, after.Locations)
	q.editItems(SectionPlotPoints, before.PlotPoints, after.PlotPoints)
	q.editScenes(before.Scenes, after.Scenes)
	return q
}

func (p *Protection) editCharacters(before, after []Character) {
	bk, ak := make([]string, len(before)), make([]string, len(after))
	for i, c := range before {
		bk[i] = NormalizeKey(c.Name)
	}
	for i, c := range after {
		ak[i] = NormalizeKey(c.Name)
	}
	pair := make([]int, len(after)) // index in before, or -1
	used := make([]bool, len(before))
	for i := range after {
		pair[i] = -1
		for j := range before {
			if !used[j] && ak[i] != "" && bk[j] == ak[i] {
				pair[i], used[j] = j, true
				break
			}
		}
	}
	for i := range after {
		if pair[i] >= 0 || ak[i] == "" || slices.Contains(bk, ak[i]) {
			continue
		}
		var cands []int
		for j := range before {
			if !used[j] && isAlias(ak[i], bk[j]) {
				cands = append(cands, j)
			}
		}
		if len(cands) == 1 {
			pair[i], used[cands[0]] = cands[0], true
		}
	}
	for j := range before {
		if !used[j] && bk[j] != "" && !slices.Contains(ak, bk[j]) {
			p.remove(SectionCharacters, bk[j])
			delete(p.Characters, bk[j])
		}
	}
	for i, a := range after {
		k := ak[i]
		if k == "" {
			continue
		}
		if pair[i] < 0 { // added by the person
			p.unremove(SectionCharacters, k)
			p.protectCharacter(k, fieldName)
			if a.Description != "" {
				p.protectCharacter(k, fieldDescription)
			}
			if a.CharacterArc != "" {
				p.protectCharacter(k, fieldArc)
			}
			p.editRelationships(k, nil, a.Relationships)
			continue
		}
		b := before[pair[i]]
		if old := bk[pair[i]]; old != k {
			p.rekeyCharacter(old, k)
		}
		if a.Name != b.Name {
			p.protectCharacter(k, fieldName)
		}
		if a.Description != b.Description {
			p.protectCharacter(k, fieldDescription)
		}
		if a.CharacterArc != b.CharacterArc {
			p.protectCharacter(k, fieldArc)
		}
		p.editRelationships(k, b.Relationships, a.Relationships)
	}
}

// editRelationships records the relationship edits of the character keyed ck.
func (p *Protection) editRelationships(ck string, before, after []string) {
	if slices.Equal(before, after) {
		return
	}
	p.protectCharacter(ck, fieldRelationships)
	bk, ak := keysOf(before), keysOf(after)
	for _, k := range bk {
		if !slices.Contains(ak, k) {
			p.remove(sectionRelationships, ck+"/"+k)
		}
	}
	for _, k := range ak {
		p.unremove(sectionRelationships, ck+"/"+k)
	}
}

func (p *Protection) editItems(section string, before, after []string) {
	ak := keysOf(after)
	for _, b := range before {
		if k := NormalizeKey(b); k != "" && !slices.Contains(ak, k) {
			p.remove(section, k)
			p.dropItem(section, k)
		}
	}
	for i, a := range after {
		if ak[i] != "" && !slices.Contains(before, a) {
			p.unremove(section, ak[i])
			p.addItem(section, ak[i])
		}
	}
}

func (p *Protection) editScenes(before, after []Scene) {
	ak := make([]string, len(after))
	for i, s := range after {
		ak[i] = NormalizeKey(s.OneLiner)
	}
	for _, b := range before {
		if k := NormalizeKey(b.OneLiner); k != "" && !slices.Contains(ak, k) {
			p.remove(SectionScenes, k)
			p.dropItem(SectionScenes, k)
		}
	}
	for i, a := range after {
		if ak[i] != "" && !slices.Contains(before, a) {
			p.unremove(SectionScenes, ak[i])
			p.addItem(SectionScenes, ak[i])
		}
	}
}

// rekeyCharacter moves what protects a renamed character to its new key.
func (p *Protection) rekeyCharacter(old, next string) {
	for f := range p.Characters[old] {
		p.protectCharacter(next, f)
	}
	delete(p.Characters, old)
	for _, r := range slices.Clone(p.Removed[sectionRelationships]) {
		if rk, ok := strings.CutPrefix(r, old+"/"); ok {
			p.remove(sectionRelationships, next+"/"+rk)
			p.unremove(sectionRelationships, r)
		}
	}
}

func (p *Protection) protectCharacter(ck, field string) {
	if p.Characters == nil {
		p.Characters = make(map[string]map[string]bool)
	}
	if p.Characters[ck] == nil {
		p.Characters[ck] = make(map[string]bool)
	}
	p.Characters[ck][field] = true
}

func (p *Protection) addItem(section, k string) {
	if p.Items == nil {
		p.Items = make(map[string][]string)
	}
	p.Items[section] = insertKey(p.Items[section], k)
}

func (p *Protection) dropItem(section, k string) {
	if p.Items == nil {
		return
	}
	if p.Items[section] = deleteKey(p.Items[section], k); len(p.Items[section]) == 0 {
		delete(p.Items, section)
	}
}

func (p *Protection) remove(section, k string) {
	if p.Removed == nil {
		p.Removed = make(map[string][]string)
	}
	p.Removed[section] = insertKey(p.Removed[section], k)
}

func (p *Protection) unremove(section, k string) {
	if p.Removed == nil {
		return
	}
	if p.Removed[section] = deleteKey(p.Removed[section], k); len(p.Removed[section]) == 0 {
		delete(p.Removed, section)
	}
}

// field reports whether a person owns a top-level field.
func (p Protection) field(name string) bool { return p.Fields[name] }

// item reports whether a person added or edited the item keyed k.
func (p Protection) item(section, k string) bool { return slices.Contains(p.Items[section], k) }

// clone copies every map and list, so the copy shares no memory with p.
func (p Protection) clone() Protection {
	q := Protection{}
	if p.Fields != nil {
		q.Fields = make(map[string]bool, len(p.Fields))
		for k, v := range p.Fields {
			q.Fields[k] = v
		}
	}
	if p.Characters != nil {
		q.Characters = make(map[string]map[string]bool, len(p.Characters))
		for k, fields := range p.Characters {
			c := make(map[string]bool, len(fields))
			for f, v := range fields {
				c[f] = v
			}
			q.Characters[k] = c
		}
	}
	cloneLists := func(m map[string][]string) map[string][]string {
		if m == nil {
			return nil
		}
		out := make(map[string][]string, len(m))
		for k, v := range m {
			out[k] = slices.Clone(v)
		}
		return out
	}
	q.Items, q.Removed = cloneLists(p.Items), cloneLists(p.Removed)
	return q
}

func keysOf(items []string) []string {
	out := make([]string, len(items))
	for i, v := range items {
		out[i] = NormalizeKey(v)
	}
	return out
}

// insertKey adds k to a sorted list unless present. Lists read from JSON may
// be unsorted, so presence is checked by scanning.
func insertKey(list []string, k string) []string {
	if slices.Contains(list, k) {
		return list
	}
	i, _ := slices.BinarySearch(list, k)
	return slices.Insert(list, i, k)
}

func deleteKey(list []string, k string) []string {
	return slices.DeleteFunc(list, func(v string) bool { return v == k })
}
