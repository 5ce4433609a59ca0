package actors

// eventRing keeps the most recent events of a session so that a subscriber
// can be brought up to date. It knows the highest seq it has forgotten
// (evicted, or never held because it predates the actor's activation), so
// it can tell exactly whether it still holds every event after a given seq.
//
// It also knows the gap (gapFrom, gapTo] between the last seq the store
// holds and the first seq of this activation: seqs there were reserved by an
// earlier activation and either never used or used by events that were
// never stored (the server stopped mid-reply). A subscriber that saw some of
// them cannot be brought up to date.
//
// Its buffer grows on demand up to its capacity, so an idle session (most
// of those a node holds) costs a few events, not a full ring.
type eventRing struct {
	buf            []Event
	limit          int // capacity: the most events held
	start          int // index of the oldest event
	n              int // number of events held
	forgotten      int64
	gapFrom, gapTo int64
}

func newEventRing(capacity int, stored, from int64) *eventRing {
	if capacity < 1 {
		capacity = 1
	}
	return &eventRing{limit: capacity, forgotten: stored, gapFrom: stored, gapTo: from}
}

// minRingGrowth is the first buffer size of a ring that holds anything.
const minRingGrowth = 8

// add appends ev, evicting the oldest event when full.
func (r *eventRing) add(ev Event) {
	if r.n == len(r.buf) && len(r.buf) < r.limit {
		grown := make([]Event, min(r.limit, max(minRingGrowth, 2*len(r.buf))))
		for i := 0; i < r.n; i++ {
			grown[i] = r.buf[(r.start+i)%len(r.buf)]
		}
		r.buf, r.start = grown, 0
	}
	if r.n == len(r.buf) {
		r.forgotten = r.buf[r.start].Seq
		r.buf[r.start] = Event{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
	r.buf[(r.start+r.n)%len(r.buf)] = ev
	r.n++
}

// since returns the held events with Seq > after, oldest first. ok is false
// when some event after `after` may have been forgotten.
func (r *eventRing) since(after int64) (evs []Event, ok bool) {
	if after < r.forgotten || after > r.gapFrom && after <= r.gapTo {
		return nil, false
	}
	for i := 0; i < r.n; i++ {
		ev := r.buf[(r.start+i)%len(r.buf)]
		if ev.Seq > after {
			evs = append(evs, ev)
		}
	}
	return evs, true
}

// turn returns the events of one turn, oldest first, when the ring still
// holds every event after the turn's user message (seq userSeq); complete
// says whether the turn's done event is among them.
func (r *eventRing) turn(turnID string, userSeq int64) (evs []Event, complete, ok bool) {
	all, ok := r.since(userSeq)
	if !ok {
		return nil, false, false
	}
	for _, ev := range all {
		if ev.TurnID == turnID {
			evs = append(evs, ev)
			if ev.Type == EventDone {
				complete = true
			}
		}
	}
	return evs, complete, true
}
