// Command static-fetcher serves the static tier: plain HTTP fetches with
// connect-time SSRF checks, classified.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	staticfetcherv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/staticfetcher/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"github.com/fetchmesh/fetchmesh/services/shared/telemetry"
	"github.com/fetchmesh/fetchmesh/services/static-fetcher/internal/fetcher"
	"github.com/fetchmesh/fetchmesh/services/static-fetcher/internal/server"
)

type cfg struct {
	telemetry.Flags
	Listen    string        `flag:"listen" default:"127.0.0.1:7101" help:"gRPC listen address"`
	SSRFAllow []string      `flag:"ssrf-allow" help:"comma-separated ip:port, ip or CIDR let past the SSRF guard (test sites only)"`
	SSRFDeny  []string      `flag:"ssrf-deny" help:"comma-separated ip:port always refused (the mesh's own services)"`
	Connect   time.Duration `flag:"connect-timeout" default:"10s" help:"TCP connect deadline"`
	FirstByte time.Duration `flag:"first-byte-timeout" default:"20s" help:"deadline from request sent to response headers"`
	BodyIdle  time.Duration `flag:"body-idle-timeout" default:"10s" help:"longest gap between body bytes"`
	Total     time.Duration `flag:"default-timeout" default:"30s" help:"whole-fetch deadline when the caller names none"`
	Redirects int           `flag:"max-redirects" default:"10" help:"redirects followed per fetch"`
}

func (c *cfg) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", c.Listen, err)
	}
	if c.Redirects < 0 || c.Redirects > 30 {
		return fmt.Errorf("-max-redirects %d is outside 0..30", c.Redirects)
	}
	return nil
}

func main() {
	lifecycle.Main("static-fetcher", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "static-fetcher", os.Args[1:]); err != nil {
			return err
		}
		tel, err := telemetry.Setup(ctx, "static-fetcher", telemetry.Version, c.MetricsListen, log)
		if err != nil {
			return err
		}
		defer tel.Shutdown(context.Background())
		guard, err := ssrf.New(ssrf.Options{Allow: c.SSRFAllow, Deny: c.SSRFDeny})
		if err != nil {
			return err
		}
		f := fetcher.New(guard, fetcher.Limits{
			Connect: c.Connect, FirstByte: c.FirstByte, BodyIdle: c.BodyIdle,
			DefaultTotal: c.Total, MaxRedirects: c.Redirects,
		})
		defer f.Close()
		lis, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return err
		}
		srv := rpc.NewServer(0)
		staticfetcherv1.RegisterStaticFetcherServiceServer(srv, server.New(f, log))
		srv.Serving(staticfetcherv1.StaticFetcherService_ServiceDesc.ServiceName)
		log.Info("serving", "grpc", lis.Addr().String(), "metrics", tel.MetricsAddr(), "ssrf_allow", c.SSRFAllow)
		return lifecycle.ServeGRPC(ctx, srv.Server, lis)
	})
}
