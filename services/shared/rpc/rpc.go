// Package rpc builds the mesh's gRPC servers and client connections with the
// same limits, keepalive policy, health service and reflection everywhere.
package rpc

import (
	"fmt"
	"time"

	"github.com/fetchmesh/fetchmesh/client/wire"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// MaxMessageBytes bounds one gRPC message between services: a page body of
// at most 32 MiB plus headers and framing.
const MaxMessageBytes = 40 << 20

// Keepalive: clients ping idle connections every 30 s; servers accept pings
// down to every 10 s, so the two never disagree into a GOAWAY. Keepalive
// only sees dead connections: liveness of work is the callers' deadlines.
var (
	clientKeepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}
	serverKeepalive = keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}
	serverPolicy    = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
)

// Pages are large messages: fixed windows and buffers sized for them move a
// 100 KB page in a few frames and syscalls instead of many small ones.
const (
	streamWindow = 4 << 20
	connWindow   = 32 << 20
	ioBuffer     = 256 << 10
)

// Server is a gRPC server with health and reflection registered.
type Server struct {
	*grpc.Server
	Health *health.Server
}

// NewServer returns a server whose messages may be up to maxRecv bytes
// (MaxMessageBytes when 0). Register services on it, then call Serving.
func NewServer(maxRecv int, opts ...grpc.ServerOption) *Server {
	if maxRecv <= 0 {
		maxRecv = MaxMessageBytes
	}
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(serverKeepalive),
		grpc.KeepaliveEnforcementPolicy(serverPolicy),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.WriteBufferSize(ioBuffer),
		grpc.ReadBufferSize(ioBuffer),
		experimental.BufferPool(wire.BufferPool),
		grpc.ForceServerCodecV2(wire.Codec{}),
	}
	// Traces through the stats handler (not interceptors), so streams and
	// unary calls alike join the caller's trace; health checks are left out.
	base = append(base, grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))))
	s := grpc.NewServer(append(base, opts...)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return &Server{Server: s, Health: hs}
}

// Serving marks the server and each named service as serving in the
// health service.
func (s *Server) Serving(services ...string) {
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range services {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

// Dial opens a lazily-connecting client to a mesh service at addr
// (host:port). Messages may be up to MaxMessageBytes each way.
func Dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(clientKeepalive),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes), grpc.ForceCodecV2(wire.Codec{})),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithWriteBufferSize(ioBuffer),
		grpc.WithReadBufferSize(ioBuffer),
		experimental.WithBufferPool(wire.BufferPool),
		// A headless Service resolves to every pod: spread calls over them.
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	}
	cc, err := grpc.NewClient(addr, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return cc, nil
}
