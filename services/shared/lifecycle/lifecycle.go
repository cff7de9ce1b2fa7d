// Package lifecycle runs a service's main: it sets up logging, cancels the
// service's context on SIGINT or SIGTERM, and turns a startup or run error
// into a clear log line and exit status 1 instead of a panic.
package lifecycle

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fetchmesh/fetchmesh/services/shared/logging"
)

// Main runs run until it returns or a stop signal arrives, then exits the
// process. run must stop its parts in dependency order once ctx is done
// (servers first, then the clients they used) and return.
func Main(service string, run func(ctx context.Context, log *slog.Logger) error) {
	log := logging.New(service)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, log)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("service failed", "err", err)
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
	log.Info("stopped")
}
