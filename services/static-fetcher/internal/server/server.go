// Package server is the static-fetcher's gRPC transport: it validates a
// request and hands it to the fetcher.
package server

import (
	"context"
	"log/slog"

	staticfetcherv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/staticfetcher/v1"
	"github.com/fetchmesh/fetchmesh/services/static-fetcher/internal/fetcher"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
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
	ctx, span := tracer.Start(ctx, "static.fetch", trace.WithAttributes(attribute.String("url.full", r.URL)))
	defer span.End()
	res := s.fetcher.Fetch(ctx, r)
	verdict := attribute.String("fetchmesh.verdict", res.Verdict.String())
	span.SetAttributes(verdict, attribute.Int("http.response.status_code", int(res.Page.GetStatusCode())), attribute.Int64("fetchmesh.wire_bytes", res.WireBytes))
	if res.Error != nil {
		span.SetStatus(otelcodes.Error, res.Error.GetMessage())
	}
	fetchTime.Record(ctx, res.Timings.GetTotal().AsDuration().Seconds(), metric.WithAttributes(verdict))
	wireBytes.Add(ctx, res.WireBytes)
	bodyBytes.Add(ctx, res.Page.GetBodyBytes())
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	if res.Error != nil {
		s.log.DebugContext(ctx, "fetch failed", "batch_id", req.GetBatchId(), "kind", res.Error.GetKind().String(), "reason", res.Reason)
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
