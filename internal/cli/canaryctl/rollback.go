package canaryctl

import (
	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/client"
)

func (a *app) rollbackCmd() *cobra.Command {
	return a.reasonCmd("rollback", "Send every user back to stable: traffic 0, the canary back to deployed",
		`  canaryctl rollback api --reason "p99 doubled"`, (*client.Client).Rollback)
}
