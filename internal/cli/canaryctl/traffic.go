package canaryctl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) trafficCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "traffic SERVICE PERCENT",
		Short: "Move the canary's share of users (raising adds users, lowering removes them)",
		Example: `  canaryctl traffic api 30
  canaryctl traffic api 0 --reason "holding while we look at the logs"`,
		Args:              args(cobra.ExactArgs(2)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePercent("PERCENT", args[1])
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			r, err := a.client().SetTraffic(ctx, args[0], p, reason, a.opts()...)
			return a.result(r, err)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded on the event")
	a.revisionFlag(cmd)
	return cmd
}

// parsePercent reads "30" or "30%" or "0.5"; out of 0..100 is a usage
// error, caught before asking the server.
func parsePercent(name, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || !(v >= 0 && v <= 100) {
		return 0, usageError{fmt.Errorf("%s %q: want a percentage from 0 to 100", name, s)}
	}
	return v, nil
}
