package llm

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
)

// attemptRecord is what the HTTP layer saw during one streaming attempt,
// which go-openai does not expose: the status and headers (Retry-After) and
// whether the body carried the [DONE] terminator.
type attemptRecord struct {
	called  bool        // a request reached the HTTP client
	status  int         // response status, 0 when there was no response
	header  http.Header // response headers
	opened  bool        // go-openai accepted the response as a stream
	sawDone atomic.Bool // a "data: [DONE]" line was read from the body
}

// recordingDoer is the go-openai HTTPDoer for one attempt.
type recordingDoer struct {
	client *http.Client
	rec    *attemptRecord
}

func (d *recordingDoer) Do(req *http.Request) (*http.Response, error) {
	d.rec.called = true
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	d.rec.status = resp.StatusCode
	d.rec.header = resp.Header
	resp.Body = &doneSniffer{body: resp.Body, done: &d.rec.sawDone}
	return resp, nil
}

// maxSniffLine bounds how much of a line doneSniffer keeps; a [DONE] line
// is short, longer lines are data and are skipped.
const maxSniffLine = 64

// doneSniffer passes a server-sent-events body through unchanged and notes
// when it carries the "data: [DONE]" line.
type doneSniffer struct {
	body     io.ReadCloser
	done     *atomic.Bool
	line     []byte
	overflow bool
}

func (s *doneSniffer) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	for _, c := range p[:n] {
		if c == '\n' {
			if !s.overflow && isDoneLine(s.line) {
				s.done.Store(true)
			}
			s.line, s.overflow = s.line[:0], false
			continue
		}
		if s.overflow {
			continue
		}
		if len(s.line) >= maxSniffLine {
			s.overflow = true
			continue
		}
		s.line = append(s.line, c)
	}
	if err == io.EOF && !s.overflow && isDoneLine(s.line) {
		s.done.Store(true) // a final line without its newline
	}
	return n, err
}

func (s *doneSniffer) Close() error { return s.body.Close() }

// isDoneLine matches the SSE terminator the way go-openai does: "data:",
// optional spaces, "[DONE]", surrounding whitespace ignored.
func isDoneLine(line []byte) bool {
	line = bytes.TrimSpace(line)
	rest, ok := bytes.CutPrefix(line, []byte("data:"))
	return ok && string(bytes.TrimSpace(rest)) == "[DONE]"
}
