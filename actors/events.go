package actors

import "sync/atomic"

// EventType names the kind of a session event. The values are the "type"
// field of the wire protocol.
type EventType string

// Session event types.
const (
	EventAck      EventType = "ack"
	EventMessage  EventType = "message"
	EventText     EventType = "text"
	EventMetadata EventType = "metadata"
	EventDone     EventType = "done"
	EventError    EventType = "error"
	EventReset    EventType = "reset"
	EventDossier  EventType = "dossier"
)

// Event is one event of a session, numbered by Seq. Seqs increase strictly
// within a session; they may have gaps (a user message takes a seq but
// produces no event here), so a client resumes by remembering the last seq
// it saw. Events are immutable once published.
type Event struct {
	Type      EventType
	SessionID string
	Seq       int64
	// TurnID is the ID of the user message whose reply this event belongs to.
	TurnID   string
	Content  string        // for EventText
	Metadata *Metadata     // for EventMetadata
	Err      *ErrorInfo    // for EventError
	Ack      *ChatAccepted // for EventAck, sent to the chat's sender only
	Message  *UserMessage  // for EventMessage
	// Dossier is set for EventDossier, which has no seq: it is not part of
	// the session's stream, and a client that missed one reads the dossier.
	Dossier *DossierUpdate
	// Wire, when set, is shared by every copy of the event handed to
	// subscribers, so that a transport encodes the event once however many
	// sockets carry it. The actor never reads it.
	Wire *Wire
}

// Wire memoizes an event's encoding for the transports. It is safe for
// concurrent use; two writers racing to fill it may both encode, and one
// encoding wins.
type Wire struct{ b atomic.Pointer[[]byte] }

// NewWire returns an empty memo.
func NewWire() *Wire { return &Wire{} }

// Bytes returns the memoized encoding, calling encode to make it the first
// time. A nil Wire memoizes nothing.
func (w *Wire) Bytes(encode func() []byte) []byte {
	if w == nil {
		return encode()
	}
	if b := w.b.Load(); b != nil {
		return *b
	}
	b := encode()
	if !w.b.CompareAndSwap(nil, &b) {
		return *w.b.Load()
	}
	return b
}

// UserMessage is the payload of a message event: a user message was stored.
type UserMessage struct {
	MessageID       string `json:"message_id"`
	Role            string `json:"role"`
	Content         string `json:"content"`
	ClientMessageID string `json:"client_message_id,omitempty"`
}

// Metadata is the payload of a metadata event, sent once per reply.
type Metadata struct {
	SessionID      string `json:"session_id"`
	ProjectID      string `json:"project_id"`
	MessageID      string `json:"message_id"`
	UserID         string `json:"user_id,omitempty"`
	Status         string `json:"status"`
	DossierUpdated bool   `json:"dossier_updated"`
}

// ErrorInfo is the payload of an error event: a stable code and a message
// that is safe to show to the client.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Subscriber receives the events of a session. The session actor calls its
// methods from its own goroutine; neither may block.
type Subscriber interface {
	// Deliver hands ev to the subscriber. It returns false when the
	// subscriber's bounded queue is full; the actor then drops it with
	// ErrSlowSubscriber.
	Deliver(ev Event) bool
	// DeliverBatch hands a catch-up (the events a subscriber missed, at
	// most Config.ReplayEvents of them plus a reply in flight) to the
	// subscriber as one queue item, so that resuming far back is not taken
	// for falling behind. It returns false when the queue is full.
	DeliverBatch(evs []Event) bool
	// Drop tells the subscriber the actor removed it and why. It is called
	// at most once, and no Deliver follows it.
	Drop(err error)
}
