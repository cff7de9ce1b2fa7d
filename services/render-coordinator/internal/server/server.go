// Package server carries the coordinator's gRPC streams to package pool.
// Each stream has one goroutine that receives and one that sends.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/render-coordinator/internal/pool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server implements RenderCoordinatorService.
type Server struct {
	rcv1.UnimplementedRenderCoordinatorServiceServer
	pool *pool.Coordinator
	log  *slog.Logger
	stop <-chan struct{} // closed when the service stops: long streams end then
}

// New returns the service over p; its streams end when ctx does, so a
// graceful stop does not wait on streams that never finish by themselves.
func New(ctx context.Context, p *pool.Coordinator, log *slog.Logger) *Server {
	return &Server{pool: p, log: log, stop: ctx.Done()}
}

// Tick drives the coordinator's deadlines until ctx ends.
func (s *Server) Tick(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.pool.Tick()
		}
	}
}

// NodeSession serves one render node: register, then one answer per report.
func (s *Server) NodeSession(stream rcv1.RenderCoordinatorService_NodeSessionServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetInfo() == nil {
		return status.Error(codes.InvalidArgument, "the first message of a node session must carry NodeInfo")
	}
	sess := &pool.NodeSession{}
	defer s.pool.NodeDisconnected(sess)
	reqs := make(chan *rcv1.NodeSessionRequest, 1)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			req.Info = nil // identity is fixed by the first message
			select {
			case reqs <- req:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	req := first
	for {
		resp, err := s.pool.NodeReport(sess, req.GetInfo(), req.GetState())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case req = <-reqs:
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-s.stop:
			return status.Error(codes.Unavailable, "coordinator stopping")
		}
	}
}

// LeaseSession serves one gateway.
func (s *Server) LeaseSession(stream rcv1.RenderCoordinatorService_LeaseSessionServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "the first message of a lease session must be a hello")
	}
	g := s.pool.GatewayConnect(first.GetHello())
	defer s.pool.GatewayGone(g)
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sendErr := make(chan error, 1)
	go func() { sendErr <- send(ctx, stream, g) }()
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			switch m := req.GetMsg().(type) {
			case *rcv1.LeaseSessionRequest_Demand:
				s.pool.Demand(g, m.Demand.GetBatchId(), int(m.Demand.GetWaiting()), m.Demand.GetTraceContext())
			case *rcv1.LeaseSessionRequest_Release:
				s.pool.Release(g, m.Release.GetLeaseId(), m.Release.GetEpoch(), m.Release.GetOutcome())
			}
		}
	}()
	select {
	case err := <-recvErr:
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	case err := <-sendErr:
		return err
	case <-s.stop:
		return status.Error(codes.Unavailable, "coordinator stopping")
	}
}

func send(ctx context.Context, stream rcv1.RenderCoordinatorService_LeaseSessionServer, g *pool.GatewaySession) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.Outbox():
			for _, m := range g.Drain() {
				if err := stream.Send(m); err != nil {
					return err
				}
			}
		}
	}
}

// GetPoolStatus reports the pool.
func (s *Server) GetPoolStatus(context.Context, *rcv1.GetPoolStatusRequest) (*rcv1.GetPoolStatusResponse, error) {
	return &rcv1.GetPoolStatusResponse{Pool: s.pool.Status()}, nil
}
