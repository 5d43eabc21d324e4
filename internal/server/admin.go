package server

import (
	"net/http"
)

// adminHandler serves the admin listener: health, readiness and metrics.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
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
