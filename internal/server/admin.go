package server

import (
	"net/http"

	"github.com/canaryd/canaryd/internal/api"
	"github.com/canaryd/canaryd/internal/config"
)

// adminHandler serves the admin listener: health, readiness and metrics.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		cfg := s.config()
		h := s.metrics.Handler()
		if cfg.Admin.MetricsAuth {
			h = api.RequireToken(cfg.Admin.Tokens, h)
		}
		h.ServeHTTP(w, r)
	})
	mux.Handle(api.Prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*s.api.Load()).ServeHTTP(w, r)
	}))
	return mux
}

// setAPI builds the admin API for cfg's tokens; Reload calls it again.
func (s *Server) setAPI(cfg *config.Config) {
	h := api.New(api.Options{Plane: s.plane, Tokens: cfg.Admin.Tokens, Logger: s.log, Done: s.streams, Releases: s.release, Alerts: s.alerts})
	s.api.Store(&h)
}

// readyz answers 200 when every service has a stable build with at least
// one endpoint available, 503 with the reasons otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	t := s.routes.Load()
	var problems []string
	for _, svc := range t.Services() {
		if svc.Stable == nil {
			problems = append(problems, svc.Name+": no stable build")
			continue
		}
		if st := svc.Stable.Endpoints.Status(); st.Available == 0 {
			problems = append(problems, svc.Name+": stable build "+svc.Stable.ID+": "+st.String())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			_, _ = w.Write([]byte(p + "\n"))
		}
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
