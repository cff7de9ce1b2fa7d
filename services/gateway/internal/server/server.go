// Package server is the gateway's gRPC transport over the batch engine.
package server

import (
	"context"

	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	rendercoordinatorv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxUnaryURLs bounds the unary Fetch call; larger batches stream.
const MaxUnaryURLs = 100

// Server implements GatewayService.
type Server struct {
	gatewayv1.UnimplementedGatewayServiceServer
	engine *batch.Engine
	// coordinator answers pool status; nil when the render tier is off.
	coordinator rendercoordinatorv1.RenderCoordinatorServiceClient
}

// New returns the gateway's service.
func New(engine *batch.Engine, coordinator rendercoordinatorv1.RenderCoordinatorServiceClient) *Server {
	return &Server{engine: engine, coordinator: coordinator}
}

// FetchBatch streams a batch's events as they happen.
func (s *Server) FetchBatch(req *gatewayv1.FetchBatchRequest, stream gatewayv1.GatewayService_FetchBatchServer) error {
	return s.engine.Run(stream.Context(), req.GetUrls(), req.GetOptions(), stream.Send)
}

// Fetch runs a small batch and answers with every result by index.
func (s *Server) Fetch(ctx context.Context, req *gatewayv1.FetchRequest) (*gatewayv1.FetchResponse, error) {
	if n := len(req.GetUrls()); n > MaxUnaryURLs {
		return nil, status.Errorf(codes.InvalidArgument, "Fetch takes 1 to %d URLs; this request has %d: use FetchBatch", MaxUnaryURLs, n)
	}
	resp := &gatewayv1.FetchResponse{Results: make([]*gatewayv1.UrlResult, len(req.GetUrls()))}
	err := s.engine.Run(ctx, req.GetUrls(), req.GetOptions(), func(ev *gatewayv1.FetchBatchResponse) error {
		switch e := ev.GetEvent().(type) {
		case *gatewayv1.FetchBatchResponse_Result:
			resp.Results[e.Result.GetIndex()] = e.Result
		case *gatewayv1.FetchBatchResponse_Summary:
			resp.Summary = e.Summary
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetPoolStatus reports the render pool through the coordinator.
func (s *Server) GetPoolStatus(ctx context.Context, _ *gatewayv1.GetPoolStatusRequest) (*gatewayv1.GetPoolStatusResponse, error) {
	if s.coordinator == nil {
		return nil, status.Error(codes.FailedPrecondition, "the render tier is not configured on this gateway")
	}
	resp, err := s.coordinator.GetPoolStatus(ctx, &rendercoordinatorv1.GetPoolStatusRequest{})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "the render coordinator did not answer: %s", status.Convert(err).Message())
	}
	return &gatewayv1.GetPoolStatusResponse{Pool: resp.GetPool()}, nil
}
