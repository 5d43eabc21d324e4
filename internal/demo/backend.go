// Package demo runs a canary release end to end on one machine: two demo
// builds of a small app, a gateway in front of them, a synthetic population
// of users, and a release that moves traffic step by step.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// App is one build of the demo application. It answers JSON and fails or
// slows down on purpose as configured.
type App struct {
	Build, Version string
	ErrorRate      float64       // share of requests answered 500
	Latency        time.Duration // added to every request
	ln             net.Listener
	srv            *http.Server
}

// Start listens on addr ("127.0.0.1:0" for any free port).
func (a *App) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	a.ln = ln
	a.srv = &http.Server{Handler: http.HandlerFunc(a.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return nil
}

// Addr returns the listening address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Close stops the app.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return a.srv.Shutdown(ctx)
}

func (a *App) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if a.Latency > 0 {
		time.Sleep(a.Latency)
	}
	w.Header().Set("Content-Type", "application/json")
	if a.ErrorRate > 0 && rand.Float64() < a.ErrorRate {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "demo failure", "build": a.Build})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"build": a.Build, "version": a.Version, "user": r.Header.Get("X-User-ID")})
}
