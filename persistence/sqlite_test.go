package persistence_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/storyd/storyd/persistence"
)

func openSQLite(t *testing.T, opts ...persistence.Option) store {
	t.Helper()
	opts = append([]persistence.Option{persistence.WithSQLiteReadConns(2)}, opts...)
	s, err := persistence.OpenSQLite(t.Context(), t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLiteContract(t *testing.T) {
	t.Parallel()
	runContract(t, openSQLite)
}

func TestSQLiteFiles(t *testing.T) {
	t.Parallel()
	// A directory name that needs escaping in a file: URI.
	dir := filepath.Join(t.TempDir(), "data dir?#%")
	s, err := persistence.OpenSQLite(t.Context(), dir)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	path := filepath.Join(dir, persistence.SQLiteFile)
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	u := mustUser(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The schema went into the file the URI names, not somewhere else.
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("%s: %v, %v", path, fi, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s: mode %v, want at most %v", path, got, want)
		}
	}

	// Data survives a reopen, and the schema is current.
	s2, err := persistence.OpenSQLite(t.Context(), dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if n, err := s2.PendingMigrations(t.Context()); err != nil || n != 0 {
		t.Errorf("PendingMigrations after reopen = %d, %v", n, err)
	}
	got, err := s2.GetUser(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("GetUser after reopen: %v", err)
	}
	wantEqual(t, "user after reopen", got, u)
}

func TestSQLiteOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := persistence.OpenSQLite(t.Context(), ""); !errors.Is(err, persistence.ErrInvalid) {
		t.Errorf("empty data dir: %v", err)
	}
	// A file where the directory should be.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := persistence.OpenSQLite(t.Context(), file); err == nil {
		s.Close()
		t.Error("OpenSQLite on a file succeeded")
	}
}
