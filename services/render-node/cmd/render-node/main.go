// Command render-node owns one headless Chromium and renders pages in
// slots leased by the render-coordinator. All of Chrome's traffic goes
// through the node's own SSRF-filtering proxy.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/fetchmesh/fetchmesh/services/render-node/internal/app"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/browser"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/proxy"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
)

type cfg struct {
	app.Config
	Chromium          string `flag:"chromium" help:"Chromium binary (default: chromium-headless-shell, else chromium or google-chrome, on PATH)"`
	RendererProcesses int    `flag:"renderer-processes" default:"8" help:"cap on Chrome's renderer processes; tabs reuse warm renderers (0: Chrome's default)"`
}

func main() {
	lifecycle.Main("render-node", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "render-node", os.Args[1:]); err != nil {
			return err
		}
		guard, err := c.Guard()
		if err != nil {
			return err
		}
		px, err := proxy.Start(guard, log)
		if err != nil {
			return err
		}
		defer px.Close()
		b, err := browser.Start(browser.Options{ExecPath: c.Chromium, ProxyAddr: px.Addr(), RendererProcesses: c.RendererProcesses}, log)
		if err != nil {
			return err
		}
		return app.Run(ctx, log, c.Config, guard, b)
	})
}
