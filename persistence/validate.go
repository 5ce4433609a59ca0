package persistence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file holds the rules both stores share: how ids, times and JSON are
// normalised and which records are valid. Validating here, before any SQL
// runs, gives both stores the same errors for the same input.

// maxClientMessageID bounds a client-chosen idempotency key.
const maxClientMessageID = 255

// newID returns a fresh row id: a version 7 UUID, whose time-ordered prefix
// keeps primary-key indexes append-mostly.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return id.String(), nil
}

// canonicalID returns id in canonical lower-case form, and false when id is
// not a UUID.
func canonicalID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// ownID normalises the id of a row about to be created: empty means
// generate one, anything else must be a UUID.
func ownID(id string) (string, error) {
	if id == "" {
		return newID()
	}
	c, ok := canonicalID(id)
	if !ok {
		return "", fmt.Errorf("%w: id %q is not a UUID", ErrInvalid, id)
	}
	return c, nil
}

// refID normalises a reference to another row. It must be present; a
// malformed id names no row, so it is ErrNotFound.
func refID(what, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: %s id is required", ErrInvalid, what)
	}
	c, ok := canonicalID(id)
	if !ok {
		return "", fmt.Errorf("%w: %s %q", ErrNotFound, what, id)
	}
	return c, nil
}

// normTime returns t as the stores keep it: UTC, truncated to microseconds
// (the resolution of timestamptz).
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// orNow returns normTime(t), or now when t is zero.
func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return normTime(t)
}

// checkText rejects text PostgreSQL cannot store (invalid UTF-8, NUL), so
// both stores accept exactly the same strings.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s contains a NUL character", ErrInvalid, what)
	}
	return nil
}

// checkTexts applies checkText to name/value pairs.
func checkTexts(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := checkText(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// storeObject validates raw as a JSON object and returns its compact text
// for storage; nil or empty input is the empty object. Like checkText it
// rejects what jsonb cannot hold (invalid UTF-8, a NUL in any string).
func storeObject(what string, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}", nil
	}
	if !utf8.Valid(raw) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	var probe any
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", fmt.Errorf("%w: %s is not a JSON object", ErrInvalid, what)
	}
	if _, ok := probe.(map[string]any); !ok {
		return "", fmt.Errorf("%w: %s is not a JSON object", ErrInvalid, what)
	}
	if hasNUL(probe) {
		return "", fmt.Errorf("%w: %s contains a NUL character", ErrInvalid, what)
	}
	canon, err := canonicalJSON(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return string(canon), nil
}

// canonicalJSON re-encodes a JSON value compactly with object keys sorted
// and without HTML escaping, keeping numbers as spelled. Both stores write
// and return this form, so equal input gives equal bytes whichever store
// (jsonb reorders keys and adds spaces) holds it.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// hasNUL reports whether a decoded JSON value holds a NUL in any string or key.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// metadataOut converts stored metadata to what callers see: nil for the
// empty object, otherwise compact JSON text in a fresh slice.
func metadataOut(b []byte) json.RawMessage {
	out := compactOut(b)
	if string(out) == "{}" {
		return nil
	}
	return out
}

// snapshotOut converts a stored snapshot to what callers see: always a JSON
// object, "{}" when empty.
func snapshotOut(b []byte) json.RawMessage { return compactOut(b) }

// compactOut returns stored JSON in canonical form (see canonicalJSON) in a
// fresh slice, "{}" for nothing.
func compactOut(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return json.RawMessage("{}")
	}
	out, err := canonicalJSON(b)
	if err != nil {
		return bytes.Clone(b)
	}
	return out
}
