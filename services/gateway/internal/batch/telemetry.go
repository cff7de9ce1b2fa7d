package batch

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/fetchmesh/fetchmesh/services/gateway/batch")

// Latency buckets in seconds, from a fast static fetch to a slow render.
var latencyBuckets = metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

// instruments are the gateway's metrics. Names follow OpenTelemetry's
// conventions (dots; Prometheus sees underscores and unit suffixes).
type instruments struct {
	batches    metric.Int64UpDownCounter
	held       metric.Int64UpDownCounter
	urlTime    metric.Float64Histogram
	attempt    metric.Float64Histogram
	results    metric.Int64Counter
	staticByte metric.Int64Counter
}

func newInstruments() instruments {
	m := otel.Meter("github.com/fetchmesh/fetchmesh/services/gateway")
	var i instruments
	i.batches, _ = m.Int64UpDownCounter("fetchmesh.gateway.batches.active", metric.WithDescription("Batches in flight"))
	i.held, _ = m.Int64UpDownCounter("fetchmesh.gateway.held", metric.WithUnit("By"), metric.WithDescription("Page bytes held in memory by batches in flight"))
	i.urlTime, _ = m.Float64Histogram("fetchmesh.url.duration", metric.WithUnit("s"), latencyBuckets, metric.WithDescription("End-to-end time of a URL, all tiers"))
	i.attempt, _ = m.Float64Histogram("fetchmesh.attempt.duration", metric.WithUnit("s"), latencyBuckets, metric.WithDescription("Time of one attempt on one tier"))
	i.results, _ = m.Int64Counter("fetchmesh.results", metric.WithDescription("Results sent, by outcome and tier"))
	i.staticByte, _ = m.Int64Counter("fetchmesh.static.received", metric.WithUnit("By"), metric.WithDescription("Body bytes the static tier returned (decompressed)"))
	return i
}

func attrs(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(kv...)
}

// traceID is the hex trace id of ctx's span ("" if none).
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
