package persistence

import (
	"encoding/json"
	"time"
)

// Message roles.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)

// Message statuses. A user message is always StatusComplete; an assistant
// message records how its generation ended.
const (
	StatusComplete  = "complete"
	StatusPartial   = "partial"
	StatusCancelled = "cancelled"
	StatusFailed    = "failed"
)

// User is a person known to storyd: anonymous (an id minted by or accepted
// from a client) or registered (a JWT subject).
type User struct {
	ID          string
	Email       string
	DisplayName string
	AvatarURL   string
	IsAnonymous bool
	// MigratedTo is the registered user an anonymous user's data moved to;
	// empty unless it moved. A migrated anonymous id is dead.
	MigratedTo string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Project groups the sessions of one story and owns its dossier.
type Project struct {
	ID        string
	UserID    string
	Title     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Session is one chat conversation. LastSeq is the highest event sequence
// number any stored message of the session occupies (0 when it has none);
// a session actor resumes numbering after it.
type Session struct {
	ID            string
	UserID        string
	ProjectID     string
	Title         string
	IsActive      bool
	MessageCount  int
	LastMessageAt *time.Time
	LastSeq       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Message is one stored chat message. Seq is the session event sequence
// number of the message's first event and EndSeq of its last (equal for a
// user message); both increase monotonically within a session. TurnID is the
// ID of the user message a turn started with: a user message carries its own
// ID, its assistant reply carries the same value. ClientMessageID is unique
// per session when non-empty, which makes retries idempotent.
type Message struct {
	ID              string
	SessionID       string
	Seq             int64
	EndSeq          int64
	TurnID          string
	Role            string
	Content         string
	Metadata        json.RawMessage // a JSON object, or nil
	Status          string
	ClientMessageID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Dossier is the current story dossier of a project. Protection records
// what people edited by hand: a JSON object the store keeps but does not
// interpret ("{}" when there is none). Only SaveDossier writes it; it is
// not kept in dossier versions.
type Dossier struct {
	ProjectID  string
	UserID     string
	Snapshot   json.RawMessage
	Protection json.RawMessage
	Version    int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Dossier version sources.
const (
	SourceExtraction = "extraction"
	SourceUser       = "user"
)

// DossierVersion is one kept version of a dossier.
type DossierVersion struct {
	ProjectID string
	Version   int
	Snapshot  json.RawMessage
	Source    string
	SeqFrom   int64
	SeqTo     int64
	CreatedAt time.Time
}

// DossierSummary is one entry of a user's list of dossiers: what a listing
// shows without shipping the snapshot. Both stores compute it the same way
// from the stored snapshot:
//
//   - Title is the snapshot's top-level "title" when that is a non-empty
//     string, else the project's title.
//   - CharacterCount and ThemeCount are the lengths of the snapshot's
//     top-level "characters" and "themes" arrays; 0 when the key is absent
//     or its value is not an array.
type DossierSummary struct {
	ProjectID      string
	UserID         string
	Title          string
	CharacterCount int
	ThemeCount     int
	Version        int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// MigrationResult counts the rows MigrateUser moved from the anonymous user
// to the permanent one.
type MigrationResult struct {
	Sessions int // chat sessions, active or not
	Projects int
	Dossiers int
}

// DossierCursor says how far a project's dossier extraction has read one of
// its sessions: every turn whose user message has a seq at or below
// ExtractedSeq was extracted (or refused by the model twice) and is not
// read again. A session without a cursor has been read up to 0.
type DossierCursor struct {
	ProjectID    string
	SessionID    string
	ExtractedSeq int64
	UpdatedAt    time.Time
}

// PendingTurn is a stored turn that a project's dossier extraction has not
// read yet: a user message after its session's cursor and the latest reply
// to it, whatever the reply's status. A user message with no stored reply
// (its reply was in flight, or could not be stored) has an empty Assistant,
// an empty ReplyStatus and SeqTo equal to the message's own end seq.
type PendingTurn struct {
	SessionID     string
	UserMessageID string
	// SeqFrom is the user message's seq, SeqTo the reply's end seq.
	SeqFrom, SeqTo int64
	User           string
	Assistant      string
	ReplyStatus    string
	// CreatedAt is the user message's.
	CreatedAt time.Time
}
