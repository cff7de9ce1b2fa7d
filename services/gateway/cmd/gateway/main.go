// Command gateway serves fetchmesh's public API over gRPC and REST.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	decodoproxyv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/decodoproxy/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	rendercoordinatorv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	staticfetcherv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/staticfetcher/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/renderpool"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/rest"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/server"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/tiers"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"github.com/fetchmesh/fetchmesh/services/shared/telemetry"
)

type cfg struct {
	telemetry.Flags
	Listen            string `flag:"listen" default:"127.0.0.1:7100" help:"gRPC listen address"`
	HTTPListen        string `flag:"http-listen" default:"127.0.0.1:7180" help:"REST and OpenAPI listen address"`
	StaticFetcher     string `flag:"static-fetcher" default:"127.0.0.1:7101" help:"static-fetcher address"`
	RenderCoordinator string `flag:"render-coordinator" help:"render-coordinator address; empty turns the render tier off"`
	DecodoProxy       string `flag:"decodo-proxy" help:"decodo-proxy address; empty turns the Decodo tier off"`
	DecodoMaxCalls    int    `flag:"decodo-max-calls" default:"100" help:"Decodo calls per batch when the batch names no budget"`
	EscalationWindow  int    `flag:"escalation-window" default:"1000" help:"URLs per batch that may wait for or run on the render and Decodo tiers"`
	MaxRequestBytes   int64  `flag:"max-request-bytes" default:"104857600" help:"largest request body (gRPC message or REST body)"`
}

func (c *cfg) Validate() error {
	for name, addr := range map[string]string{"listen": c.Listen, "http-listen": c.HTTPListen, "static-fetcher": c.StaticFetcher} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("-%s %q: %w", name, addr, err)
		}
	}
	if c.DecodoMaxCalls < 0 || c.EscalationWindow < 1 {
		return fmt.Errorf("-decodo-max-calls must be >= 0 and -escalation-window >= 1")
	}
	if c.MaxRequestBytes < 1<<20 {
		return fmt.Errorf("-max-request-bytes %d is below 1 MiB", c.MaxRequestBytes)
	}
	return nil
}

// gatewayID names this process in the pool: stable for its life, unique
// across restarts and replicas.
func gatewayID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b)
}

func main() {
	lifecycle.Main("gateway", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "gateway", os.Args[1:]); err != nil {
			return err
		}
		tel, err := telemetry.Setup(ctx, "gateway", telemetry.Version, c.MetricsListen, log)
		if err != nil {
			return err
		}
		defer tel.Shutdown(context.Background())
		staticConn, err := rpc.Dial(c.StaticFetcher)
		if err != nil {
			return err
		}
		defer staticConn.Close()
		t := batch.Tiers{Static: &tiers.Static{Client: staticfetcherv1.NewStaticFetcherServiceClient(staticConn)}}
		var coordinator rendercoordinatorv1.RenderCoordinatorServiceClient
		if c.RenderCoordinator != "" {
			conn, err := rpc.Dial(c.RenderCoordinator)
			if err != nil {
				return err
			}
			defer conn.Close()
			coordinator = rendercoordinatorv1.NewRenderCoordinatorServiceClient(conn)
			pool := renderpool.New(coordinator, gatewayID(), log)
			poolCtx, stopPool := context.WithCancel(context.Background())
			defer stopPool() // after the servers stopped: renders in flight keep their leases
			go pool.Run(poolCtx)
			render := &tiers.Render{Pool: pool}
			defer render.Close()
			t.Render = render
		}
		if c.DecodoProxy != "" {
			conn, err := rpc.Dial(c.DecodoProxy)
			if err != nil {
				return err
			}
			defer conn.Close()
			t.Decodo = &tiers.Decodo{Client: decodoproxyv1.NewDecodoProxyServiceClient(conn)}
		}
		engine := batch.NewEngine(t, batch.Config{DecodoMaxCalls: c.DecodoMaxCalls, EscalationWindow: c.EscalationWindow}, log)

		lis, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return err
		}
		httpLis, err := net.Listen("tcp", c.HTTPListen)
		if err != nil {
			lis.Close()
			return err
		}
		srv := rpc.NewServer(int(c.MaxRequestBytes))
		gatewayv1.RegisterGatewayServiceServer(srv, server.New(engine, coordinator))
		srv.Serving(gatewayv1.GatewayService_ServiceDesc.ServiceName)

		handler, closeREST, err := rest.New(ctx, lis.Addr().String(), c.MaxRequestBytes)
		if err != nil {
			return err
		}
		defer closeREST()
		httpSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

		log.Info("serving", "grpc", lis.Addr().String(), "metrics", tel.MetricsAddr(), "rest", "http://"+httpLis.Addr().String(),
			"openapi", "http://"+httpLis.Addr().String()+"/openapi.json", "render", c.RenderCoordinator != "", "decodo", c.DecodoProxy != "")
		// Stop order: REST first (it calls the gRPC server), then gRPC.
		g := lifecycle.NewGroup(ctx)
		restDone := make(chan struct{})
		g.Go(func(ctx context.Context) error {
			defer close(restDone)
			return lifecycle.ServeHTTP(ctx, httpSrv, httpLis)
		})
		g.Go(func(ctx context.Context) error {
			errc := make(chan error, 1)
			gctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { errc <- lifecycle.ServeGRPC(gctx, srv.Server, lis) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			<-restDone
			cancel()
			return <-errc
		})
		return g.Wait()
	})
}
