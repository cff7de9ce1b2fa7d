package pool

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/fetchmesh/fetchmesh/services/render-coordinator/pool")

// waitSpan records, in the batch's trace, the time the batch waited for
// this grant. Demands without trace context (benchmarks) cost nothing.
func waitSpan(d *demand, l *lease, now time.Time) {
	if len(d.trace) == 0 {
		return
	}
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier(d.trace))
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return
	}
	_, span := tracer.Start(ctx, "coordinator.wait", trace.WithTimestamp(d.turn), trace.WithAttributes(
		attribute.String("fetchmesh.batch.id", d.batch), attribute.String("fetchmesh.node.id", l.node.id),
		attribute.Int("fetchmesh.slot", l.slot), attribute.String("fetchmesh.lease.id", l.id)))
	span.End(trace.WithTimestamp(now))
}

// RegisterMetrics publishes the pool's state as observable metrics, read
// at each scrape.
func (c *Coordinator) RegisterMetrics() error {
	m := otel.Meter("github.com/fetchmesh/fetchmesh/services/render-coordinator")
	slots, _ := m.Int64ObservableGauge("fetchmesh.render.slots", metric.WithDescription("Render slots by state: busy, free, cooling"))
	total, _ := m.Int64ObservableGauge("fetchmesh.render.slots.capacity", metric.WithDescription("Render slots offered by all nodes"))
	nodes, _ := m.Int64ObservableGauge("fetchmesh.render.nodes", metric.WithDescription("Render nodes registered"))
	queue, _ := m.Int64ObservableGauge("fetchmesh.render.queue.length", metric.WithDescription("Slots wanted by batches and not yet granted"))
	oldest, _ := m.Float64ObservableGauge("fetchmesh.render.queue.oldest_wait", metric.WithUnit("s"), metric.WithDescription("How long the oldest waiting batch has waited"))
	grants, _ := m.Int64ObservableCounter("fetchmesh.render.grants", metric.WithDescription("Leases granted"))
	regs, _ := m.Int64ObservableCounter("fetchmesh.render.node.registrations", metric.WithDescription("Node registrations"))
	losses, _ := m.Int64ObservableCounter("fetchmesh.render.node.losses", metric.WithDescription("Nodes removed after a missed heartbeat deadline"))
	revoked, _ := m.Int64ObservableCounter("fetchmesh.render.leases.revoked", metric.WithDescription("Leases revoked (node lost or lease expired)"))
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := c.Status()
		o.ObserveInt64(slots, int64(st.GetSlotsBusy()), metric.WithAttributes(attribute.String("state", "busy")))
		o.ObserveInt64(slots, int64(st.GetSlotsFree()), metric.WithAttributes(attribute.String("state", "free")))
		o.ObserveInt64(slots, int64(st.GetSlotsCooling()), metric.WithAttributes(attribute.String("state", "cooling")))
		o.ObserveInt64(total, int64(st.GetSlotsTotal()))
		o.ObserveInt64(nodes, int64(st.GetNodes()))
		o.ObserveInt64(queue, int64(st.GetQueueLength()))
		o.ObserveFloat64(oldest, st.GetOldestWait().AsDuration().Seconds())
		s := c.Stats()
		o.ObserveInt64(grants, s.Grants)
		o.ObserveInt64(regs, s.NodesRegistered)
		o.ObserveInt64(losses, s.NodesLost)
		o.ObserveInt64(revoked, s.Revoked)
		return nil
	}, slots, total, nodes, queue, oldest, grants, regs, losses, revoked)
	return err
}
