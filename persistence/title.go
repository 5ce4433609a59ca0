package persistence

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTitleRunes is the longest title DeriveTitle returns, ellipsis included.
const MaxTitleRunes = 60

// DeriveTitle makes a session title from the first user message of the
// session: its first non-blank line with runs of white space collapsed,
// shortened at a word boundary to at most MaxTitleRunes runes with a
// trailing "…". It returns "" for text with no visible characters.
// AppendMessage uses it to title an untitled session.
func DeriveTitle(text string) string {
	var line string
	for l := range strings.Lines(text) {
		if l = strings.Join(strings.FieldsFunc(l, unicode.IsSpace), " "); l != "" {
			line = l
			break
		}
	}
	if utf8.RuneCountInString(line) <= MaxTitleRunes {
		return line
	}
	runes := []rune(line)[:MaxTitleRunes-1] // leave room for the ellipsis
	cut := len(runes)
	// Prefer a word boundary unless it would throw away most of the text.
	for i := len(runes) - 1; i >= MaxTitleRunes/2; i-- {
		if runes[i] == ' ' {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(runes[:cut]), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r)
	}) + "…"
}
