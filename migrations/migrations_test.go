package migrations_test

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/storyd/storyd/migrations"
)

var fileName = regexp.MustCompile(`^[0-9]{5}_[a-z0-9_]+\.sql$`)

func sqlFiles(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migration files")
	}
	return names
}

// TestDialectsInStep checks that both dialects have the same numbered files,
// each with an Up section and no Down section (migrations only move forward).
func TestDialectsInStep(t *testing.T) {
	pg := sqlFiles(t, migrations.Postgres())
	lite := sqlFiles(t, migrations.SQLite())
	if !slices.Equal(pg, lite) {
		t.Fatalf("dialects differ: postgres %v, sqlite %v", pg, lite)
	}
	for _, tc := range []struct {
		dialect string
		fsys    fs.FS
	}{
		{"postgres", migrations.Postgres()},
		{"sqlite", migrations.SQLite()},
	} {
		t.Run(tc.dialect, func(t *testing.T) {
			for _, name := range pg {
				if !fileName.MatchString(name) {
					t.Errorf("%s: name does not match %s", name, fileName)
				}
				b, err := fs.ReadFile(tc.fsys, name)
				if err != nil {
					t.Fatal(err)
				}
				text := string(b)
				if !strings.Contains(text, "\n-- +goose Up\n") {
					t.Errorf("%s: no '-- +goose Up' line", name)
				}
				if strings.Contains(text, "+goose Down") {
					t.Errorf("%s: has a Down section; migrations are forward-only", name)
				}
			}
		})
	}
}
