package transport

import (
	"context"
	"net/http"
	"time"
)

// handleHealthz answers while the process serves HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 when the store is reachable, 503 otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.cfg.Logger.Warn("readyz: store unreachable", "err", err)
		writeError(w, errUnavailable("store_unavailable", "the "+s.cfg.Store.Kind()+" store is unreachable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"status":   "ready",
		"store":    s.cfg.Store.Kind(),
		"provider": s.cfg.Provider,
	})
}
