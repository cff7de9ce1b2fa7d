// Package server is the decodo-proxy's gRPC handler over package scrape.
package server

import (
	"context"

	decodoproxyv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/decodoproxy/v1"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/scrape"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server implements DecodoProxyService.
type Server struct {
	decodoproxyv1.UnimplementedDecodoProxyServiceServer
	scraper *scrape.Scraper
}

// New returns the service.
func New(s *scrape.Scraper) *Server { return &Server{scraper: s} }

// Scrape fetches one URL through Decodo.
func (s *Server) Scrape(ctx context.Context, req *decodoproxyv1.ScrapeRequest) (*decodoproxyv1.ScrapeResponse, error) {
	if req.GetUrl() == "" {
		return nil, status.Error(codes.InvalidArgument, "url is required")
	}
	if req.GetMaxBodyBytes() < 0 || req.GetMaxBodyBytes() > 32<<20 {
		return nil, status.Error(codes.InvalidArgument, "max_body_bytes must be 0..33554432")
	}
	resp := s.scraper.Scrape(ctx, req)
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	return resp, nil
}

// GetUsage reports the budget and breaker.
func (s *Server) GetUsage(context.Context, *decodoproxyv1.GetUsageRequest) (*decodoproxyv1.GetUsageResponse, error) {
	return s.scraper.Usage(), nil
}
