package canaryctl

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canaryd/canaryd/internal/api/wire"
)

func (a *app) alertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Manage alert channels (Slack, Telegram, e-mail, webhooks), send test messages, list dead alerts",
		Long: `Alert channels are declared in the config file (read-only here) or added at run
time with "alerts add"; the server keeps added channels' secrets encrypted with
alerts.secret_key and never returns them: every output shows them masked.`,
		Args: args(cobra.NoArgs),
		RunE: group,
	}
	cmd.AddCommand(a.alertsListCmd(), a.alertsAddCmd(), a.alertsRemoveCmd(), a.alertsTestCmd(), a.alertsDeadCmd(), a.alertsReplayCmd())
	return cmd
}

func (a *app) alertsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List alert channels: where each is declared, whether it delivers, and where to (secrets masked)",
		Example: "  canaryctl alerts list\n  canaryctl alerts list -o json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			chs, err := a.client().AlertChannels(ctx)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.AlertChannelList{Channels: chs})
			}
			return printAlertChannels(a.stdout, chs)
		},
	}
}

// printAlertChannels is the table of alerts list.
func printAlertChannels(w io.Writer, chs []wire.AlertChannel) error {
	rows := [][]string{{"NAME", "KIND", "SOURCE", "ACTIVE", "TARGET", "ROUTE", "NOTE"}}
	for _, c := range chs {
		note := c.Error
		if c.Disabled {
			note = "disabled"
		}
		rows = append(rows, []string{c.Name, c.Kind, c.Source, strconv.FormatBool(c.Active), orDash(c.Target), routeOf(c.Route), orDash(note)})
	}
	return table(w, rows)
}

