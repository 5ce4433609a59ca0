package persistence

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// newMigrator returns a goose provider for the embedded files of one
// dialect. It never consults goose's process-wide registry of Go
// migrations and never logs (goose is quiet unless made verbose).
func newMigrator(dialect goose.Dialect, db *sql.DB, fsys fs.FS, opts ...goose.ProviderOption) (*goose.Provider, error) {
	opts = append([]goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}, opts...)
	return goose.NewProvider(dialect, db, fsys, opts...)
}

// migrateUp applies every pending migration and returns how many it applied,
// also when one of them failed.
func migrateUp(ctx context.Context, p *goose.Provider) (int, error) {
	res, err := p.Up(ctx)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			return len(partial.Applied), err
		}
		return 0, err
	}
	return len(res), nil
}

// countPending returns how many known migrations are not yet applied.
func countPending(ctx context.Context, p *goose.Provider) (int, error) {
	statuses, err := p.Status(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range statuses {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}
