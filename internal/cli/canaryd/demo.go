package canaryd

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/canaryd/canaryd/internal/demo"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/spf13/cobra"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a canary release end to end on this machine: gateway, two demo builds, synthetic users",
		Long: `demo starts the gateway on an embedded store in a temporary directory, a stable and a
canary build of a small app, and a population of synthetic users, then releases the canary
in steps (5 → 10 → 30 → 50 → 75 → 100 %) while the judge compares it with stable. A healthy
canary is promoted; with --faulty it is rolled back automatically. It ends by itself (or
runs on with --forever) and leaves nothing behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := demo.Run(ctx, o, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			want := store.ReleasePromoted
			if o.Faulty || o.CanaryErrorRate > 0 || o.CanaryLatency > 0 {
				want = store.ReleaseRolledBack
			}
			if res.Outcome != want {
				return &outcomeError{got: string(res.Outcome), want: string(want)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "gateway address")
	f.StringVar(&o.Admin, "admin", "127.0.0.1:8081", "admin API address")
	f.BoolVar(&o.Faulty, "faulty", false, "make the canary fail (15 % extra errors): it must be rolled back")
	f.Float64Var(&o.CanaryErrorRate, "canary-error-rate", 0, "share of canary requests that fail (0..1)")
	f.DurationVar(&o.CanaryLatency, "canary-latency", 0, "latency added to every canary request")
	f.IntVar(&o.Users, "users", 2000, "synthetic users")
	f.DurationVar(&o.Step, "step", 0, "bake time per step (default 4s)")
	f.BoolVar(&o.Forever, "forever", false, "keep serving after the release ends")
	return cmd
}

type outcomeError struct{ got, want string }

func (e *outcomeError) Error() string {
	return "demo: the release ended " + e.got + ", expected " + e.want
}
