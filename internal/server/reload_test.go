package server

import (
	"slices"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
)

func TestRestartOnly(t *testing.T) {
	old := &config.Config{Store: "sqlite://a.db"}
	old.Proxy.DialTimeout = config.Duration(5 * time.Second)
	same := *old
	if got := restartOnly(old, &same); len(got) != 0 {
		t.Fatalf("no change: restartOnly = %v", got)
	}
	next := *old
	next.Store = "sqlite://b.db"
	next.H2C = true
	next.Proxy.DialTimeout = config.Duration(time.Second)
	next.Proxy.MoveRate = 10
	next.Proxy.ShutdownTimeout = config.Duration(time.Minute) // applied on reload: not listed
	want := []string{"h2c", "store", "proxy.dial_timeout", "proxy.move_rate"}
	if got := restartOnly(old, &next); !slices.Equal(got, want) {
		t.Errorf("restartOnly = %v, want %v", got, want)
	}
}
