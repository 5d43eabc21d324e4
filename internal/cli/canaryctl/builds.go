package canaryctl

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/client"
)

func (a *app) buildsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "builds",
		Short: "List, register, delete builds and set the first stable one",
		Args:  args(cobra.NoArgs),
		RunE:  group,
	}
	cmd.AddCommand(a.buildsListCmd(), a.buildsRegisterCmd(), a.endpointCmd(true), a.endpointCmd(false), a.buildsDeleteCmd(), a.buildsSetStableCmd())
	return cmd
}

func (a *app) buildsListCmd() *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:               "list [SERVICE]",
		Short:             "List builds (deleted ones only with --state deleted)",
		Example:           "  canaryctl builds list api --state deployed,canary",
		Args:              args(cobra.MaximumNArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			f := client.BuildFilter{States: states}
			if len(args) == 1 {
				f.Service = args[0]
			}
			bs, err := a.client().Builds(ctx, f)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.BuildList{Builds: bs})
			}
			return printBuilds(a.stdout, bs, true, time.Now())
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only builds in these states: deployed, canary, stable, deleted")
	return cmd
}

func (a *app) buildsRegisterCmd() *cobra.Command {
	var (
		req    wire.RegisterRequest
		labels []string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "register SERVICE --id ID [--version V] [--endpoint HOST:PORT]...",
		Short: "Register a build and its endpoints (what a build does at start-up); again is harmless",
		Example: `  canaryctl builds register api --id 42 --version 1.2.3 --endpoint 10.0.0.5:8080
  canaryctl builds register api --id 42 --endpoint 10.0.0.6:8080 --ttl 30s --label git=4f2a1c`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.ID == "" {
				return usageError{fmt.Errorf("builds register: --id is required")}
			}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--label %q: want KEY=VALUE", l)}
				}
				if req.Labels == nil {
					req.Labels = map[string]string{}
				}
				req.Labels[k] = v
			}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			b, err := a.client().Register(ctx, args[0], req)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, b)
			}
			fmt.Fprintf(a.stdout, "%s: build %s is registered, state %s, endpoints %s\n", b.Service, withVersion(b.ID, b.Version), b.State, endpointsSummary(b))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ID, "id", "", "build id, e.g. the CI build number (required)")
	f.StringVar(&req.Version, "version", "", "version, e.g. 1.2.3")
	f.StringArrayVar(&req.Endpoints, "endpoint", nil, "HOST:PORT of a replica (repeat for more)")
	f.StringArrayVar(&labels, "label", nil, "KEY=VALUE label (repeat for more)")
	f.StringVar(&req.Changelog, "changelog", "", "what changed, shown in notifications")
	f.DurationVar(&ttl, "ttl", 0, "endpoints drop out of routing this long after their last heartbeat (0: never)")
	return cmd
}

// endpointCmd is builds heartbeat (true) or builds deregister (false):
// what a build's start-up script calls, for builds that cannot call the
// API themselves.
func (a *app) endpointCmd(heartbeat bool) *cobra.Command {
	var endpoint string
	use, short, example := "heartbeat", "Keep an endpoint of a build routable for its TTL (exit 3: register again)",
		"  while sleep 10; do canaryctl builds heartbeat api 42 --endpoint 10.0.0.5:8080 || break; done"
	if !heartbeat {
		use, short, example = "deregister", "Remove an endpoint of a build (a replica shutting down)",
			"  canaryctl builds deregister api 42 --endpoint 10.0.0.5:8080"
	}
	cmd := &cobra.Command{
		Use:               use + " SERVICE ID --endpoint HOST:PORT",
		Short:             short,
		Example:           example,
		Args:              args(cobra.ExactArgs(2)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if endpoint == "" {
				return usageError{fmt.Errorf("builds %s: --endpoint is required", use)}
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			c := a.client()
			var err error
			if heartbeat {
				err = c.Heartbeat(ctx, args[0], args[1], endpoint)
			} else {
				err = c.Deregister(ctx, args[0], args[1], endpoint)
			}
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.Empty{OK: true})
			}
			if !heartbeat {
				fmt.Fprintf(a.stdout, "%s: endpoint %s of build %s removed\n", args[0], endpoint, args[1])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "HOST:PORT of the replica (required)")
	return cmd
}

func (a *app) buildsDeleteCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "delete SERVICE ID",
		Short:             "Delete a deployed build (never the stable or the canary)",
		Args:              args(cobra.ExactArgs(2)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			r, err := a.client().DeleteBuild(ctx, args[0], args[1], reason, a.opts()...)
			return a.result(r, err)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded on the event")
	a.revisionFlag(cmd)
	return cmd
}

func (a *app) buildsSetStableCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "set-stable SERVICE ID",
		Short:             "Make a deployed build the first stable build of a service that has none",
		Args:              args(cobra.ExactArgs(2)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			r, err := a.client().SetStable(ctx, args[0], args[1], reason, a.opts()...)
			return a.result(r, err)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded on the event")
	a.revisionFlag(cmd)
	return cmd
}

// result prints the answer of a lifecycle operation.
func (a *app) result(r wire.Result, err error) error {
	if err != nil {
		return err
	}
	if a.output == "json" {
		return printJSON(a.stdout, r)
	}
	return printResult(a.stdout, r)
}
