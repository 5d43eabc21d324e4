package canaryctl

import (
	"context"

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
	return a.reasonCmd("promote", "Make the canary the stable build (the old stable goes back to deployed)",
		"  canaryctl promote api", (*client.Client).Promote)
}
