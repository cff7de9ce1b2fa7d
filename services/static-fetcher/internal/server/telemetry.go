package server

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

var (
	tracer = otel.Tracer("github.com/fetchmesh/fetchmesh/services/static-fetcher")
	meter  = otel.Meter("github.com/fetchmesh/fetchmesh/services/static-fetcher")

	fetchTime, _ = meter.Float64Histogram("fetchmesh.static.fetch.duration", metric.WithUnit("s"), metric.WithDescription("Time of one static fetch"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	wireBytes, _ = meter.Int64Counter("fetchmesh.static.wire", metric.WithUnit("By"), metric.WithDescription("Body bytes received on the wire (compressed)"))
	bodyBytes, _ = meter.Int64Counter("fetchmesh.static.body", metric.WithUnit("By"), metric.WithDescription("Body bytes after decompression"))
)
