// Package canaryd holds the commands of the canaryd server binary, one file
// per command.
package canaryd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Run executes the command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 for a usage error.
func Run(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "canaryd",
		Short:         "Progressive-delivery gateway: split users between stable and canary builds, judge, promote or roll back",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(), newValidateCmd(), newVersionCmd(), newDemoCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "canaryd:", err)
		if isUsage(err) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func isUsage(err error) bool {
	_, ok := err.(usageError)
	return ok
}