func routeOf(r wire.AlertRoute) string {
	var parts []string
	if len(r.Services) > 0 {
		parts = append(parts, "services="+strings.Join(r.Services, ","))
	}
	if len(r.Types) > 0 {
		parts = append(parts, "types="+strings.Join(r.Types, ","))
	}
	if r.MinSeverity != "" {
		parts = append(parts, "min="+r.MinSeverity)
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// addFlags are the flags every "alerts add" command takes.
type addFlags struct {
	name        string
	services    []string
	types       []string
	minSeverity string
	throttle    time.Duration
}

func (f *addFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "channel name (default: the kind)")
	fl.StringSliceVar(&f.services, "services", nil, "only events of these services (default: all)")
	fl.StringSliceVar(&f.types, "types", nil, `only these event types, "release.*" for a prefix (default: all)`)
	fl.StringVar(&f.minSeverity, "min-severity", "", "only events at least this severe: info, warning or critical")
	fl.DurationVar(&f.throttle, "throttle", 0, "shortest gap between two identical alerts (default 10m)")
}

func (f *addFlags) request(kind string, s wire.AlertSettings) wire.AddAlertChannelRequest {
	req := wire.AddAlertChannelRequest{Name: f.name, Kind: kind, Settings: s}
	if len(f.services) > 0 || len(f.types) > 0 || f.minSeverity != "" {
		req.Route = &wire.AlertRoute{Services: f.services, Types: f.types, MinSeverity: f.minSeverity}
	}
	if f.throttle != 0 {
		req.Throttle = f.throttle.String()
	}
	return req
}

func (a *app) alertsAddCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add an alert channel at run time: slack, telegram, email, webhook or discord",
		Args:  args(cobra.NoArgs),
		RunE:  group,
	}
	type kind struct {
		use, short, example string
		args                cobra.PositionalArgs
		flags               func(cmd *cobra.Command, s *wire.AlertSettings)
		settings            func(cmd *cobra.Command, args []string, s *wire.AlertSettings) error
	}
	urlArg := func(_ *cobra.Command, args []string, s *wire.AlertSettings) error { s.URL = args[0]; return nil }
	kinds := []kind{
		{use: "slack URL", short: "Add a Slack incoming webhook", args: cobra.ExactArgs(1), settings: urlArg,
			example: "  canaryctl alerts add slack https://hooks.slack.com/services/T…/B…/… --name ops"},
		{use: "telegram --token T --chat C [--thread N]", short: "Add a Telegram chat, through a bot (--thread: a forum topic)",
			example: `  canaryctl alerts add telegram --token "$BOT_TOKEN" --chat -1001234567890 --thread 12`,
			args:    cobra.NoArgs,
			flags: func(cmd *cobra.Command, s *wire.AlertSettings) {
				cmd.Flags().StringVar(&s.Token, "token", "", "bot token (stored encrypted, never shown)")
				cmd.Flags().StringVar(&s.ChatID, "chat", "", `chat id ("-1001234567890") or "@channel"`)
				cmd.Flags().Int64Var(&s.Thread, "thread", 0, "forum topic (message_thread_id); 0 = the general topic")
				cmd.Flags().StringVar(&s.BaseURL, "base-url", "", "Bot API server (default https://api.telegram.org)")
			},
			settings: func(_ *cobra.Command, _ []string, s *wire.AlertSettings) error {
				if s.Token == "" || s.ChatID == "" {
					return usageError{fmt.Errorf("alerts add telegram: --token and --chat are required")}
				}
				return nil
			}},
		{use: "email ADDR... --smtp HOST:PORT [--from F] [--username U --password P]", short: "Add e-mail recipients and the SMTP server to send through",
			example: `  canaryctl alerts add email oncall@example.com dev@example.com --smtp smtp.example.com:587 --from canaryd@example.com --username canaryd --password "$SMTP_PASSWORD"`,
			args:    cobra.MinimumNArgs(1),
			flags: func(cmd *cobra.Command, s *wire.AlertSettings) {
				cmd.Flags().StringVar(&s.SMTP, "smtp", "", "mail server as host:port")
				cmd.Flags().StringVar(&s.From, "from", "", "sender address")
				cmd.Flags().StringVar(&s.Username, "username", "", "SMTP user")
				cmd.Flags().StringVar(&s.Password, "password", "", "SMTP password (stored encrypted, never shown)")
				cmd.Flags().StringVar(&s.TLS, "tls", "", "starttls (default), starttls-required, tls or none")
			},
			settings: func(_ *cobra.Command, args []string, s *wire.AlertSettings) error {
				if s.SMTP == "" {
					return usageError{fmt.Errorf("alerts add email: --smtp is required")}
				}
				s.To = args
				return nil
			}},
		{use: "webhook URL --secret S", short: "Add a generic webhook: JSON signed with HMAC-SHA256 of the secret",
			example: `  canaryctl alerts add webhook https://hooks.example.com/canaryd --secret "$WEBHOOK_SECRET" --name bridge`,
			args:    cobra.ExactArgs(1),
			flags: func(cmd *cobra.Command, s *wire.AlertSettings) {
				cmd.Flags().StringVar(&s.Secret, "secret", "", "HMAC key (stored encrypted, never shown)")
			},
			settings: func(cmd *cobra.Command, args []string, s *wire.AlertSettings) error {
				if s.Secret == "" {
					return usageError{fmt.Errorf("alerts add webhook: --secret is required")}
				}
				return urlArg(cmd, args, s)
			}},
		{use: "discord URL", short: "Add a Discord webhook", args: cobra.ExactArgs(1), settings: urlArg,
			example: "  canaryctl alerts add discord https://discord.com/api/webhooks/…/… --services api"},
	}
	for _, k := range kinds {
		var (
			s wire.AlertSettings
			f addFlags
		)
		name, _, _ := strings.Cut(k.use, " ")
		sub := &cobra.Command{
			Use: k.use, Short: k.short, Example: k.example, Args: args(k.args),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := k.settings(cmd, args, &s); err != nil {
					return err
				}
				if a.token == "" {
					// telegram's --token (the bot's) hides the global one,
					// and the root then skipped CANARYD_TOKEN.
					a.token = a.getenv("CANARYD_TOKEN")
				}
				if a.token == "" && name == "telegram" {
					return usageError{fmt.Errorf("alerts add telegram: --token is the bot's token here; give the API token in CANARYD_TOKEN")}
				}
				ctx, cancel := a.ctx(cmd)
				defer cancel()
				ch, err := a.client().AddAlertChannel(ctx, f.request(name, s))
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSON(a.stdout, ch)
				}
				fmt.Fprintf(a.stdout, "added channel %s (%s): %s\n", ch.Name, ch.Kind, orDash(ch.Target))
				if !ch.Active {
					fmt.Fprintf(a.stdout, "not active: %s\n", orDash(ch.Error))
				}
				fmt.Fprintf(a.stdout, "check it with: canaryctl alerts test %s\n", ch.Name)
				return nil
			},
		}
		if k.flags != nil {
			k.flags(sub, &s)
		}
		f.register(sub)
		cmd.AddCommand(sub)
	}
	return cmd
}

