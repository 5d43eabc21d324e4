package canaryctl

import (
	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/client"
)

// pauseCmd is pause (true) or resume (false).
func (a *app) pauseCmd(pause bool) *cobra.Command {
	if pause {
		return a.reasonCmd("pause", "Hold the release controller's automatic steps for a service",
			`  canaryctl pause api --reason "investigating"`, (*client.Client).Pause)
	}
	return a.reasonCmd("resume", "Let the release controller's automatic steps go on",
		"  canaryctl resume api", (*client.Client).Resume)
}
