package canaryctl

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
)

func (a *app) canaryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Start a canary",
		Args:  args(cobra.NoArgs),
		RunE:  group,
	}
	cmd.AddCommand(a.canaryStartCmd())
	return cmd
}

func (a *app) canaryStartCmd() *cobra.Command {
	var (
		req     wire.StartCanaryRequest
		traffic string
		pol     policyFlags
	)
	cmd := &cobra.Command{
		Use:   "start SERVICE --build ID [--traffic P] [--replace] [--fresh-cohort]",
		Short: "Make a deployed build the canary, at P percent of users (default 0)",
		Example: `  canaryctl canary start api --build 42 --traffic 10
  canaryctl canary start api --build 43 --traffic 5 --replace --fresh-cohort --reason "fix for #812"`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Build == "" {
				return usageError{fmt.Errorf("canary start: --build is required")}
			}
			if traffic != "" {
				p, err := parsePercent("--traffic", traffic)
				if err != nil {
					return err
				}
				req.Traffic = p
			}
			p, err := pol.policy(cmd)
			if err != nil {
				return err
			}
			req.Policy = p
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			r, err := a.client().StartCanary(ctx, args[0], req, a.opts()...)
			return a.result(r, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Build, "build", "", "id of the deployed build to start (required)")
	f.StringVar(&traffic, "traffic", "", "first share of users in percent, 0 to 100")
	f.BoolVar(&req.Replace, "replace", false, "replace the running canary (it goes back to deployed)")
	f.BoolVar(&req.FreshCohort, "fresh-cohort", false, "pick users no earlier canary of the service had")
	f.StringVar(&req.Reason, "reason", "", "why, recorded on the event")
	f.StringVar(&pol.steps, "steps", "", "traffic steps of this release, e.g. 5,20,50,100 (default: the config's)")
	f.DurationVar(&pol.stepDuration, "step-duration", 0, "minimum bake time of each step of this release, e.g. 1m")
	f.DurationVar(&pol.maxStepDuration, "max-step-duration", 0, "time after which a still inconclusive step pauses or rolls back")
	f.StringVar(&pol.onInconclusive, "on-inconclusive", "", "what a step that stays inconclusive does: pause or rollback")
	f.StringVar(&pol.manualGates, "manual-gates", "", "steps where the release waits for canaryctl approve, e.g. 50 (\"none\" removes the config's)")
	f.BoolVar(&pol.manualPromote, "manual-promote", false, "wait for canaryctl promote after the last step instead of promoting")
	a.revisionFlag(cmd)
	return cmd
}

// policyFlags are canary start's per-release policy override.
type policyFlags struct {
	steps, onInconclusive, manualGates string
	stepDuration, maxStepDuration      time.Duration
	manualPromote                      bool
}

// policy returns the override the flags ask for, or nil when none is set.
func (f *policyFlags) policy(cmd *cobra.Command) (*wire.ReleasePolicy, error) {
	var p wire.ReleasePolicy
	set := false
	var err error
	if f.steps != "" {
		if p.Steps, err = parsePercents("--steps", f.steps); err != nil {
			return nil, err
		}
		set = true
	}
	if f.manualGates != "" {
		p.ManualGates = []float64{}
		if f.manualGates != "none" {
			if p.ManualGates, err = parsePercents("--manual-gates", f.manualGates); err != nil {
				return nil, err
			}
		}
		set = true
	}
	if f.stepDuration < 0 || f.maxStepDuration < 0 {
		return nil, usageError{fmt.Errorf("--step-duration and --max-step-duration must be positive")}
	}
	if f.stepDuration > 0 {
		p.StepDuration, set = f.stepDuration.String(), true
	}
	if f.maxStepDuration > 0 {
		p.MaxStepDuration, set = f.maxStepDuration.String(), true
	}
	switch f.onInconclusive {
	case "":
	case "pause", "rollback":
		p.OnInconclusive, set = f.onInconclusive, true
	default:
		return nil, usageError{fmt.Errorf("--on-inconclusive %q: want pause or rollback", f.onInconclusive)}
	}
	if f.manualPromote {
		no := false
		p.AutoPromote, set = &no, true
	}
	if !set {
		return nil, nil
	}
	return &p, nil
}

// parsePercents parses a comma-separated list of percentages.
func parsePercents(name, s string) ([]float64, error) {
	var out []float64
	for part := range strings.SplitSeq(s, ",") {
		v, err := parsePercent(name, part)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
