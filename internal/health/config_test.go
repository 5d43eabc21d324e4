package health

import (
	"testing"
	"time"
)

func TestActiveValidate(t *testing.T) {
	tests := []struct {
		name string
		in   Active
		want string // "" = valid
	}{
		{"defaults", Active{Path: "/health"}, ""},
		{"path with query", Active{Path: "/health?deep=1", Interval: time.Second, Timeout: time.Second}, ""},
		{"no path", Active{}, `path "": must start with /`},
		{"relative path", Active{Path: "health"}, `path "health": must start with /`},
		{"timeout over interval", Active{Path: "/", Interval: time.Second}, "timeout 2s: longer than the interval 1s"},
		{"negative", Active{Path: "/", Interval: -time.Second, Timeout: -time.Second, HealthyThreshold: -1, UnhealthyThreshold: -2},
			"interval -1s: must be positive\ntimeout -1s: must be positive\nhealthy_threshold -1: must be at least 1\nunhealthy_threshold -2: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
	d := Active{Path: "/h"}.WithDefaults()
	if d != (Active{Path: "/h", Interval: DefaultInterval, Timeout: DefaultTimeout,
		HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThreshold}) {
		t.Fatalf("WithDefaults() = %+v", d)
	}
}
