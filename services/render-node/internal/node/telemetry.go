package node

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

var (
	tracer           = otel.Tracer("github.com/fetchmesh/fetchmesh/services/render-node")
	meter            = otel.Meter("github.com/fetchmesh/fetchmesh/services/render-node")
	pagesRendered, _ = meter.Int64Counter("fetchmesh.render.pages", metric.WithDescription("Pages rendered, by verdict"))
)

// RegisterMetrics publishes the node's browser state: restarts, busy slots
// and the browser's process-tree memory (PSS, read at each scrape).
func (n *Node) RegisterMetrics() error {
	restarts, _ := meter.Int64ObservableCounter("fetchmesh.render.browser.restarts", metric.WithDescription("Browser restarts"))
	busy, _ := meter.Int64ObservableGauge("fetchmesh.render.node.busy", metric.WithDescription("Slots rendering now"))
	mem, _ := meter.Int64ObservableGauge("fetchmesh.render.browser.memory", metric.WithUnit("By"), metric.WithDescription("PSS of the browser's process tree"))
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		n.mu.Lock()
		r, b := n.restarts, n.busy()
		n.mu.Unlock()
		o.ObserveInt64(restarts, r)
		o.ObserveInt64(busy, int64(b))
		o.ObserveInt64(mem, n.renderer.MemoryBytes())
		return nil
	}, restarts, busy, mem)
	return err
}
