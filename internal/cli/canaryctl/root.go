// Package canaryctl holds the commands of the canaryctl binary, one file
// per command. canaryctl reaches canaryd only through internal/client, so
// everything it does can also be done by any API client.
package canaryctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/client"
)

// Exit codes of canaryctl (docs/cli.md). Scripts branch on them.
const (
	ExitOK       = 0 // done
	ExitFailure  = 1 // anything else: server unreachable, 401/403, 5xx
	ExitUsage    = 2 // bad command line: unknown command or flag, missing or malformed argument
	ExitNotFound = 3 // the service or build does not exist (404)
	ExitConflict = 4 // illegal in the current state, or changed meanwhile (409, 412, 422)
)

// Run executes the command line args and returns the exit code. Output
// goes to stdout, messages and errors to stderr; getenv reads
// CANARYD_ADDR and CANARYD_TOKEN (nil: no environment). Commands that
// follow the server (status --watch, events -f) run until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	fmt.Fprintln(stderr, "canaryctl:", a.explain(err))
	if code == ExitUsage {
		fmt.Fprintln(stderr, "Run 'canaryctl --help' for usage.")
	}
	return code
}

// app is one invocation: its streams and global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	server, token string
	output        string
	timeout       time.Duration
	ifRevision    int64
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "canaryctl",
		Short: "Operate canaryd: builds, canaries, traffic, promotion, rollback and the event log",
		Long: `canaryctl talks to a canaryd admin API.

The server and token come from --server/--token or CANARYD_ADDR/CANARYD_TOKEN.
Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 conflict or illegal in the current state.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", a.output)}
			}
			if !cmd.Flags().Changed("server") {
				if v := a.getenv("CANARYD_ADDR"); v != "" {
					a.server = v
				}
			}
			if !cmd.Flags().Changed("token") {
				a.token = a.getenv("CANARYD_TOKEN")
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", client.DefaultBaseURL, "canaryd admin API address (env CANARYD_ADDR)")
	pf.StringVar(&a.token, "token", "", "bearer token (env CANARYD_TOKEN)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "time limit of one request")
	root.AddCommand(
		a.statusCmd(),
		a.buildsCmd(),
		a.canaryCmd(),
		a.trafficCmd(),
		a.promoteCmd(),
		a.rollbackCmd(),
		a.pauseCmd(true),
		a.pauseCmd(false),
		a.eventsCmd(),
		a.cohortCmd(),
		a.releasesCmd(),
		a.compareCmd(),
		a.controllerCmd(),
		a.abortCmd(),
		a.approveCmd(),
		a.alertsCmd(),
	)
	return root
}

// client returns the API client for the global flags.
func (a *app) client() *client.Client {
	return &client.Client{BaseURL: a.server, Token: a.token, UserAgent: "canaryctl"}
}

// ctx bounds one request by --timeout.
func (a *app) ctx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// revisionFlag adds --if-revision to a command that changes a service.
func (a *app) revisionFlag(cmd *cobra.Command) {
	cmd.Flags().Int64Var(&a.ifRevision, "if-revision", 0, "change only if the service's revision is still this (see status -o json); exit 4 otherwise")
}

func (a *app) opts() []client.Option { return []client.Option{client.IfRevision(a.ifRevision)} }

// usageError is a bad command line (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

// group is the RunE of a command that only holds subcommands.
func group(cmd *cobra.Command, _ []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.CommandPath(), strings.Join(names, ", "))}
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return ExitUsage
	case errors.Is(err, client.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, client.ErrConflict), errors.Is(err, client.ErrPreconditionFailed):
		return ExitConflict
	}
	return ExitFailure
}

// explain turns an error into what a person can act on.
func (a *app) explain(err error) string {
	var ce *client.Error
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce):
		msg := ce.Message
		if ce.Field != "" && !strings.HasPrefix(msg, ce.Field+":") {
			msg = ce.Field + ": " + msg
		}
		switch ce.Status {
		case 401:
			return msg + "\n  (pass a token with --token or CANARYD_TOKEN)"
		case 403:
			return msg + "\n  (use a token with the admin role)"
		case 412:
			return msg + "\n  (run 'canaryctl status SERVICE' to see what changed, then retry)"
		case 409:
			if ce.Legal != "" && !strings.Contains(msg, ce.Legal) {
				return msg + "\n  what is legal: " + ce.Legal
			}
			return msg
		}
		if ce.Status >= 500 {
			return msg + " (HTTP " + strconv.Itoa(ce.Status) + ")"
		}
		return msg
	case errors.As(err, &oe), errors.As(err, &ne):
		return fmt.Sprintf("cannot reach canaryd at %s: %v\n  (set --server or CANARYD_ADDR to its admin address)", a.client().BaseURL, err)
	}
	return err.Error()
}
