package canaryctl

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/client"
	"github.com/canaryd/canaryd/internal/event"
)

func (a *app) eventsCmd() *cobra.Command {
	var (
		follow bool
		types  []string
		build  string
		since  string
		limit  int
		cols   columns
	)
	cmd := &cobra.Command{
		Use:   "events [SERVICE]",
		Short: "Show the latest events, oldest first (-f: then follow new ones until interrupted)",
		Long: `Show the latest events of the audit log, oldest first: who changed what, when and why.

With -f it keeps printing new events as they happen, until interrupted. With
-o json and -f, each event is one JSON object a line.`,
		Example: `  canaryctl events api --limit 50
  canaryctl events --type release.rolled_back,release.promoted --since 24h
  canaryctl events api -f -o json`,
		Args:              args(cobra.MaximumNArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: want 1 to 1000", limit)}
			}
			q := client.EventQuery{Types: types, Build: build, Desc: true, Limit: limit}
			if len(args) == 1 {
				q.Service = args[0]
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			ctx, cancel := a.ctx(cmd)
			page, err := a.client().Events(ctx, q)
			cancel()
			if err != nil {
				return err
			}
			evs := page.Events
			slices.Reverse(evs) // newest N, shown oldest first
			switch {
			case a.output == "json" && follow:
				for _, ev := range evs {
					if err := printLine(a.stdout, ev); err != nil {
						return err
					}
				}
			case a.output == "json":
				return printJSON(a.stdout, wire.EventPage{Events: evs})
			default:
				rows := [][]string{eventHead}
				for _, ev := range evs {
					rows = append(rows, eventRow(ev))
				}
				if !follow {
					return table(a.stdout, rows)
				}
				// Followed rows arrive one by one: fix the column widths now
				// (wide enough for any event type) so they line up.
				cols = newColumns(rows, []int{4, 19, 7, 19, 5, 5})
				for _, r := range rows {
					cols.print(a.stdout, r)
				}
			}
			if !follow {
				return nil
			}
			var after int64
			if n := len(evs); n > 0 {
				after = evs[n-1].ID
			}
			err = a.client().StreamEvents(cmd.Context(), client.StreamQuery{Service: q.Service, Build: build, Types: types, AfterID: after}, 0,
				func(ev event.Event) error {
					if a.output == "json" {
						return printLine(a.stdout, ev)
					}
					cols.print(a.stdout, eventRow(ev))
					return nil
				})
			if cmd.Context().Err() != nil {
				return nil // interrupted: the normal end of -f
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	f.StringSliceVar(&types, "type", nil, "only these event types, e.g. release.promoted,release.rolled_back")
	f.StringVar(&build, "build", "", "only events about this build")
	f.StringVar(&since, "since", "", "only events since a time (RFC 3339) or for a duration back (e.g. 2h)")
	f.IntVarP(&limit, "limit", "n", 20, "how many of the latest events to show (1 to 1000)")
	return cmd
}

// parseSince reads an RFC 3339 time or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Errorf("--since %q: want a duration (2h) or an RFC 3339 time (2026-11-29T16:00:00Z)", s)}
}
