package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/postgres"
)

// replica runs a gateway from src over the PostgreSQL database dsn, as one
// replica of several.
func replica(t *testing.T, src, dsn string) (*Server, string) {
	t.Helper()
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, st, src)
}

// Two replicas share PostgreSQL; every request goes to the replica that
// does not hold the controller lease. The controller still sees the faulty
// canary — through what that replica publishes — and rolls it back.
func TestReplicaTrafficReachesTheLeader(t *testing.T) {
	dsn := pg.Database(t)
	src := fmt.Sprintf(releaseConfig, addr(flaky(t, "stable", 0.002)), addr(flaky(t, "canary", 0.3)))
	a, urlA := replica(t, src, dsn)
	b, urlB := replica(t, src, dsn)

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
	waitBuildState(t, a, "2", store.StateDeployed, 30*time.Second) // rolled back by the leader
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