func (a *app) alertsRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "remove NAME",
		Short:             "Remove a channel added at run time (channels of the config file are read-only)",
		Example:           "  canaryctl alerts remove ops",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			if err := a.client().RemoveAlertChannel(ctx, args[0]); err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.Empty{OK: true})
			}
			fmt.Fprintf(a.stdout, "removed channel %s\n", args[0])
			return nil
		},
	}
}

// errTestFailed is the exit 1 of alerts test when a channel failed; the
// results are printed already.
type errTestFailed struct{ failed, total int }

func (e errTestFailed) Error() string {
	return fmt.Sprintf("alerts test: %d of %d channels failed", e.failed, e.total)
}

func (a *app) alertsTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test [CHANNEL]",
		Short: "Send a test message now to one channel or to every active channel and report each result (exit 1 if any failed)",
		Example: `  canaryctl alerts test
  canaryctl alerts test ops`,
		Args:              args(cobra.MaximumNArgs(1)),
		ValidArgsFunction: a.completeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			channel := ""
			if len(args) == 1 {
				channel = args[0]
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			rep, err := a.client().TestAlerts(ctx, channel)
			if err != nil {
				return err
			}
			if a.output == "json" {
				if err := printJSON(a.stdout, rep); err != nil {
					return err
				}
			} else if err := printTestReport(a.stdout, rep); err != nil {
				return err
			}
			failed := 0
			for _, r := range rep.Results {
				if !r.OK {
					failed++
				}
			}
			if len(rep.Results) == 0 {
				return fmt.Errorf("alerts test: no active channel to test (add one with canaryctl alerts add)")
			}
			if failed > 0 {
				return errTestFailed{failed: failed, total: len(rep.Results)}
			}
			return nil
		},
	}
}

// printTestReport is the table of alerts test.
func printTestReport(w io.Writer, rep wire.AlertTestReport) error {
	rows := [][]string{{"CHANNEL", "RESULT", "TOOK", "ERROR"}}
	for _, r := range rep.Results {
		res := "ok"
		if !r.OK {
			res = "FAILED"
		}
		rows = append(rows, []string{r.Channel, res, r.Took, orDash(r.Error)})
	}
	return table(w, rows)
}

func (a *app) alertsDeadCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:     "dead",
		Short:   "List alerts that could not be delivered after their tries, newest first, with the last error",
		Example: "  canaryctl alerts dead --limit 20",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: want 1 to 1000", limit)}
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			ds, err := a.client().DeadAlerts(ctx, limit)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.DeadAlertList{Alerts: ds})
			}
			return printDeadAlerts(a.stdout, ds)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many alerts (default: the server's page, 100)")
	return cmd
}

// printDeadAlerts is the table of alerts dead.
func printDeadAlerts(w io.Writer, ds []wire.DeadAlert) error {
	rows := [][]string{{"ID", "CHANNEL", "SERVICE", "TYPE", "COUNT", "TRIES", "DEAD SINCE (UTC)", "LAST ERROR"}}
	for _, d := range ds {
		rows = append(rows, []string{strconv.FormatInt(d.ID, 10), d.Channel, orDash(d.Service), d.Type, strconv.Itoa(d.Count),
			strconv.Itoa(d.Attempts), d.DeadAt.UTC().Format("2006-01-02 15:04:05"), orDash(clip(d.LastError, 100))})
	}
	return table(w, rows)
}

func (a *app) alertsReplayCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "replay ID",
		Short:   "Send a dead alert again (after fixing its channel): pending now, tries reset",
		Example: "  canaryctl alerts replay 17",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageError{fmt.Errorf("alerts replay: %q: want an alert id (see canaryctl alerts dead)", args[0])}
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			if err := a.client().ReplayAlert(ctx, id); err != nil {
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, wire.Empty{OK: true})
			}
			fmt.Fprintf(a.stdout, "alert %d is pending again\n", id)
			return nil
		},
	}
}

// completeChannels completes channel names for shells.
func (a *app) completeChannels(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	chs, err := a.client().AlertChannels(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, c := range chs {
		names = append(names, c.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
