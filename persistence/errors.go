package persistence

import "errors"

// Sentinel errors. Both stores map driver errors to these, so callers never
// import a database driver; test with errors.Is.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("persistence: not found")
	// ErrConflict: a row with the same identity already exists, or a
	// version check failed.
	ErrConflict = errors.New("persistence: conflict")
	// ErrInvalid: an argument cannot be stored as given (a malformed id for a
	// new row, an unknown role or status, metadata that is not a JSON
	// object, a seq below 1, a negative limit). Callers answer 422 or 400.
	ErrInvalid = errors.New("persistence: invalid argument")
)
