package canaryctl

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
)

func (a *app) releasesCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "releases [SERVICE]",
		Short: "List release records, newest first: build, outcome, steps reached, duration, users exposed and harmed",
		Example: `  canaryctl releases
  canaryctl releases api --limit 5 -o json`,
		Args:              args(cobra.MaximumNArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			if limit < 0 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: want 1 to 1000", limit)}
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			rs, err := a.client().Releases(ctx, service, limit)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.ReleaseList{Releases: rs})
			}
			return printReleases(a.stdout, rs)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many releases (default: the server's page, 100)")
	return cmd
}

// printReleases is the table of releases.
func printReleases(w io.Writer, rs []wire.Release) error {
	rows := [][]string{{"SERVICE", "BUILD", "STATUS", "STEP", "TRAFFIC", "VERDICT", "STARTED (UTC)", "DURATION", "EXPOSED", "HARMED", "REASON"}}
	for _, r := range rs {
		status := r.Status
		switch {
		case r.Forced:
			status += " (forced)"
		case r.Held != "":
			status += " (held)"
		case r.Waiting:
			status += " (waiting)"
		}
		reason := r.Reason
		if r.Held != "" && r.EndedAt == nil {
			reason = r.Held
		}
		rows = append(rows, []string{r.Service, r.Build, status, stepOf(r), pct(r.Traffic), orDash(r.Verdict),
			r.StartedAt.UTC().Format("2006-01-02 15:04:05"), orDash(r.Duration), users(r.UsersExposed), users(r.UsersHarmed), orDash(clip(reason, 80))})
	}
	return table(w, rows)
}

func stepOf(r wire.Release) string {
	if len(r.Steps) == 0 {
		return strconv.Itoa(r.Step)
	}
	return fmt.Sprintf("%d/%d", r.Step, len(r.Steps))
}

func users(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// fmtNum prints a number compactly; unbounded values as ∞.
func fmtNum(v float64) string {
	switch {
	case v >= 1e300:
		return "∞"
	case v <= -1e300:
		return "-∞"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// fmtIn prints v in unit: rates as percentages, seconds as durations.
func fmtIn(unit string, v float64) string {
	switch unit {
	case "rate":
		if v >= 1e300 || v <= -1e300 {
			return fmtNum(v)
		}
		return strconv.FormatFloat(100*v, 'f', 2, 64) + "%"
	case "seconds":
		return time.Duration(v * float64(time.Second)).Round(time.Microsecond).String()
	}
	return fmtNum(v)
}

// printComparison is compare SERVICE.
func printComparison(w io.Writer, c wire.Comparison) error {
	if !c.Active || c.Release == nil {
		_, err := fmt.Fprintf(w, "%s: no release under way\n", c.Service)
		return err
	}
	r := c.Release
	fmt.Fprintf(w, "release:  %s (build %s, %s)\n", r.ID, r.Build, r.Status)
	fmt.Fprintf(w, "step:     %s at %s (steps %s)\n", stepOf(*r), pct(r.Traffic), joinPct(r.Steps))
	fmt.Fprintf(w, "verdict:  %s\n", c.Outcome)
	if r.Held != "" {
		fmt.Fprintf(w, "held:     %s\n", r.Held)
	}
	if r.Waiting {
		fmt.Fprintf(w, "waiting:  every step passed; promote by hand (canaryctl promote %s)\n", r.Service)
	}
	fmt.Fprintf(w, "users:    %s exposed, %s harmed\n\n", users(r.UsersExposed), users(r.UsersHarmed))
	rows := [][]string{{"METRIC", "KIND", "STABLE", "CANARY", "DIFF", "ESTIMATE [BOUNDS]", "LIMIT", "EVIDENCE", "RESULT"}}
	for _, m := range c.Metrics {
		stable, canary, diff := "-", fmtIn(m.Unit, m.Canary), "-"
		if m.Kind != "guardrail" {
			stable, diff = fmtIn(m.Unit, m.Stable), fmtIn(m.Unit, m.Difference)
		}
		if m.Unit == "seconds" && m.Stable == 0 && m.Canary == 0 {
			stable, canary, diff = "-", "-", "-" // no latency seen by this replica yet
		}
		est := "-"
		if m.Kind == "judge" {
			unit := m.Unit
			if m.Metric == "latency" {
				unit = "value"
			}
			est = fmt.Sprintf("%s [%s, %s]", fmtIn(unit, m.Estimate), fmtIn(unit, m.Lower), fmtIn(unit, m.Upper))
		}
		limit := "-"
		if m.Limit != 0 {
			limit = fmtIn(m.Unit, m.Limit)
			if m.Metric == "errors" {
				limit = "+" + limit
			}
		}
		evidence := "-"
		if m.Threshold > 0 {
			evidence = fmt.Sprintf("e=%s / %s", fmtNum(m.EValue), fmtNum(m.Threshold))
		}
		rows = append(rows, []string{m.Metric, m.Kind, stable, canary, diff, est, limit, evidence, m.Result})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, m := range c.Metrics {
		if strings.HasPrefix(m.Message, m.Metric+":") {
			fmt.Fprintln(w, m.Message)
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", m.Metric, m.Message)
	}
	for _, g := range r.Gates {
		fmt.Fprintf(w, "gate %s at %s: %s\n", g.Gate, g.Point, g.Message)
	}
	return nil
}

func joinPct(ps []float64) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, pct(p))
	}
	return strings.Join(parts, ", ")
}

func (a *app) compareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare SERVICE",
		Short: "Show the live comparison the judge sees: per metric stable, canary, difference, bounds, evidence, result",
		Example: `  canaryctl compare api
  canaryctl compare api -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			c, err := a.client().Compare(ctx, args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, c)
			}
			return printComparison(a.stdout, c)
		},
	}
}

func (a *app) controllerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "controller",
		Short: "Show which replica runs releases, and how far each replica has published its judged traffic",
		Example: `  canaryctl controller
  canaryctl controller -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			c, err := a.client().Controller(ctx)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, c)
			}
			return printController(a.stdout, c, time.Now())
		},
	}
}

// printController is the lease holder, then a table of publications.
func printController(w io.Writer, c wire.Controller, now time.Time) error {
	switch {
	case c.Holder != "":
		fmt.Fprintf(w, "controller: %s (epoch %d, lease until %s)\n", c.Holder, c.Epoch, c.ExpiresAt.UTC().Format(time.TimeOnly))
	default:
		fmt.Fprintln(w, "controller: none (no replica holds the lease now)")
	}
	if len(c.Replicas) == 0 {
		fmt.Fprintln(w, "no active release: replicas publish nothing")
		return nil
	}
	rows := [][]string{{"SERVICE", "REPLICA", "STATE", "PUBLISHED THROUGH (UTC)", "BEHIND"}}
	for _, r := range c.Replicas {
		state := "live"
		if !r.Live {
			state = "gone"
		}
		if r.Leader {
			state += ", leader"
		}
		rows = append(rows, []string{r.Service, r.Replica, state, r.Through.UTC().Format(time.TimeOnly),
			now.Sub(r.Through).Truncate(time.Second).String()})
	}
	return table(w, rows)
}
