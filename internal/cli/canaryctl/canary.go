package canaryctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
)

func (a *app) canaryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Start a canary",
		Args:  args(cobra.NoArgs),
		RunE:  group,
	}
	cmd.AddCommand(a.canaryStartCmd())
	return cmd
}

func (a *app) canaryStartCmd() *cobra.Command {
	var (
		req     wire.StartCanaryRequest
		traffic string
	)
	cmd := &cobra.Command{
		Use:   "start SERVICE --build ID [--traffic P] [--replace] [--fresh-cohort]",
		Short: "Make a deployed build the canary, at P percent of users (default 0)",
		Example: `  canaryctl canary start api --build 42 --traffic 10
  canaryctl canary start api --build 43 --traffic 5 --replace --fresh-cohort --reason "fix for #812"`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Build == "" {
				return usageError{fmt.Errorf("canary start: --build is required")}
			}
			if traffic != "" {
				p, err := parsePercent("--traffic", traffic)
				if err != nil {
					return err
				}
				req.Traffic = p
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			r, err := a.client().StartCanary(ctx, args[0], req, a.opts()...)
			return a.result(r, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Build, "build", "", "id of the deployed build to start (required)")
	f.StringVar(&traffic, "traffic", "", "first share of users in percent, 0 to 100")
	f.BoolVar(&req.Replace, "replace", false, "replace the running canary (it goes back to deployed)")
	f.BoolVar(&req.FreshCohort, "fresh-cohort", false, "pick users no earlier canary of the service had")
	f.StringVar(&req.Reason, "reason", "", "why, recorded on the event")
	a.revisionFlag(cmd)
	return cmd
}
