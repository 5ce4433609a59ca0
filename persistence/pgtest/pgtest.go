// Package pgtest gives integration tests a PostgreSQL database of their own.
//
// Tests name a running server with STORYD_TEST_DATABASE_URL, a superuser URL
// such as postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable. Each
// call to NewDatabase creates a fresh database on it and drops it when the
// test ends, so tests may run in parallel. Without the variable the test is
// skipped, unless STORYD_REQUIRE_SERVICES=1, which makes it fail instead (CI
// sets it so that a missing server cannot pass silently).
//
// Its functions are safe to call from parallel tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/storyd/storyd/persistence"
)

// Environment variables read by this package.
const (
	// EnvURL names the superuser URL of the test server.
	EnvURL = "STORYD_TEST_DATABASE_URL"
	// EnvRequire, set to 1, turns a missing EnvURL into a test failure.
	EnvRequire = "STORYD_REQUIRE_SERVICES"
)

// DatabasePrefix starts the name of every database NewDatabase creates, so
// leftovers of a killed test run are easy to find and drop.
const DatabasePrefix = "storyd_t_"

// adminTimeout bounds creating and dropping a test database.
const adminTimeout = time.Minute

// ServerURL returns the superuser URL of the test server, skipping the test
// (or failing it under STORYD_REQUIRE_SERVICES=1) when none is configured.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s is not set and %s=1: a PostgreSQL server is required", EnvURL, EnvRequire)
	}
	t.Skipf("PostgreSQL tests skipped: set %s to a superuser URL of a running server", EnvURL)
	return ""
}

// NewDatabase creates an empty database on the test server, registers a
// cleanup that drops it (WITH (FORCE), so open connections do not stop it)
// when the test ends, and returns its URL. The schema is not applied; see
// NewStore for a migrated store.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := ServerURL(t)
	name := DatabasePrefix + randomHex(t, 8)
	ctx, cancel := context.WithTimeout(t.Context(), adminTimeout)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dbURL, err := WithDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// NewStore creates a database with NewDatabase, opens a persistence.Postgres
// on it with opts, applies the migrations and closes the store when the
// test ends (before the database is dropped).
func NewStore(t testing.TB, opts ...persistence.Option) *persistence.Postgres {
	t.Helper()
	dbURL := NewDatabase(t)
	s, err := persistence.OpenPostgres(t.Context(), dbURL, opts...)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

// WithDatabase returns connString with its database name replaced by name.
// It accepts postgres:// and postgresql:// URLs and keyword/value strings.
func WithDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			// url.Parse quotes its input, password included.
			return "", fmt.Errorf("cannot parse %s as a URL", EnvURL)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In a keyword/value string a later keyword wins.
	return connString + " dbname=" + name, nil
}

func adminExec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random name: %v", err)
	}
	return hex.EncodeToString(b)
}
