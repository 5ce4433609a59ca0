package persistence_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/persistence/pgtest"
)

func openPostgres(t *testing.T, opts ...persistence.Option) store {
	t.Helper()
	url := pgtest.NewDatabase(t)
	s, err := persistence.OpenPostgres(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestPostgresContract(t *testing.T) {
	t.Parallel()
	pgtest.ServerURL(t) // skip early when there is no server
	runContract(t, openPostgres)
}

func TestPostgresNewStore(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	if n, err := s.PendingMigrations(t.Context()); err != nil || n != 0 {
		t.Fatalf("PendingMigrations = %d, %v", n, err)
	}
	if s.Kind() != "postgres" {
		t.Errorf("Kind = %q", s.Kind())
	}
	mustUser(t, s)
}

// TestOpenPostgresHidesPassword needs no server: it connects to nowhere.
func TestOpenPostgresHidesPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Pa55word"
	for _, url := range []string{
		"postgres://storyd:" + secret + "@127.0.0.1:1/storyd?sslmode=disable&connect_timeout=5",
		"host=127.0.0.1 port=1 user=storyd password=" + secret + " dbname=storyd sslmode=disable connect_timeout=5",
		"postgres://storyd:" + secret + "@127.0.0.1:notaport/storyd",
		"postgres://storyd:" + secret + "@127.0.0.1:1/storyd?pool_max_conns=many",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		s, err := persistence.OpenPostgres(ctx, url)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error reveals the password: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "persistence: open postgres") {
			t.Errorf("error lacks the package prefix: %v", err)
		}
	}
}
