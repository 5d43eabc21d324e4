package canaryctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/client"
)

func (a *app) abortCmd() *cobra.Command {
	cmd := a.reasonCmd("abort", "Abort the release: roll the canary back and close the release as aborted (--reason required)",
		`  canaryctl abort api --reason "wrong config shipped"`, (*client.Client).Abort)
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if r, _ := c.Flags().GetString("reason"); strings.TrimSpace(r) == "" {
			return usageError{fmt.Errorf("abort: --reason is required")}
		}
		return run(c, args)
	}
	return cmd
}

func (a *app) approveCmd() *cobra.Command {
	return a.reasonCmd("approve", "Approve the manual gate the release is held at, so it goes on",
		`  canaryctl approve api --reason "dashboards look fine"`, (*client.Client).Approve)
}
