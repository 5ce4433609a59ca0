package persistence

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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

// storeObject validates raw as a JSON object and returns its canonical text
// (see canonicalJSON) for storage; nil or blank input is the empty object.
// Like checkText it rejects what jsonb cannot hold (invalid UTF-8, a NUL in
// any string).
func storeObject(what string, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}", nil
	}
	if !utf8.Valid(raw) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not a JSON object: %v", ErrInvalid, what, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return "", fmt.Errorf("%w: %s is not a JSON object", ErrInvalid, what)
	}
	if hasNUL(v) {
		return "", fmt.Errorf("%w: %s contains a NUL character", ErrInvalid, what)
	}
	canon, err := encodeJSON(v)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return string(canon), nil
}

// canonicalJSON re-encodes a JSON value compactly with object keys sorted
// and without HTML escaping, keeping numbers as spelled. Both stores write
// and return this form, so equal input gives equal bytes whichever store
// holds it (jsonb reorders keys and adds spaces; it may also respell a
// number, 1e2 as 100).
func canonicalJSON(raw []byte) ([]byte, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	return encodeJSON(v)
}

// decodeJSON decodes exactly one JSON value, numbers as json.Number.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// encodeJSON encodes v compactly, map keys sorted, without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
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

func prepareUser(u User, now time.Time) (User, error) {
	if u.ID == "" {
		return User{}, fmt.Errorf("%w: user id is required", ErrInvalid)
	}
	id, ok := canonicalID(u.ID)
	if !ok {
		return User{}, fmt.Errorf("%w: user id %q is not a UUID", ErrInvalid, u.ID)
	}
	u.ID = id
	if err := checkTexts("email", u.Email, "display name", u.DisplayName, "avatar url", u.AvatarURL); err != nil {
		return User{}, err
	}
	if u.MigratedTo != "" {
		to, ok := canonicalID(u.MigratedTo)
		if !ok {
			return User{}, fmt.Errorf("%w: migrated_to %q is not a UUID", ErrInvalid, u.MigratedTo)
		}
		u.MigratedTo = to
	}
	u.CreatedAt = orNow(u.CreatedAt, now)
	u.UpdatedAt = orNow(u.UpdatedAt, u.CreatedAt)
	return u, nil
}

// prepareUpsert validates the profile UpsertUser writes. MigratedTo is not
// part of a profile (only MigrateUser sets it) and is ignored.
func prepareUpsert(u User, now time.Time) (User, error) {
	u.MigratedTo = ""
	return prepareUser(u, now)
}

// migrationIDs validates the ids MigrateUser is given: the anonymous user is
// a reference (malformed: ErrNotFound), the permanent one may be a new row
// (malformed: ErrInvalid), and an id cannot migrate to itself (ErrInvalid).
func migrationIDs(tempUserID, permanentUserID string) (from, to string, err error) {
	if from, err = refID("temporary user", tempUserID); err != nil {
		return "", "", err
	}
	if permanentUserID == "" {
		return "", "", fmt.Errorf("%w: permanent user id is required", ErrInvalid)
	}
	to, ok := canonicalID(permanentUserID)
	if !ok {
		return "", "", fmt.Errorf("%w: permanent user id %q is not a UUID", ErrInvalid, permanentUserID)
	}
	if from == to {
		return "", "", fmt.Errorf("%w: user %s cannot migrate to itself", ErrInvalid, from)
	}
	return from, to, nil
}

// checkMigratable says whether a stored user may be migrated: it must be
// anonymous and not migrated already (ErrConflict otherwise).
func checkMigratable(id string, anonymous bool, migratedTo string) error {
	if migratedTo != "" {
		return fmt.Errorf("%w: user %s already migrated to %s", ErrConflict, id, migratedTo)
	}
	if !anonymous {
		return fmt.Errorf("%w: user %s is registered, not anonymous", ErrConflict, id)
	}
	return nil
}

func prepareProject(p Project, now time.Time) (Project, error) {
	var err error
	if p.ID, err = ownID(p.ID); err != nil {
		return Project{}, err
	}
	if p.UserID, err = refID("user", p.UserID); err != nil {
		return Project{}, err
	}
	if err := checkText("title", p.Title); err != nil {
		return Project{}, err
	}
	p.CreatedAt = orNow(p.CreatedAt, now)
	p.UpdatedAt = orNow(p.UpdatedAt, p.CreatedAt)
	return p, nil
}

func prepareSession(s Session, now time.Time) (Session, error) {
	var err error
	if s.ID, err = ownID(s.ID); err != nil {
		return Session{}, err
	}
	if s.UserID, err = refID("user", s.UserID); err != nil {
		return Session{}, err
	}
	if s.ProjectID, err = refID("project", s.ProjectID); err != nil {
		return Session{}, err
	}
	if err := checkText("title", s.Title); err != nil {
		return Session{}, err
	}
	s.IsActive = true
	s.MessageCount = 0
	s.LastMessageAt = nil
	s.LastSeq = 0
	s.CreatedAt = orNow(s.CreatedAt, now)
	s.UpdatedAt = orNow(s.UpdatedAt, s.CreatedAt)
	return s, nil
}

