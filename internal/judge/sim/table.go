package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
)

// Cell is one scenario run Runs times.
type Cell struct {
	Group    string // table the cell belongs to ("A/A", "faults", ...)
	Scenario Scenario
	Runs     int
}

// Stats summarises one method over a cell's runs.
type Stats struct {
	Method string
	Runs   int
	// Rollbacks within the run, with a Wilson 95 % interval of their rate.
	Rollbacks  int
	RateLo     float64
	RateHi     float64
	Within30   int           // rollbacks within 30 minutes
	Median     time.Duration // over all runs; -1 when not reached (fewer than half rolled back)
	P90        time.Duration // -1 when fewer than 90 % rolled back
	MeanHarm   float64       // excess failed requests before rollback (or in the whole run)
	Passes     int           // judge: runs where a verdict said pass
	MedianPass time.Duration // judge: median time to the first pass, -1 when < half passed
	Reasons    map[string]int
}

// CellResult is a cell's outcome.
type CellResult struct {
	Cell    Cell
	Seed    uint64
	Stats   []Stats
	Elapsed time.Duration
}

// RunSeed is the seed of run i of a cell: derived from the table seed and
// the cell's name, so a cell reproduces alone.
func RunSeed(seed uint64, name string, i int) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, name)
	return seed*0x9e3779b97f4a7c15 ^ h.Sum64() + uint64(i)*0xbf58476d1ce4e5b9
}

// RunCell runs a cell on workers goroutines (≥ 1) and summarises it. It
// stops early, with the runs done so far, when ctx ends.
func RunCell(ctx context.Context, c Cell, seed uint64, workers int) CellResult {
	t0 := time.Now()
	results := make([]Result, c.Runs)
	done := make([]bool, c.Runs)
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				results[i] = Run(c.Scenario, RunSeed(seed, c.Scenario.Name, i))
				done[i] = true
			}
		})
	}
feed:
	for i := range c.Runs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var got []Result
	for i, ok := range done {
		if ok {
			got = append(got, results[i])
		}
	}
	return CellResult{Cell: c, Seed: seed, Stats: Summarise(got), Elapsed: time.Since(t0)}
}

// Summarise computes per-method statistics over runs.
func Summarise(runs []Result) []Stats {
	var out []Stats
	for m, name := range Methods() {
		st := Stats{Method: name, Median: -1, P90: -1, MedianPass: -1, Reasons: map[string]int{}}
		var times, passes []time.Duration
		for _, r := range runs {
			d := r[m]
			if !d.Ran {
				continue
			}
			st.Runs++
			st.MeanHarm += d.Harm
			if d.Failed {
				st.Rollbacks++
				times = append(times, d.At)
				if d.At <= 30*time.Minute {
					st.Within30++
				}
				if d.Why != "" {
					st.Reasons[d.Why]++
				}
			}
			if d.Passed {
				st.Passes++
				passes = append(passes, d.PassAt)
			}
		}
		if st.Runs == 0 {
			continue
		}
		st.MeanHarm /= float64(st.Runs)
		st.RateLo, st.RateHi = judge.Wilson(uint64(st.Rollbacks), uint64(st.Runs), 1.959963984540054)
		st.Median = quantile(times, st.Runs, 0.5)
		st.P90 = quantile(times, st.Runs, 0.9)
		st.MedianPass = quantile(passes, st.Runs, 0.5)
		out = append(out, st)
	}
	return out
}

// quantile of n runs of which only len(ts) ended (the others count as
// +∞); -1 when the quantile is not reached.
func quantile(ts []time.Duration, n int, q float64) time.Duration {
	slices.Sort(ts)
	k := int(math.Ceil(q*float64(n))) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(ts) {
		return -1
	}
	return ts[k]
}

// fmtDur prints a time to rollback; "—" when not reached.
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return d.Round(time.Second).String()
}

