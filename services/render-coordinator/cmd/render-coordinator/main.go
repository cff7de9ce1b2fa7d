// Command render-coordinator serves the render pool's control plane: node
// registry, slot leases and fair queueing across batches.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/render-coordinator/internal/pool"
	"github.com/fetchmesh/fetchmesh/services/render-coordinator/internal/server"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"github.com/fetchmesh/fetchmesh/services/shared/telemetry"
)

type cfg struct {
	telemetry.Flags
	Listen            string        `flag:"listen" default:"127.0.0.1:7102" help:"gRPC listen address"`
	HeartbeatInterval time.Duration `flag:"heartbeat-interval" default:"1s" help:"how often nodes report"`
	HeartbeatGrace    time.Duration `flag:"heartbeat-grace" default:"2s" help:"silence past the interval after which a node is removed"`
	LeaseTTL          time.Duration `flag:"lease-ttl" default:"3m" help:"a lease not released by then is revoked"`
	GatewayGrace      time.Duration `flag:"gateway-grace" default:"10s" help:"how long a disconnected gateway's leases are kept"`
	ArrivalWindow     time.Duration `flag:"arrival-window" default:"50ms" help:"when a batch starts waiting on a pool with free slots, grants wait this long so batches arriving together share them (0: off)"`
}

func (c *cfg) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", c.Listen, err)
	}
	if c.HeartbeatInterval < 50*time.Millisecond || c.LeaseTTL < time.Second {
		return fmt.Errorf("-heartbeat-interval must be >= 50ms and -lease-ttl >= 1s")
	}
	return nil
}

func main() {
	lifecycle.Main("render-coordinator", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "render-coordinator", os.Args[1:]); err != nil {
			return err
		}
		tel, err := telemetry.Setup(ctx, "render-coordinator", telemetry.Version, c.MetricsListen, log)
		if err != nil {
			return err
		}
		defer tel.Shutdown(context.Background())
		p := pool.New(pool.Config{HeartbeatInterval: c.HeartbeatInterval, HeartbeatGrace: c.HeartbeatGrace,
			LeaseTTL: c.LeaseTTL, GatewayGrace: c.GatewayGrace, ArrivalWindow: c.ArrivalWindow}, time.Now, log)
		if err := p.RegisterMetrics(); err != nil {
			return err
		}
		lis, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return err
		}
		svc := server.New(ctx, p, log)
		// Deadlines are seconds; the arrival window is tens of milliseconds.
		go svc.Tick(ctx, 10*time.Millisecond)
		srv := rpc.NewServer(0)
		rcv1.RegisterRenderCoordinatorServiceServer(srv, svc)
		srv.Serving(rcv1.RenderCoordinatorService_ServiceDesc.ServiceName)
		log.Info("serving", "grpc", lis.Addr().String(), "metrics", tel.MetricsAddr())
		return lifecycle.ServeGRPC(ctx, srv.Server, lis)
	})
}