// prepareMessage validates m for AppendMessage and fills its defaults. It
// returns the message as AppendMessage reports it and the metadata text to
// store.
func prepareMessage(m Message, now time.Time) (Message, string, error) {
	var err error
	if m.SessionID, err = refID("session", m.SessionID); err != nil {
		return Message{}, "", err
	}
	if m.ID, err = ownID(m.ID); err != nil {
		return Message{}, "", err
	}
	if m.Seq < 1 {
		return Message{}, "", fmt.Errorf("%w: seq %d is below 1", ErrInvalid, m.Seq)
	}
	if m.EndSeq == 0 {
		m.EndSeq = m.Seq
	}
	if m.EndSeq < m.Seq {
		return Message{}, "", fmt.Errorf("%w: end seq %d is below seq %d", ErrInvalid, m.EndSeq, m.Seq)
	}
	switch m.Role {
	case RoleUser, RoleAssistant, RoleSystem:
	default:
		return Message{}, "", fmt.Errorf("%w: role %q", ErrInvalid, m.Role)
	}
	switch m.Status {
	case "":
		m.Status = StatusComplete
	case StatusComplete, StatusPartial, StatusCancelled, StatusFailed:
	default:
		return Message{}, "", fmt.Errorf("%w: status %q", ErrInvalid, m.Status)
	}
	switch {
	case m.TurnID == "" && m.Role == RoleUser:
		m.TurnID = m.ID
	case m.TurnID != "":
		t, ok := canonicalID(m.TurnID)
		if !ok {
			return Message{}, "", fmt.Errorf("%w: turn id %q is not a UUID", ErrInvalid, m.TurnID)
		}
		m.TurnID = t
	}
	if len(m.ClientMessageID) > maxClientMessageID {
		return Message{}, "", fmt.Errorf("%w: client message id longer than %d bytes", ErrInvalid, maxClientMessageID)
	}
	if err := checkTexts("content", m.Content, "client message id", m.ClientMessageID); err != nil {
		return Message{}, "", err
	}
	meta, err := storeObject("metadata", m.Metadata)
	if err != nil {
		return Message{}, "", err
	}
	m.Metadata = metadataOut([]byte(meta))
	m.CreatedAt = orNow(m.CreatedAt, now)
	m.UpdatedAt = orNow(m.UpdatedAt, m.CreatedAt)
	return m, meta, nil
}

func prepareDossier(d Dossier, now time.Time) (Dossier, error) {
	var err error
	if d.ProjectID, err = refID("project", d.ProjectID); err != nil {
		return Dossier{}, err
	}
	if d.UserID, err = refID("user", d.UserID); err != nil {
		return Dossier{}, err
	}
	snap, err := storeObject("snapshot", d.Snapshot)
	if err != nil {
		return Dossier{}, err
	}
	d.Snapshot = json.RawMessage(snap)
	prot, err := storeObject("protection", d.Protection)
	if err != nil {
		return Dossier{}, err
	}
	d.Protection = json.RawMessage(prot)
	d.Version = 1
	d.CreatedAt = orNow(d.CreatedAt, now)
	d.UpdatedAt = orNow(d.UpdatedAt, d.CreatedAt)
	return d, nil
}

// prepareVersion fills the dossier_versions row written beside a dossier
// write: the caller supplies Source and the seq range, the store the rest.
func prepareVersion(src DossierVersion, projectID string, version int, snapshot json.RawMessage, now time.Time) (DossierVersion, error) {
	switch src.Source {
	case SourceExtraction, SourceUser:
	default:
		return DossierVersion{}, fmt.Errorf("%w: dossier source %q", ErrInvalid, src.Source)
	}
	if src.SeqFrom < 0 || src.SeqTo < src.SeqFrom {
		return DossierVersion{}, fmt.Errorf("%w: seq range %d..%d", ErrInvalid, src.SeqFrom, src.SeqTo)
	}
	return DossierVersion{
		ProjectID: projectID,
		Version:   version,
		Snapshot:  snapshot,
		Source:    src.Source,
		SeqFrom:   src.SeqFrom,
		SeqTo:     src.SeqTo,
		CreatedAt: now,
	}, nil
}

// checkPage validates ListMessages/RecentMessages paging.
func checkPage(limit, offset int) error {
	if limit < 1 {
		return fmt.Errorf("%w: limit %d is below 1", ErrInvalid, limit)
	}
	if offset < 0 {
		return fmt.Errorf("%w: offset %d is negative", ErrInvalid, offset)
	}
	return nil
}

// cursorAdvance is one session's cursor to raise, validated.
type cursorAdvance struct {
	sessionID string
	seq       int64
}

// prepareCursors validates the arguments of AdvanceDossierCursors: a
// malformed project or session id names no row (ErrNotFound), a negative
// seq is ErrInvalid. The result is sorted by session id, so that concurrent
// writers lock rows in the same order.
func prepareCursors(projectID string, extractedSeq map[string]int64) (string, []cursorAdvance, error) {
	pid, ok := canonicalID(projectID)
	if !ok {
		return "", nil, fmt.Errorf("%w: project %q", ErrNotFound, projectID)
	}
	out := make([]cursorAdvance, 0, len(extractedSeq))
	for id, seq := range extractedSeq {
		sid, ok := canonicalID(id)
		if !ok {
			return "", nil, fmt.Errorf("%w: session %q", ErrNotFound, id)
		}
		if seq < 0 {
			return "", nil, fmt.Errorf("%w: extracted seq %d of session %s is negative", ErrInvalid, seq, sid)
		}
		out = append(out, cursorAdvance{sessionID: sid, seq: seq})
	}
	slices.SortFunc(out, func(a, b cursorAdvance) int {
		if c := strings.Compare(a.sessionID, b.sessionID); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq) // the higher first
	})
	// Two spellings of one id: keep the higher seq.
	out = slices.CompactFunc(out, func(a, b cursorAdvance) bool { return a.sessionID == b.sessionID })
	return pid, out, nil
}
