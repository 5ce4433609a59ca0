package actors

import "sync"

// workers owns every goroutine the actors start for slow work (store calls,
// model streams). Go refuses new work once Close began, and Wait returns when
// all started goroutines have returned.
type workers struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

// Go runs f in a new goroutine unless Close was called; it reports whether
// f was started.
func (w *workers) Go(f func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		f()
	}()
	return true
}

// Close stops Go from starting new goroutines and waits for the running ones.
func (w *workers) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
}
