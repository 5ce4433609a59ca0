package llmtest

import (
	"strconv"
	"strings"
	"time"
)

// Stamp is the text of a stamped token (see Response.Stamp): "w", the send
// time in Unix nanoseconds, and a space, e.g. "w1764612345678901234 ".
func Stamp(t time.Time) string {
	b := make([]byte, 0, 22)
	b = append(b, 'w')
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	return string(append(b, ' '))
}

// ParseStamps returns the send times (Unix nanoseconds) of the stamped
// tokens in content, in order, appended to dst. Text that is not a stamp
// is skipped, so a relay that joins or splits nothing but whole tokens
// keeps every stamp readable.
func ParseStamps(dst []int64, content string) []int64 {
	for content != "" {
		i := strings.IndexByte(content, 'w')
		if i < 0 {
			return dst
		}
		content = content[i+1:]
		j := 0
		for j < len(content) && content[j] >= '0' && content[j] <= '9' {
			j++
		}
		if j > 0 && j < len(content) && content[j] == ' ' {
			if n, err := strconv.ParseInt(content[:j], 10, 64); err == nil {
				dst = append(dst, n)
			}
		}
		content = content[j:]
	}
	return dst
}
