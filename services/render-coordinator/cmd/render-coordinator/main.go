// Command render-coordinator serves the RenderCoordinatorService. Its logic lands with its own
// issue; until then every call answers Unimplemented, which the gateway
// reports per URL as "tier unavailable".
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	rendercoordinatorv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type cfg struct {
	Listen string `flag:"listen" default:"127.0.0.1:7102" help:"gRPC listen address"`
}

func (c *cfg) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", c.Listen, err)
	}
	return nil
}

type unimplemented struct {
	rendercoordinatorv1.UnimplementedRenderCoordinatorServiceServer
}

func main() {
	lifecycle.Main("render-coordinator", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "render-coordinator", os.Args[1:]); err != nil {
			return err
		}
		lis, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return err
		}
		srv := rpc.NewServer(0)
		rendercoordinatorv1.RegisterRenderCoordinatorServiceServer(srv, unimplemented{})
		srv.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		log.Info("serving", "grpc", lis.Addr().String())
		return lifecycle.ServeGRPC(ctx, srv.Server, lis)
	})
}
