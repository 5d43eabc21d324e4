package canaryctl

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/event"
)

// printJSON writes v indented, for -o json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printLine writes v as one line of JSON (for streams: one object a line).
func printLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// table writes rows aligned in columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func pct(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) + "%" }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func withVersion(id, version string) string {
	if id == "" {
		return "-"
	}
	if version == "" {
		return id
	}
	return id + " (" + version + ")"
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return t.UTC().Format(time.RFC3339)
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return t.UTC().Format("2006-01-02")
}

func endpointsSummary(b wire.Build) string {
	alive := 0
	for _, e := range b.Endpoints {
		if e.Alive {
			alive++
		}
	}
	return fmt.Sprintf("%d/%d alive", alive, len(b.Endpoints))
}

// printServices is the table of status without a service.
func printServices(w io.Writer, svcs []wire.Service) error {
	rows := [][]string{{"SERVICE", "STABLE", "CANARY", "TRAFFIC", "PAUSED", "REVISION"}}
	for _, s := range svcs {
		traffic, paused := "-", "-"
		if s.Canary != "" {
			traffic = pct(s.Traffic)
			paused = strconv.FormatBool(s.Paused)
		}
		rows = append(rows, []string{s.Name, withVersion(s.Stable, s.StableVersion), withVersion(s.Canary, s.CanaryVersion),
			traffic, paused, strconv.FormatInt(s.Revision, 10)})
	}
	return table(w, rows)
}

// printService is status SERVICE.
func printService(w io.Writer, s wire.Service, now time.Time) error {
	canary := "none"
	if s.Canary != "" {
		canary = fmt.Sprintf("%s at %s", withVersion(s.Canary, s.CanaryVersion), pct(s.Traffic))
		if s.Paused {
			canary += ", paused"
		}
	}
	fmt.Fprintf(w, "service:   %s (revision %d)\n", s.Name, s.Revision)
	fmt.Fprintf(w, "stable:    %s\n", orNone(withVersion(s.Stable, s.StableVersion)))
	fmt.Fprintf(w, "canary:    %s\n", canary)
	fmt.Fprintf(w, "cohort:    window at bucket %d, %d buckets used by earlier canaries\n\n", s.WindowOffset, s.UsedBuckets)
	return printBuilds(w, s.Builds, false, now)
}

func orNone(s string) string {
	if s == "-" {
		return "none (make one stable: canaryctl builds set-stable SERVICE ID)"
	}
	return s
}

func printBuilds(w io.Writer, builds []wire.Build, withService bool, now time.Time) error {
	head := []string{"BUILD", "VERSION", "STATE", "ENDPOINTS", "REGISTERED BY", "REGISTERED"}
	if withService {
		head = append([]string{"SERVICE"}, head...)
	}
	rows := [][]string{head}
	for _, b := range builds {
		r := []string{b.ID, orDash(b.Version), b.State, endpointsSummary(b), orDash(b.RegisteredBy), ago(b.RegisteredAt, now)}
		if withService {
			r = append([]string{b.Service}, r...)
		}
		rows = append(rows, r)
	}
	return table(w, rows)
}

// eventRow is one event in the events table.
func eventRow(ev event.Event) []string {
	return []string{strconv.FormatInt(ev.ID, 10), ev.Time.UTC().Format("2006-01-02 15:04:05"), orDash(ev.Service), string(ev.Type),
		orDash(ev.Build), orDash(ev.Actor), orDash(describe(ev))}
}

var eventHead = []string{"ID", "TIME (UTC)", "SERVICE", "TYPE", "BUILD", "ACTOR", "WHAT"}

// describe says what an event did, in words.
func describe(ev event.Event) string {
	d := ev.Details
	var s string
	switch ev.Type {
	case event.CanaryStarted:
		s = fmt.Sprintf("canary %s started at %s; stable is %s", withVersion(ev.Build, d["version"]), d["traffic"], orDash(d["stable"]))
	case event.TrafficChanged:
		s = fmt.Sprintf("canary %s now gets %s (was %s)", ev.Build, d["traffic"], d["previous_traffic"])
	case event.Promoted:
		s = fmt.Sprintf("%s promoted to stable", withVersion(ev.Build, d["version"]))
		if d["previous_stable"] != "" {
			s += "; " + d["previous_stable"] + " is deployed again"
		}
	case event.RolledBack:
		s = fmt.Sprintf("canary %s rolled back from %s; every user is on stable", ev.Build, d["traffic"])
	case event.Paused:
		s = "release paused"
	case event.Aborted:
		s = "release of " + ev.Build + " aborted at " + d["traffic"]
	case "release.approved":
		s = "manual gate at " + d["traffic"] + " approved"
	case "release.held":
		s = "release of " + ev.Build + " held at " + d["traffic"]
	case event.Resumed:
		s = "release resumed"
	case event.BuildDeleted:
		s = "build " + ev.Build + " deleted"
	case event.StableSet:
		if ev.Build != "" {
			s = ev.Build + " is the stable build"
		}
	case event.CohortRefreshed:
		if n, ok := d["forgotten_windows"]; ok {
			s = "cohort history forgotten (windows: " + n + ")"
		} else {
			s = "cohort moved to a fresh window"
		}
	case event.BuildRegistered:
		s = "registered " + withVersion(ev.Build, d["version"])
		if e := d["endpoints_added"]; e != "" {
			s += ", endpoints added " + e
		} else if e := d["endpoints"]; e != "" {
			s += ", endpoints " + e
		}
	case event.BuildDeregistered:
		s = "endpoint " + d["endpoint"] + " removed"
	default:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+d[k])
		}
		s = strings.Join(parts, " ")
	}
	if ev.Reason != "" {
		if s != "" {
			s += ": "
		}
		s += ev.Reason
	}
	return s
}

// printResult reports a lifecycle operation.
func printResult(w io.Writer, r wire.Result) error {
	s := r.Service
	fmt.Fprintf(w, "%s: %s\n", s.Name, describe(r.Event))
	state := "stable " + orDash(s.Stable)
	if s.Canary != "" {
		state += ", canary " + s.Canary + " at " + pct(s.Traffic)
		if s.Paused {
			state += " (paused)"
		}
	} else {
		state += ", no canary"
	}
	fmt.Fprintf(w, "now:  %s (revision %d, event %d by %s)\n", state, s.Revision, r.Event.ID, orDash(r.Event.Actor))
	return nil
}

// columns prints rows with fixed widths, for tables whose rows arrive
// one at a time (followed events). The last column is not padded.
type columns []int

func newColumns(rows [][]string, min []int) columns {
	c := columns(slices.Clone(min))
	for _, r := range rows {
		for i, v := range r {
			if i >= len(c) {
				c = append(c, 0)
			}
			c[i] = max(c[i], utf8.RuneCountInString(v))
		}
	}
	return c
}

func (c columns) print(w io.Writer, row []string) {
	var b strings.Builder
	for i, v := range row {
		if i == len(row)-1 {
			b.WriteString(v)
			break
		}
		width := 0
		if i < len(c) {
			width = c[i]
		}
		b.WriteString(v)
		b.WriteString(strings.Repeat(" ", max(width-utf8.RuneCountInString(v), 0)+2))
	}
	fmt.Fprintln(w, b.String())
}
