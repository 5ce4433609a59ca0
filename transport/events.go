package transport

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

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

// encodeEvent returns ev's JSON, encoded once per event when the actor
// shared a memo among its subscribers (ev.Wire). The returned bytes may be
// shared: never modify them.
func encodeEvent(ev actors.Event) []byte {
	if ev.Wire != nil {
		return ev.Wire.Bytes(func() []byte { return encodeEventNow(ev) })
	}
	return encodeEventNow(ev)
}

// encodeEventNow encodes ev. A text event, one per token, is appended by
// hand (the same bytes encoding/json writes, at a fraction of the cost);
// the others go through encoding/json.
func encodeEventNow(ev actors.Event) []byte {
	if ev.Type == actors.EventText && ev.SessionID != "" && ev.Seq != 0 && ev.Content != "" &&
		ev.Metadata == nil && ev.Err == nil && ev.Message == nil && ev.Dossier == nil {
		b := make([]byte, 0, 56+len(ev.SessionID)+len(ev.Content)+len(ev.Content)/8)
		b = append(b, `{"type":"text","session_id":`...)
		b = appendJSONString(b, ev.SessionID)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, ev.Seq, 10)
		b = append(b, `,"content":`...)
		b = appendJSONString(b, ev.Content)
		return append(b, '}')
	}
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

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it: HTML-safe (<, > and & escaped), U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
