package scrape

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

var (
	tracer        = otel.Tracer("github.com/fetchmesh/fetchmesh/services/decodo-proxy")
	meter         = otel.Meter("github.com/fetchmesh/fetchmesh/services/decodo-proxy")
	callCount, _  = meter.Int64Counter("fetchmesh.decodo.calls", metric.WithDescription("HTTP calls to Decodo, by answer status (0: no answer)"))
	retries, _    = meter.Int64Counter("fetchmesh.decodo.retries", metric.WithDescription("Retried calls to Decodo"))
	rejections, _ = meter.Int64Counter("fetchmesh.decodo.rejections", metric.WithDescription("Scrapes that ended without a page, by error kind"))
)

// RegisterMetrics publishes the daily budget: calls, billed calls, and
// what is left of the cap (-1 without a cap), and whether calls are paused.
func (s *Scraper) RegisterMetrics() error {
	left, _ := meter.Int64ObservableGauge("fetchmesh.decodo.budget.remaining", metric.WithDescription("Calls left today under the daily cap (-1: no cap)"))
	billed, _ := meter.Int64ObservableGauge("fetchmesh.decodo.billed.today", metric.WithDescription("Billed calls today (UTC)"))
	open, _ := meter.Int64ObservableGauge("fetchmesh.decodo.circuit.open", metric.WithDescription("1 while calls to Decodo are paused"))
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		calls, b, cap := s.budget.Today()
		remaining := int64(-1)
		if cap > 0 {
			remaining = max(cap-calls, 0)
		}
		o.ObserveInt64(left, remaining)
		o.ObserveInt64(billed, b)
		isOpen := int64(0)
		if s.breaker.Open() {
			isOpen = 1
		}
		o.ObserveInt64(open, isOpen)
		return nil
	}, left, billed, open)
	return err
}
