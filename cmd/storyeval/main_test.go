package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/storyd/storyd/llm"
)

// The eval plays a story through the actors and the original approach over
// the fake model's wire, and prints both rows and the cost comparison.
func TestEvalRunsBothApproaches(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-stories", "testdata/one.json", "-lengths", "12"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, re := range []string{
		`(?m)^lighthouse +storyd +1\.00/1\.00/1\.00 .* 1 / \d+ / \d+$`,
		`(?m)^ +original +\S+ .* 4 / \d+ / \d+$`,
		`(?m)^12 +\d+ / \d+ +6 / \d+ +\d+\.\d×, \d+\.\d×$`,
		`JSON schema \(response_format\): about \d+ tokens`,
	} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("no match for %s in\n%s", re, got)
		}
	}
}

func TestEvalRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-lengths", "1"}, {"-lengths", "x"}, {"-lengths", "100000"}, {"-stories", "testdata/nope.json"}, {"extra"},
	} {
		if err := run(t.Context(), append([]string{"-stories", "testdata/one.json"}, args...), func(string) string { return "" }, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// The fake model reads back exactly the turns a prompt carries.
func TestParseTurns(t *testing.T) {
	prompt := "The dossier so far:\nCharacters:\n- Ada\n\nNew turns, oldest first:\n\n[Turn 1]\nPerson: It's about Ada.\nShe keeps the light.\nInterviewer: Who else?\n\n[Turn 2]\nPerson: Tom.\n\nAnswer with what these turns add."
	want := []llm.Turn{{User: "It's about Ada.\nShe keeps the light.", Assistant: "Who else?"}, {User: "Tom."}}
	if got := parseTurns(prompt); !slices.Equal(got, want) {
		t.Errorf("parseTurns = %q, want %q", got, want)
	}
	if got := parseTurns(strings.ReplaceAll(prompt, "[Turn", "[Tour")); len(got) != 0 {
		t.Errorf("turns without headers: %q", got)
	}
}
