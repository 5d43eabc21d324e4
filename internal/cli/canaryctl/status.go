package canaryctl

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/client"
	"github.com/canaryd/canaryd/internal/event"
)

func (a *app) statusCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show services, or one service with its builds (--watch: again after every change)",
		Example: `  canaryctl status
  canaryctl status api --watch`,
		Args:              args(cobra.MaximumNArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			if err := a.printStatus(cmd, service); err != nil || !watch {
				return err
			}
			c := a.client()
			err := c.StreamEvents(cmd.Context(), client.StreamQuery{Service: service}, 0, func(ev event.Event) error {
				if a.output == "table" {
					fmt.Fprintf(a.stdout, "\n--- %s  %s %s by %s\n", ev.Time.Local().Format(time.TimeOnly), ev.Type, ev.Build, ev.Actor)
				}
				return a.printStatus(cmd, service)
			})
			if cmd.Context().Err() != nil {
				return nil // interrupted: the normal end of --watch
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again after every change, until interrupted")
	return cmd
}

func (a *app) printStatus(cmd *cobra.Command, service string) error {
	ctx, cancel := a.ctx(cmd)
	defer cancel()
	c := a.client()
	if service == "" {
		svcs, err := c.Services(ctx)
		if err != nil {
			return err
		}
		if a.output == "json" {
			return a.jsonOut(cmd, map[string]any{"services": svcs})
		}
		return printServices(a.stdout, svcs)
	}
	s, err := c.Service(ctx, service)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.jsonOut(cmd, s)
	}
	return printService(a.stdout, s, time.Now())
}

// jsonOut prints v indented, or as one line under --watch/-f so each
// update is one JSON document a line.
func (a *app) jsonOut(cmd *cobra.Command, v any) error {
	if f := cmd.Flags().Lookup("watch"); f != nil && f.Value.String() == "true" {
		return printLine(a.stdout, v)
	}
	return printJSON(a.stdout, v)
}

// completeServices completes a SERVICE argument with the server's
// services, when the server can be reached.
func (a *app) completeServices(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if err := cmd.Root().PersistentPreRunE(cmd, args); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	svcs, err := a.client().Services(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(svcs))
	for _, s := range svcs {
		names = append(names, s.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
