package pgtest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/storyd/storyd/persistence/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestWithDatabase(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5433/storyd_t_x?sslmode=disable"},
		{"postgresql://u:p%40ss@h/db", "postgresql://u:p%40ss@h/storyd_t_x"},
		{"postgres://h", "postgres://h/storyd_t_x"},
		{"host=/tmp dbname=postgres", "host=/tmp dbname=postgres dbname=storyd_t_x"},
	}
	for _, c := range cases {
		got, err := pgtest.WithDatabase(c.in, "storyd_t_x")
		if err != nil || got != c.want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestNewDatabase creates and uses a database (skipped without a server).
func TestNewDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if url == "" {
		t.Fatal("empty URL")
	}
	s := pgtest.NewStore(t)
	if n, err := s.PendingMigrations(t.Context()); err != nil || n != 0 {
		t.Fatalf("PendingMigrations = %d, %v", n, err)
	}
}
