package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/postgres"
)

// startOn runs a gateway from src over the PostgreSQL database dsn, as one
// replica of several.
func startOn(t *testing.T, src, dsn string) (*Server, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{Plane: control.New(st, control.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		st.Close()
	})
	return srv, "http://" + srv.DataAddr()
}

// Two replicas share PostgreSQL; every request goes to the replica that
// does not hold the controller lease. The controller still sees the faulty
// canary — through what that replica publishes — and rolls it back.
func TestReplicaTrafficReachesTheLeader(t *testing.T) {
	dsn := pg.Database(t)
	src := fmt.Sprintf(releaseConfig, addr(flaky(t, "stable", 0.002)), addr(flaky(t, "canary", 0.3)))
	a, urlA := startOn(t, src, dsn)
	b, urlB := startOn(t, src, dsn)

	var follower string
	waitFor(t, func() bool {
		_, okA := a.Releases().Status("api")
		_, okB := b.Releases().Status("api")
		switch {
		case okA && !okB:
			follower = urlB
		case okB && !okA:
			follower = urlA
		}
		return follower != ""
	})
	stop := make(chan struct{})
	wg := hammer(follower, 200, 40000, time.Millisecond, stop, func(int, string, error) {})
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for stateOf(t, a, "2") != store.StateDeployed {
		if time.Now().After(deadline) {
			t.Fatalf("faulty canary on the follower not rolled back within 30 s; events: %+v", events(t, a))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rb *event.Event
	for _, ev := range events(t, a) {
		if ev.Type == event.RolledBack {
			rb = &ev
		}
	}
	if rb == nil || rb.Actor != "controller" || !strings.Contains(rb.Reason, "judge:") {
		t.Fatalf("rollback event = %+v", rb)
	}
}
