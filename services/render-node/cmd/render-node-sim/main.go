// Command render-node-sim is a SIMULATED render node for scale tests and
// benchmarks: it speaks the real protocols (registers, heartbeats, serves
// renders under leases) but its "browser" waits -render-time and returns a
// fixed page. It is not a render node; never deploy it as one.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/fetchmesh/fetchmesh/services/render-node/internal/app"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/sim"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
)

type cfg struct {
	app.Config
	RenderTime time.Duration `flag:"render-time" default:"3s" help:"how long each simulated render takes"`
}

func main() {
	lifecycle.Main("render-node-sim", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "render-node-sim", os.Args[1:]); err != nil {
			return err
		}
		return app.Run(ctx, log.With("simulated", true), c.Config, nil, &sim.Renderer{RenderTime: c.RenderTime})
	})
}
