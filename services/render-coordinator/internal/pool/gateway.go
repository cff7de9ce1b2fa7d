package pool

import (
	"sync"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
)

// GatewaySession is one gateway's lease stream. Messages for the gateway
// queue in an outbox that the stream's single sender drains, so the
// coordinator never blocks on a slow gateway while holding its lock.
type GatewaySession struct {
	id      string
	demands map[string]*demand // by batch id

	mu     sync.Mutex
	out    []*rcv1.LeaseSessionResponse
	signal chan struct{}
	closed bool
}

func (g *GatewaySession) push(m *rcv1.LeaseSessionResponse) {
	g.mu.Lock()
	if !g.closed {
		g.out = append(g.out, m)
	}
	g.mu.Unlock()
	select {
	case g.signal <- struct{}{}:
	default:
	}
}

// Outbox returns a channel that signals when messages are waiting, and
// Drain takes them.
func (g *GatewaySession) Outbox() <-chan struct{} { return g.signal }

// Drain returns the queued messages in order and empties the queue.
func (g *GatewaySession) Drain() []*rcv1.LeaseSessionResponse {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.out
	g.out = nil
	return out
}

// GatewayConnect starts a session from a gateway's hello: leases it says it
// holds are attached to it (or adopted, when this coordinator restarted and
// the node has not re-reported them yet).
func (c *Coordinator) GatewayConnect(hello *rcv1.LeaseHello) *GatewaySession {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	g := &GatewaySession{id: hello.GetGatewayId(), demands: map[string]*demand{}, signal: make(chan struct{}, 1)}
	c.gateways[g] = true
	for _, h := range hello.GetHeld() {
		if l := c.leases.get(h.GetLeaseId()); l != nil {
			if l.epoch == h.GetEpoch() {
				l.gw, l.orphan = g, time.Time{}
			}
			continue
		}
		n := c.nodes.get(h.GetNodeId())
		slot := int(h.GetSlot())
		if n == nil || slot < 0 || slot >= len(n.leases) || n.leases[slot] != nil || h.GetEpoch() <= n.slotEpoch[slot] {
			continue // its node is gone or the slot moved on: the gateway learns when it releases
		}
		l := &lease{id: h.GetLeaseId(), epoch: h.GetEpoch(), node: n, slot: slot, batch: h.GetBatchId(), gw: g, expires: now.Add(c.cfg.LeaseTTL)}
		c.leases.put(l)
		c.epoch = max(c.epoch, l.epoch)
	}
	nodes, slots := c.nodes.size()
	c.poolSize = [2]int{nodes, slots}
	g.push(c.sizeMsg())
	return g
}

// Demand sets how many more slots a batch waits for (0 withdraws it).
func (c *Coordinator) Demand(g *GatewaySession, batch string, waiting int, trace map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	d := g.demands[batch]
	if d == nil {
		if waiting <= 0 {
			return
		}
		d = &demand{gw: g, batch: batch}
		g.demands[batch] = d
	}
	d.trace = trace
	if waiting > 0 && d.waiting <= 0 {
		d.since, d.turn = now, now
		if n, _ := c.nodes.pickFree(now); n != nil && c.cfg.ArrivalWindow > 0 && !now.Before(c.holdUntil) {
			c.holdUntil = now.Add(c.cfg.ArrivalWindow)
		}
	}
	d.waiting = waiting
	if waiting <= 0 {
		c.queue.remove(d)
		delete(g.demands, batch)
		return
	}
	c.queue.add(d)
	c.dispatch(now)
}

// Release gives a lease back. A release naming an unknown lease or an older
// epoch is ignored (it was revoked or superseded).
func (c *Coordinator) Release(g *GatewaySession, id string, epoch uint64, outcome rcv1.ReleaseOutcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.leases.get(id)
	if l == nil || l.epoch != epoch {
		c.stats.StaleIgnored++
		return
	}
	c.leases.drop(l)
	c.stats.Releases++
	c.dispatch(c.now())
}

// GatewayGone ends a session: its batches leave the queue, and its leases
// are kept for GatewayGrace in case it reconnects.
func (c *Coordinator) GatewayGone(g *GatewaySession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	delete(c.gateways, g)
	for _, d := range g.demands {
		c.queue.remove(d)
	}
	g.mu.Lock()
	g.closed, g.out = true, nil
	g.mu.Unlock()
	for _, l := range c.leases.byID {
		if l.gw == g {
			l.gw, l.orphan = nil, now.Add(c.cfg.GatewayGrace)
			c.deadlines.add(deadline{at: l.orphan, kind: leaseOrphan, l: l})
		}
	}
}
