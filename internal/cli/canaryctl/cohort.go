package canaryctl

import (
	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/client"
)

func (a *app) cohortCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cohort",
		Short: "Pick fresh users for the next canary, or forget which users earlier canaries had",
		Args:  args(cobra.NoArgs),
		RunE:  group,
	}
	cmd.AddCommand(
		a.reasonCmd("fresh", "Move the cohort window to users no earlier canary had (no canary may take traffic)",
			"  canaryctl cohort fresh api", (*client.Client).FreshCohort),
		a.reasonCmd("reset", "Forget earlier canaries' windows so fresh cohorts may reuse every user",
			"  canaryctl cohort reset api", (*client.Client).ResetCohorts),
	)
	return cmd
}
