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

// handleReadyz answers 200 when the store and every configured dependency
// are reachable, 503 (naming the first that is not) otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	deps := append([]Dependency{{Name: s.cfg.Store.Kind(), Ping: s.cfg.Store.Ping}}, s.cfg.Dependencies...)
	status := map[string]string{"status": "ready", "store": s.cfg.Store.Kind(), "provider": s.cfg.Provider}
	for _, d := range deps {
		if err := d.Ping(ctx); err != nil {
			s.cfg.Logger.Warn("readyz: dependency unreachable", "dependency", d.Name, "err", err)
			writeError(w, errUnavailable(d.Name+"_unavailable", d.Name+" is unreachable"))
			return
		}
		status[d.Name] = "ok"
	}
	writeJSON(w, http.StatusOK, status)
}
