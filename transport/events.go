package transport

import (
	"encoding/json"

	"github.com/storyd/storyd/actors"
)

// The JSON shapes of session events, shared by WebSocket and SSE (see
// docs/protocol.md). SSE clients of the seed read only type, content,
// metadata and error; the other fields are additions they ignore.
type (
	wireEvent struct {
		Type      string              `json:"type"`
		SessionID string              `json:"session_id,omitempty"`
		Seq       int64               `json:"seq,omitempty"`
		Content   string              `json:"content,omitempty"`
		Metadata  *actors.Metadata    `json:"metadata,omitempty"`
		Error     *actors.ErrorInfo   `json:"error,omitempty"`
		Message   *actors.UserMessage `json:"message,omitempty"`
	}
	// wireDossier is a dossier event: every field always present, changed
	// an empty list rather than absent when no section changed.
	wireDossier struct {
		Type      string   `json:"type"`
		SessionID string   `json:"session_id"`
		ProjectID string   `json:"project_id"`
		Version   int      `json:"version"`
		Changed   []string `json:"changed"`
	}
	wireAck struct {
		Type            string `json:"type"`
		SessionID       string `json:"session_id"`
		ProjectID       string `json:"project_id"`
		MessageID       string `json:"message_id"`
		ClientMessageID string `json:"client_message_id"`
		Seq             int64  `json:"seq"`
		Duplicate       bool   `json:"duplicate"`
	}
)

// encodeEvent returns ev's JSON.
func encodeEvent(ev actors.Event) []byte {
	var v any
	switch {
	case ev.Type == actors.EventAck && ev.Ack != nil:
		a := ev.Ack
		v = wireAck{Type: "ack", SessionID: a.SessionID, ProjectID: a.ProjectID, MessageID: a.MessageID,
			ClientMessageID: a.ClientMessageID, Seq: a.Seq, Duplicate: a.Duplicate}
	case ev.Type == actors.EventDossier && ev.Dossier != nil:
		d := ev.Dossier
		changed := d.Changed
		if changed == nil {
			changed = []string{}
		}
		v = wireDossier{Type: string(ev.Type), SessionID: ev.SessionID, ProjectID: d.ProjectID, Version: d.Version, Changed: changed}
	default:
		v = wireEvent{Type: string(ev.Type), SessionID: ev.SessionID, Seq: ev.Seq, Content: ev.Content,
			Metadata: ev.Metadata, Error: ev.Err, Message: ev.Message}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Plain structs of strings and numbers: this cannot happen.
		panic("transport: encode event: " + err.Error())
	}
	return b
}

// encodeError returns the JSON of an error frame that answers a client
// frame (no seq: it is not part of a session's stream).
func encodeError(sessionID string, e *apiError) []byte {
	b, _ := json.Marshal(wireEvent{Type: "error", SessionID: sessionID,
		Error: &actors.ErrorInfo{Code: e.Code, Message: e.Message}})
	return b
}
