package persistence

import (
	"context"
	"fmt"
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
