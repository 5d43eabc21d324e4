package canaryd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/server"
	"github.com/canaryd/canaryd/internal/store/storeurl"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var path, logLevel, cpuProfile string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the gateway: SIGHUP reloads the config, SIGTERM drains and stops",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usageError{fmt.Errorf("--config is required")}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := storeurl.Open(ctx, cfg.Store, storeurl.Options{Logger: log})
			if err != nil {
				return err
			}
			defer st.Close()
			srv, err := server.New(ctx, cfg, server.Options{Logger: log, Plane: control.New(st, control.Options{Logger: log})})
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						next, err := config.Load(path)
						if err == nil {
							err = srv.Reload(ctx, next)
						}
						if err != nil {
							log.Error("reload refused; the running config stays", "err", err.Error())
						}
					}
				}
			}()
			return srv.Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the server stops (for tuning)")
	return cmd
}