// WriteMarkdown writes the cells as markdown tables, one per group, with
// one row per cell and method.
func WriteMarkdown(w io.Writer, res []CellResult) {
	group := ""
	for _, cr := range res {
		if cr.Cell.Group != group {
			group = cr.Cell.Group
			fmt.Fprintf(w, "\n#### %s\n\n", group)
			fmt.Fprintln(w, "| cell | method | runs | rollbacks | rate [95 % CI] | ≤ 30 min | median | p90 | excess failures | judge passes (median time) |")
			fmt.Fprintln(w, "|---|---|---:|---:|---|---:|---:|---:|---:|---|")
		}
		for _, st := range cr.Stats {
			pass := ""
			if st.Method == MethodJudge {
				pass = fmt.Sprintf("%d (%s)", st.Passes, fmtDur(st.MedianPass))
			}
			fmt.Fprintf(w, "| %s | %s | %d | %d | %.2f %% [%.2f, %.2f] | %d | %s | %s | %.1f | %s |\n",
				cr.Cell.Scenario.Name, st.Method, st.Runs, st.Rollbacks, 100*float64(st.Rollbacks)/float64(st.Runs),
				100*st.RateLo, 100*st.RateHi, st.Within30, fmtDur(st.Median), fmtDur(st.P90), st.MeanHarm, pass)
		}
	}
}

// Protocol returns the cells of JUDGE.md's protocol: A/A runs of 60
// minutes (aaRuns each; the 1000 req/s cells and sticky cells get a
// quarter, as they cost 10–100× more) and fault runs of 30 minutes
// (faultRuns each).
func Protocol(aaRuns, faultRuns int) []Cell {
	var cells []Cell
	rates := []float64{10, 100, 1000}
	shares := []float64{0.01, 0.10, 0.30}
	aa := func(rate float64) int {
		if rate >= 1000 {
			return max(aaRuns/4, 1)
		}
		return aaRuns
	}
	for _, p := range []float64{0.005, 0.001} {
		for _, rate := range rates {
			for _, sh := range shares {
				cells = append(cells, Cell{Group: "A/A, per request, stationary", Runs: aa(rate), Scenario: Scenario{
					Name: fmt.Sprintf("%g req/s × %g %%, base %.1f %%", rate, 100*sh, 100*p), Rate: rate, Share: sh, BaseErr: p}})
			}
		}
	}
	for _, rate := range rates {
		cells = append(cells, Cell{Group: "A/A, per request, ramp 1→30 % with drift 0.5→2 %", Runs: aa(rate), Scenario: Scenario{
			Name: fmt.Sprintf("%g req/s ramp+drift", rate), Rate: rate, Share: 0.01, ShareEnd: 0.30, BaseErr: 0.005, BaseErrEnd: 0.02}})
		cells = append(cells, Cell{Group: "A/A, per request, shared bursts (10× errors, 30 s every 10 min)", Runs: aa(rate), Scenario: Scenario{
			Name: fmt.Sprintf("%g req/s × 10 %% bursts", rate), Rate: rate, Share: 0.10, BaseErr: 0.005, Bursts: true}})
	}
	for _, rate := range rates[:2] {
		for _, sh := range shares {
			cells = append(cells, Cell{Group: "A/A, sticky, clustered users (Pareto 1.2 rates, 1 % bad clients, user latency factor)", Runs: max(aaRuns/4, 1), Scenario: Scenario{
				Name: fmt.Sprintf("%g req/s × %g %% clustered", rate, 100*sh), Mode: judge.Sticky, Rate: rate, Share: sh, BaseErr: 0.005, Clustered: true}})
		}
	}
	faults := []struct {
		name string
		f    Fault
	}{
		{"+1 pp errors", Fault{ErrDelta: 0.01}},
		{"+5 pp errors", Fault{ErrDelta: 0.05}},
		{"latency ×1.2", Fault{LatencyFactor: 1.2}},
		{"latency ×2", Fault{LatencyFactor: 2}},
		{"p99-only ×2", Fault{TailFactor: 2}},
	}
	for _, mode := range []judge.Mode{judge.PerRequest, judge.Sticky} {
		for _, f := range faults {
			for _, rate := range rates {
				if mode == judge.Sticky && rate >= 1000 {
					continue
				}
				for _, sh := range shares {
					cells = append(cells, Cell{Group: fmt.Sprintf("faults, %s: %s (30 min runs, base 0.5 %%)", mode, f.name), Runs: faultRuns, Scenario: Scenario{
						Name: fmt.Sprintf("%g canary req/s (%g × %g %%)", rate*sh, rate, 100*sh), Mode: mode, Rate: rate, Share: sh,
						BaseErr: 0.005, Fault: f.f, Duration: 30 * time.Minute}})
				}
			}
		}
	}
	return cells
}
