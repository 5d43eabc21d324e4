package store

import (
	"math"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		bad  bool
	}{
		{"service ok", Service{Name: "api", Traffic: 100}.Validate(), false},
		{"service no name", Service{}.Validate(), true},
		{"service traffic 101", Service{Name: "api", Traffic: 101}.Validate(), true},
		{"service traffic negative", Service{Name: "api", Traffic: -1}.Validate(), true},
		{"service traffic NaN", Service{Name: "api", Traffic: math.NaN()}.Validate(), true},
		{"service negative window", Service{Name: "api", UsedWindows: []Window{{Start: -1}}}.Validate(), true},
		{"build ok", Build{Service: "api", ID: "1", State: StateDeployed, Endpoints: []Endpoint{{Addr: "a:1"}, {Addr: "b:1"}}}.Validate(), false},
		{"build no state", Build{Service: "api", ID: "1"}.Validate(), true},
		{"build duplicate endpoint", Build{Service: "api", ID: "1", State: StateCanary, Endpoints: []Endpoint{{Addr: "a:1"}, {Addr: "a:1"}}}.Validate(), true},
		{"build negative ttl", Build{Service: "api", ID: "1", State: StateCanary, Endpoints: []Endpoint{{Addr: "a:1", TTL: -1}}}.Validate(), true},
		{"release ok", Release{ID: "r", Service: "api", Status: ReleaseRunning, State: []byte(`{}`)}.Validate(), false},
		{"release bad state", Release{ID: "r", Service: "api", Status: ReleaseRunning, State: []byte(`{`)}.Validate(), true},
		{"policy empty spec", Policy{Service: "api"}.Validate(), true},
		{"channel ok", AlertChannel{ID: "c", Kind: "slack"}.Validate(), false},
		{"channel bad filter", AlertChannel{ID: "c", Kind: "slack", Filter: []byte("x")}.Validate(), true},
	}
	for _, tt := range tests {
		if (tt.err != nil) != tt.bad {
			t.Errorf("%s: Validate() = %v, want error: %v", tt.name, tt.err, tt.bad)
		}
	}
}

func TestEndpointAlive(t *testing.T) {
	hb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := Endpoint{Addr: "a:1", LastHeartbeat: hb, TTL: 10 * time.Second}
	tests := []struct {
		at   time.Time
		want bool
	}{
		{hb, true},
		{hb.Add(10*time.Second - 1), true},
		{hb.Add(10 * time.Second), false},
	}
	for _, tt := range tests {
		if got := e.Alive(tt.at); got != tt.want {
			t.Errorf("Alive(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if !(Endpoint{Addr: "static:1"}).Alive(hb.Add(1000 * time.Hour)) {
		t.Error("a static endpoint (TTL 0) expired")
	}
}

func TestLeaseHeldBy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Lease{Name: "c", Holder: "a", ExpiresAt: now.Add(time.Second)}
	if !l.HeldBy("a", now) || l.HeldBy("b", now) || l.HeldBy("a", now.Add(time.Second)) || (Lease{}).HeldBy("", now) {
		t.Errorf("HeldBy is wrong for %+v", l)
	}
}

func TestStates(t *testing.T) {
	for _, s := range []BuildState{StateDeployed, StateCanary, StateStable, StateDeleted} {
		if !s.Valid() {
			t.Errorf("%q not valid", s)
		}
	}
	if BuildState("Stable").Valid() {
		t.Error("states are case-sensitive")
	}
	if !ReleaseRunning.Active() || !ReleasePaused.Active() || ReleasePromoted.Active() {
		t.Error("Active is wrong")
	}
}
