// Package story holds the story dossier's schema: the snapshot a project's
// dossier stores, how it is validated, and how an
// extraction is merged into it (Merge) without overwriting or resurrecting
// what a person edited (Protection). It is pure data and functions: no I/O,
// no goroutines, safe for concurrent use.
package story
