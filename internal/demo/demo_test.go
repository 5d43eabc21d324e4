package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

func run(t *testing.T, o Options) (Result, string) {
	t.Helper()
	o.Listen, o.Admin = "127.0.0.1:0", "127.0.0.1:0"
	o.Users, o.Think, o.Step, o.Timeout = 1000, 500*time.Millisecond, time.Second, 2*time.Minute
	var out bytes.Buffer
	res, err := Run(context.Background(), o, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	return res, out.String()
}

func TestDemoPromotesAHealthyCanary(t *testing.T) {
	res, out := run(t, Options{})
	if res.Outcome != store.ReleasePromoted {
		t.Fatalf("outcome %q, want promoted\n%s", res.Outcome, out)
	}
	var steps []string
	for _, ev := range res.Events {
		if ev.Type == event.TrafficChanged {
			steps = append(steps, ev.Details["traffic"])
		}
	}
	if strings.Join(steps, " ") != "10% 30% 50% 75% 100%" {
		t.Fatalf("steps %v\n%s", steps, out)
	}
	for _, want := range []string{"token ", "Outcome: PROMOTED", "release.promoted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestDemoRollsBackAFaultyCanary(t *testing.T) {
	res, out := run(t, Options{Faulty: true})
	if res.Outcome != store.ReleaseRolledBack {
		t.Fatalf("outcome %q, want rolled_back\n%s", res.Outcome, out)
	}
	if res.Duration > 60*time.Second {
		t.Fatalf("rollback took %s", res.Duration)
	}
	if !strings.Contains(out, "rolled back") || !strings.Contains(out, "judge:") {
		t.Fatalf("no rollback alert in output:\n%s", out)
	}
}

func TestDemoReportsATakenPort(t *testing.T) {
	o := Options{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	o.defaults()
	var out bytes.Buffer
	// Hold a port, then ask the demo to use it.
	app := &App{}
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	o.Listen = app.Addr()
	_, err := Run(context.Background(), o, &out)
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("error = %v", err)
	}
}
