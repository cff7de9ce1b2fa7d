// Package app wires a render node (real or simulated) and runs it: the
// gRPC server for gateways, the coordinator session, the browser watch, and
// an orderly stop (drain, then stop serving, then close the browser).
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	rendernodev1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendernode/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/node"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/server"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/session"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"github.com/fetchmesh/fetchmesh/services/shared/telemetry"
)

// Config is a render node's configuration.
type Config struct {
	telemetry.Flags
	Listen               string        `flag:"listen" default:"127.0.0.1:7103" help:"gRPC listen address"`
	Advertise            string        `flag:"advertise" help:"host:port gateways dial for renders (default: the bound listen address)"`
	Coordinator          string        `flag:"coordinator" default:"127.0.0.1:7102" help:"render-coordinator address; empty serves without registering"`
	NodeID               string        `flag:"node-id" help:"id in the pool (default: hostname and port)"`
	Slots                int           `flag:"slots" default:"20" help:"browser tabs rendering at once"`
	SSRFAllow            []string      `flag:"ssrf-allow" help:"comma-separated ip:port, ip or CIDR let past the SSRF guard (test sites only)"`
	SSRFDeny             []string      `flag:"ssrf-deny" help:"comma-separated ip:port always refused (the mesh's own services)"`
	RestartEveryPages    int64         `flag:"restart-every-pages" default:"1000" help:"restart the browser after this many pages (0: never)"`
	MemoryCapMB          int64         `flag:"memory-cap-mb" default:"0" help:"restart the browser when its process tree's PSS passes this (0: no cap)"`
	HealthEvery          time.Duration `flag:"health-every" default:"5s" help:"how often the browser is checked for life"`
	CooldownAfterRestart time.Duration `flag:"cooldown-after-restart" default:"2s" help:"no grants this long after a browser restart"`
	CooldownAfterBlock   time.Duration `flag:"cooldown-after-block" default:"0s" help:"no grants this long after a page rendered as blocked (0: off)"`
	CooldownEveryPages   int64         `flag:"cooldown-every-pages" default:"0" help:"cool down after this many pages (0: off)"`
	CooldownDuration     time.Duration `flag:"cooldown" default:"2m" help:"length of a cooldown after -cooldown-every-pages"`
	DrainTimeout         time.Duration `flag:"drain-timeout" default:"60s" help:"on stop, how long renders in flight may finish"`
}

// Validate checks the config.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", c.Listen, err)
	}
	if c.Slots < 1 || c.Slots > 200 {
		return fmt.Errorf("-slots %d is outside 1..200", c.Slots)
	}
	return nil
}

// Guard builds the SSRF guard from the config.
func (c *Config) Guard() (*ssrf.Guard, error) {
	return ssrf.New(ssrf.Options{Allow: c.SSRFAllow, Deny: c.SSRFDeny})
}

// Run serves until ctx ends.
func Run(ctx context.Context, log *slog.Logger, c Config, guard *ssrf.Guard, r render.Renderer) error {
	defer r.Close()
	tel, err := telemetry.Setup(ctx, "render-node", telemetry.Version, c.MetricsListen, log)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	lis, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	advertise := c.Advertise
	if advertise == "" {
		advertise = lis.Addr().String()
	}
	id := c.NodeID
	if id == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(lis.Addr().String())
		id = host + "-" + port
	}
	log = log.With("node_id", id)
	n := node.New(node.Config{
		Slots: c.Slots, RestartEveryPages: c.RestartEveryPages, MemoryCapBytes: c.MemoryCapMB << 20, HealthEvery: c.HealthEvery,
		CooldownAfterRestart: c.CooldownAfterRestart, CooldownAfterBlock: c.CooldownAfterBlock,
		CooldownEveryPages: c.CooldownEveryPages, CooldownDuration: c.CooldownDuration, Guard: guard,
	}, r, log)
	if err := n.RegisterMetrics(); err != nil {
		return err
	}
	srv := rpc.NewServer(0)
	rendernodev1.RegisterRenderNodeServiceServer(srv, server.New(n, id))
	srv.Serving(rendernodev1.RenderNodeService_ServiceDesc.ServiceName)

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go n.Watch(bg)
	if c.Coordinator != "" {
		conn, err := rpc.Dial(c.Coordinator)
		if err != nil {
			return err
		}
		defer conn.Close()
		info := &rcv1.NodeInfo{NodeId: id, Address: advertise, Slots: int32(c.Slots), Version: telemetry.Version}
		go session.Run(bg, rcv1.NewRenderCoordinatorServiceClient(conn), info, n, log)
	}
	log.Info("serving", "grpc", lis.Addr().String(), "metrics", tel.MetricsAddr(), "advertise", advertise, "slots", c.Slots, "coordinator", c.Coordinator)

	serveCtx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- lifecycle.ServeGRPC(serveCtx, srv.Server, lis) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Stop in order: drain (the coordinator stops granting, renders in
	// flight finish), stop serving, leave the pool, close the browser.
	dctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	n.Drain(dctx)
	cancel()
	time.Sleep(100 * time.Millisecond) // let the draining report reach the coordinator
	stopServe()
	err = <-served
	stopBG()
	return err
}
