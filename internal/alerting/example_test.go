package alerting_test

import (
	"context"
	"log/slog"

	"github.com/canaryd/canaryd/internal/alerting"
	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/store"
)

// Example shows how the server wires alerting: the store, the file's
// alerts section, and the data plane's metrics for the monitor.
func Example() {
	var (
		ctx context.Context
		cfg *config.Config
		st  store.Store
		reg *metrics.Registry
		log *slog.Logger
	)
	svc, err := alerting.New(ctx, alerting.Options{
		Store:  st,
		Config: &cfg.Alerts,
		Logger: log.With("component", "alerts"),
		Metrics: func(service, build string) (alerting.Totals, bool) {
			bm := reg.Lookup(service, build)
			if bm == nil {
				return alerting.Totals{}, false
			}
			t := bm.Totals()
			return alerting.Totals{Requests: t.Requests(), Errors: t.Errors(), LatencySum: t.LatencySum}, true
		},
	})
	if err != nil {
		return
	}
	go svc.Run(ctx) // returns nil once ctx ends
}
