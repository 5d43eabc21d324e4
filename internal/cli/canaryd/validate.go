package canaryd

import (
	"fmt"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check a config file and report every problem (like nginx -t)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usageError{fmt.Errorf("--config is required")}
			}
			c, err := config.Load(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d services)\n", path, len(c.Services))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML)")
	return cmd
}
