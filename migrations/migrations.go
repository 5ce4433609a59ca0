// Package migrations holds storyd's database schema as numbered, forward-only
// SQL files for goose, one set per dialect, embedded in the binary so that
// `storyd migrate`, start-up and the tests apply exactly the same files.
//
// Every change to the schema is a new file with the next number in both
// postgres/ and sqlite/, describing the same tables, columns, constraints and
// indexes. An applied file is never edited. The files have no Down section:
// the schema only moves forward.
//
// The package has no mutable state; the file systems it returns are
// read-only and safe for concurrent use.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the PostgreSQL migration files, at the root of the
// returned file system as goose expects them.
func Postgres() fs.FS { return dialect("postgres") }

// SQLite returns the SQLite migration files, at the root of the returned
// file system as goose expects them.
func SQLite() fs.FS { return dialect("sqlite") }

func dialect(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path; dir is a constant.
		panic("migrations: " + err.Error())
	}
	return sub
}
