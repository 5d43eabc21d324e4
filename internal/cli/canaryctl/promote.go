package canaryctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/client"
)

// reasonCmd builds a command SERVICE [--reason] that calls one operation.
func (a *app) reasonCmd(use, short, example string, do func(c *client.Client, ctx context.Context, service, reason string, opts ...client.Option) (wire.Result, error)) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               use + " SERVICE",
		Short:             short,
		Example:           example,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			r, err := do(a.client(), ctx, args[0], reason, a.opts()...)
			return a.result(r, err)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded on the event")
	a.revisionFlag(cmd)
	return cmd
}

func (a *app) promoteCmd() *cobra.Command {
	var force bool
	cmd := a.reasonCmd("promote", "Make the canary the stable build (the old stable goes back to deployed); --force skips the remaining analysis",
		`  canaryctl promote api
  canaryctl promote api --force --reason "hotfix for the outage, judged by hand"`,
		func(c *client.Client, ctx context.Context, service, reason string, opts ...client.Option) (wire.Result, error) {
			if force {
				return c.ForcePromote(ctx, service, reason, opts...)
			}
			return c.Promote(ctx, service, reason, opts...)
		})
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if r, _ := c.Flags().GetString("reason"); force && strings.TrimSpace(r) == "" {
			return usageError{fmt.Errorf("promote --force: --reason is required")}
		}
		return run(c, args)
	}
	cmd.Flags().BoolVar(&force, "force", false, "promote while the release is still under analysis, skipping the rest of it (needs --reason)")
	return cmd
}
