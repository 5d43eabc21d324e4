// Command judgesim runs the judge simulation tables of docs/analysis.md:
//
//	go run ./internal/judge/sim/cmd/judgesim -seed 1 -aa 1000 -faults 200 > tables.md
//
// It prints markdown tables on stdout and progress on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/judge/sim"
)

func main() {
	seed := flag.Uint64("seed", 1, "table seed")
	aa := flag.Int("aa", 1000, "runs per A/A cell (a quarter for 1000 req/s and sticky cells)")
	faults := flag.Int("faults", 200, "runs per fault cell")
	only := flag.String("only", "", "run only cells whose group or name contains this")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "parallel runs")
	budget := flag.Duration("budget", 0, "stop after this wall time (0 = none); cells then hold fewer runs")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *budget)
		defer cancel()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	host, _ := os.Hostname()
	fmt.Printf("seed %d, %d A/A runs, %d fault runs per cell, %d workers, %s/%s %d CPUs (%s), %s, started %s\n",
		*seed, *aa, *faults, *workers, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	var res []sim.CellResult
	for _, c := range sim.Protocol(*aa, *faults) {
		if *only != "" && !strings.Contains(c.Group+" "+c.Scenario.Name, *only) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r := sim.RunCell(ctx, c, *seed, *workers)
		log.Info("cell", "group", c.Group, "name", c.Scenario.Name, "runs", r.Stats[0].Runs, "elapsed", r.Elapsed.Round(time.Millisecond))
		res = append(res, r)
	}
	sim.WriteMarkdown(os.Stdout, res)
}
