package transport

import (
	"net/http"
	"strings"
)

// cors answers cross-origin requests from the origins in
// Config.CORSOrigins: it echoes an allowed Origin with credentials allowed,
// answers preflight requests itself, and leaves requests from other
// origins without CORS headers (the browser then refuses them). A "*" entry
// allows every origin.
func (s *Server) cors(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	any := false
	for _, o := range s.cfg.CORSOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "*" {
			any = true
		}
		allowed[strings.ToLower(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		ok := any || allowed[strings.ToLower(origin)]
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		h := w.Header()
		h.Add("Vary", "Origin")
		if !ok {
			if preflight {
				writeError(w, &apiError{Status: http.StatusForbidden, Code: "origin_not_allowed",
					Message: "this origin is not in CORS_ORIGINS"})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Expose-Headers", "X-User-ID, Retry-After, ETag")
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-User-ID, Last-Event-ID, If-Match")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
