package persistence_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/storyd/storyd/persistence"
)

func TestDeriveTitle(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 30)
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"blank", " \n\t \n", ""},
		{"short", "Tell me about John", "Tell me about John"},
		{"first non-blank line", "\n\n  A detective\tin   LA  \nsecond line", "A detective in LA"},
		{"cut at a word", long, strings.TrimSpace(strings.Repeat("word ", 11)) + "…"},
		{"no spaces", strings.Repeat("x", 100), strings.Repeat("x", persistence.MaxTitleRunes-1) + "…"},
		{"runes not bytes", strings.Repeat("é", 60), strings.Repeat("é", 60)},
		{"trailing punctuation dropped", strings.Repeat("a", 50) + ", bbbbbbbbbbbbbbbbbbbb", strings.Repeat("a", 50) + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := persistence.DeriveTitle(c.in)
			if got != c.want {
				t.Errorf("DeriveTitle(%q) = %q; want %q", c.in, got, c.want)
			}
			if n := utf8.RuneCountInString(got); n > persistence.MaxTitleRunes {
				t.Errorf("title has %d runes", n)
			}
		})
	}
}
