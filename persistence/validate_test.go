package persistence

import (
	"errors"
	"testing"
)

func TestStoreObject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
		err      error
	}{
		{"", "{}", nil},
		{" \n", "{}", nil},
		{"{}", "{}", nil},
		{`{"b":1,"a":{"d":[1,2],"c":"x"}}`, `{"a":{"c":"x","d":[1,2]},"b":1}`, nil},
		{`{"n":1e2,"m":-0.50,"big":12345678901234567890}`, `{"big":12345678901234567890,"m":-0.50,"n":1e2}`, nil},
		{`{"h":"<&>"}`, `{"h":"<&>"}`, nil},
		{`{"dup":1,"dup":2}`, `{"dup":2}`, nil},
		{`[]`, "", ErrInvalid},
		{`"x"`, "", ErrInvalid},
		{`null`, "", ErrInvalid},
		{`{} {}`, "", ErrInvalid},
		{`{"a":1} x`, "", ErrInvalid},
		{`{"a":`, "", ErrInvalid},
		{"{\"a\":\"\xff\"}", "", ErrInvalid},
		{`{"a\u0000":1}`, "", ErrInvalid},
		{`{"a":["\u0000"]}`, "", ErrInvalid},
		{`{"a":"\\u0000"}`, `{"a":"\\u0000"}`, nil}, // an escaped backslash, not a NUL
	}
	for _, c := range cases {
		got, err := storeObject("metadata", []byte(c.in))
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("storeObject(%q) error %v; want %v", c.in, err, c.err)
			continue
		}
		if got != c.want {
			t.Errorf("storeObject(%q) = %s; want %s", c.in, got, c.want)
		}
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	const canon = "0195f3a1-7c2e-7d3b-9a4f-2b1c0d9e8f7a"
	for _, in := range []string{canon, "0195F3A1-7C2E-7D3B-9A4F-2B1C0D9E8F7A", "{" + canon + "}", "urn:uuid:" + canon} {
		if got, ok := canonicalID(in); !ok || got != canon {
			t.Errorf("canonicalID(%q) = %q, %v", in, got, ok)
		}
	}
	if _, err := refID("session", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refID malformed: %v", err)
	}
	if _, err := refID("session", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("refID empty: %v", err)
	}
	if _, err := ownID("nope"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ownID malformed: %v", err)
	}
	a, err1 := ownID("")
	b, err2 := ownID("")
	if err1 != nil || err2 != nil || a == b {
		t.Errorf("ownID generated %q, %q (%v, %v)", a, b, err1, err2)
	}
}
