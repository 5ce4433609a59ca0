package transport

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/storyd/storyd/actors"
)

// maxSSEBatch bounds how many queued events one SSE write carries.
const maxSSEBatch = 256

// streamSSE writes the events of q to w until the subscription ends, the
// client leaves or the server closes.
func (s *Server) streamSSE(w http.ResponseWriter, r *http.Request, sessionID string, q *queue) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := s.flush(rc); err != nil {
		s.cfg.Sessions.Unsubscribe(sessionID, q)
		return
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	var buf bytes.Buffer
	write := func(evs []actors.Event) bool {
		buf.Reset()
		for _, ev := range evs {
			if ev.Type != actors.EventAck { // SSE answers the chat request itself
				writeSSE(&buf, ev)
			}
		}
		if buf.Len() == 0 {
			return true
		}
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		return s.flush(rc) == nil
	}
	var evs []actors.Event
	for {
		var ok bool
		if r.Context().Err() != nil || s.closing.Err() != nil {
			s.cfg.Sessions.Unsubscribe(sessionID, q)
			return
		}
		if evs, ok = q.Next(evs[:0]); ok {
			// What else is queued goes out in the same write and flush.
			for more := true; more && len(evs) < maxSSEBatch; {
				evs, more = q.Next(evs)
			}
			if !write(evs) {
				s.cfg.Sessions.Unsubscribe(sessionID, q)
				return
			}
			if cap(evs) > shrinkAbove {
				evs = nil // do not keep a burst's buffer for the stream's life
			}
			continue
		}
		select {
		case <-q.Ready():
		case <-q.Dropped():
			for evs, ok = q.Next(evs[:0]); ok; evs, ok = q.Next(evs[:0]) {
				if !write(evs) {
					return
				}
			}
			if err := q.Err(); err != nil {
				s.cfg.Logger.Info("stream dropped", "session_id", sessionID, "err", err)
				s.endSSE(w, rc, sessionID, err)
			}
			return
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil || s.flush(rc) != nil {
				s.cfg.Sessions.Unsubscribe(sessionID, q)
				return
			}
		case <-r.Context().Done():
			s.cfg.Sessions.Unsubscribe(sessionID, q)
			return
		case <-s.closing.Done():
			s.cfg.Sessions.Unsubscribe(sessionID, q)
			return
		}
	}
}

// endSSE tells the client why its stream ends early: an error event, then
// done. Neither has an id line, so a reconnecting EventSource resumes after
// the last real event.
func (s *Server) endSSE(w http.ResponseWriter, rc *http.ResponseController, sessionID string, err error) {
	e := &apiError{Code: "session_closed", Message: "the session stopped; reconnect to resume"}
	if errors.Is(err, actors.ErrSlowSubscriber) {
		e = &apiError{Code: "slow_consumer", Message: "the stream fell too far behind; reconnect with Last-Event-ID to resume"}
	}
	var buf bytes.Buffer
	buf.WriteString("data: ")
	buf.Write(encodeError(sessionID, e))
	buf.WriteString("\n\ndata: ")
	buf.WriteString(`{"type":"done","session_id":"` + sessionID + `"}`)
	buf.WriteString("\n\n")
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = w.Write(buf.Bytes())
	_ = rc.Flush()
}

func (s *Server) flush(rc *http.ResponseController) error {
	if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return rc.Flush()
}

// writeSSE appends ev as one SSE event: an id line with its seq and a data
// line with its JSON.
func writeSSE(buf *bytes.Buffer, ev actors.Event) {
	if ev.Seq > 0 { // a dossier event is not part of the session's stream
		buf.WriteString("id: ")
		buf.WriteString(strconv.FormatInt(ev.Seq, 10))
		buf.WriteString("\n")
	}
	buf.WriteString("data: ")
	buf.Write(encodeEvent(ev))
	buf.WriteString("\n\n")
}
