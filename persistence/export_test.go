package persistence

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/storyd/storyd/migrations"
)

// ExecForTest runs one SQL statement on a store's database, bypassing the
// store's methods, for tests that must arrange what no method can (such as
// a trigger that makes a transaction fail halfway).
func ExecForTest(ctx context.Context, s any, query string) error {
	var err error
	switch s := s.(type) {
	case *Postgres:
		_, err = s.pool.Exec(ctx, query)
	case *SQLite:
		_, err = s.w.ExecContext(ctx, query)
	default:
		err = fmt.Errorf("ExecForTest: unknown store %T", s)
	}
	return err
}

// MigrateUpToForTest applies the migrations of a store up to and including
// version, for tests of what a later migration does to existing rows.
func MigrateUpToForTest(ctx context.Context, s any, version int64) error {
	switch s := s.(type) {
	case *Postgres:
		p, closeDB, err := s.migrator(false)
		if err != nil {
			return err
		}
		defer closeDB()
		_, err = p.UpTo(ctx, version)
		return err
	case *SQLite:
		p, err := newMigrator(goose.DialectSQLite3, s.w, migrations.SQLite())
		if err != nil {
			return err
		}
		_, err = p.UpTo(ctx, version)
		return err
	}
	return fmt.Errorf("MigrateUpToForTest: unknown store %T", s)
}
