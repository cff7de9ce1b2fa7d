// Package server is the static-fetcher's gRPC transport: it validates a
// request and hands it to the fetcher.
package server

import (
	"context"
	"log/slog"

	staticfetcherv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/staticfetcher/v1"
	"github.com/fetchmesh/fetchmesh/services/static-fetcher/internal/fetcher"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server implements StaticFetcherService.
type Server struct {
	staticfetcherv1.UnimplementedStaticFetcherServiceServer
	fetcher *fetcher.Fetcher
	log     *slog.Logger
}

// New returns a server over f.
func New(f *fetcher.Fetcher, log *slog.Logger) *Server {
	return &Server{fetcher: f, log: log}
}

// Fetch fetches one URL. Fetch failures are in the response; gRPC errors
// are for invalid requests and cancellation.
func (s *Server) Fetch(ctx context.Context, req *staticfetcherv1.FetchRequest) (*staticfetcherv1.FetchResponse, error) {
	r := fetcher.Request{
		URL:          req.GetUrl(),
		Headers:      req.GetHeaders(),
		MaxBodyBytes: req.GetMaxBodyBytes(),
		Timeout:      req.GetTimeout().AsDuration(),
	}
	if r.URL == "" {
		return nil, status.Error(codes.InvalidArgument, "url is required")
	}
	if err := s.fetcher.Validate(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res := s.fetcher.Fetch(ctx, r)
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	if res.Error != nil {
		s.log.Debug("fetch failed", "batch_id", req.GetBatchId(), "kind", res.Error.GetKind().String(), "reason", res.Reason)
	}
	return &staticfetcherv1.FetchResponse{
		Verdict:   res.Verdict,
		Reason:    res.Reason,
		Page:      res.Page,
		Error:     res.Error,
		Timings:   res.Timings,
		WireBytes: res.WireBytes,
	}, nil
}
