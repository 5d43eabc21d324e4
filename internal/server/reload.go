package server

import (
	"reflect"
	"strings"

	"github.com/canaryd/canaryd/internal/config"
)

// appliedProxyFields are the proxy fields a reload applies; the others are
// read once when the listeners and the upstream pools are built.
var appliedProxyFields = map[string]bool{"trusted_proxies": true, "shutdown_timeout": true}

// restartOnly names the fields that differ between old and next but take
// effect only after a restart (docs/configuration.md, "Reloading"), so a
// reload can say so instead of ignoring them silently.
func restartOnly(old, next *config.Config) []string {
	var out []string
	if !reflect.DeepEqual(old.TLS, next.TLS) {
		out = append(out, "tls")
	}
	if old.H2C != next.H2C {
		out = append(out, "h2c")
	}
	if old.Store != next.Store {
		out = append(out, "store")
	}
	if old.AccessLog != next.AccessLog {
		out = append(out, "access_log")
	}
	ov, nv := reflect.ValueOf(old.Proxy), reflect.ValueOf(next.Proxy)
	for i := range ov.NumField() {
		name, _, _ := strings.Cut(ov.Type().Field(i).Tag.Get("yaml"), ",")
		if !appliedProxyFields[name] && !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, "proxy."+name)
		}
	}
	return out
}
