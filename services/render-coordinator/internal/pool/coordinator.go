// Package pool is the render coordinator's logic: the node registry, the
// lease table, the fair queue of waiting batches and the deadlines, under one
// lock, with an injected clock. The gRPC streams in package server only feed
// it messages and carry its answers.
package pool

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Config holds the coordinator's timings.
type Config struct {
	// HeartbeatInterval is how often nodes are asked to report.
	HeartbeatInterval time.Duration
	// HeartbeatGrace is how long past its interval a node may stay silent
	// before it is removed and its leases revoked.
	HeartbeatGrace time.Duration
	// LeaseTTL bounds a lease: one not released by then is revoked.
	LeaseTTL time.Duration
	// GatewayGrace keeps a disconnected gateway's leases this long, so a
	// reconnecting gateway (or a restarting coordinator's) loses nothing.
	GatewayGrace time.Duration
	// ArrivalWindow: when a batch starts waiting while slots are free,
	// grants wait this long so that batches arriving together share the
	// free slots round-robin instead of the first taking them all. 0 turns
	// it off; it costs a new batch at most this much latency.
	ArrivalWindow time.Duration
}

// DefaultConfig is used for zero fields.
var DefaultConfig = Config{
	HeartbeatInterval: time.Second,
	HeartbeatGrace:    2 * time.Second,
	LeaseTTL:          3 * time.Minute,
	GatewayGrace:      10 * time.Second,
}

// MaxSlotsPerNode bounds what a node may register.
const MaxSlotsPerNode = 200

// Stats are counters since start, for metrics and tests.
type Stats struct {
	Grants, Releases, StaleIgnored, Revoked, NodesRegistered, NodesLost int64
}

// Coordinator is the pool's state. Safe for concurrent use.
type Coordinator struct {
	mu        sync.Mutex
	cfg       Config
	now       func() time.Time
	log       *slog.Logger
	epoch     uint64 // last lease epoch issued; only grows
	nodes     *registry
	leases    *leaseTable
	queue     fairQueue
	deadlines deadlineHeap
	gateways  map[*GatewaySession]bool
	nextSweep time.Time // when lease expiries are next checked
	poolSize  [2]int    // nodes, slots last announced to gateways
	holdUntil time.Time // no grants before this (the arrival window)
	stats     Stats
}

// New returns a coordinator using clock for time (time.Now in production).
func New(cfg Config, clock func() time.Time, log *slog.Logger) *Coordinator {
	d := DefaultConfig
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = d.HeartbeatInterval
	}
	if cfg.HeartbeatGrace <= 0 {
		cfg.HeartbeatGrace = d.HeartbeatGrace
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = d.LeaseTTL
	}
	if cfg.GatewayGrace <= 0 {
		cfg.GatewayGrace = d.GatewayGrace
	}
	nodes := newRegistry()
	return &Coordinator{
		cfg: cfg, now: clock, log: log,
		// Epochs start from the clock so that they keep growing across a
		// coordinator restart: a new lease is always newer than any old one.
		epoch:    uint64(clock().UnixNano()),
		nodes:    nodes,
		leases:   newLeaseTable(nodes),
		gateways: map[*GatewaySession]bool{},
	}
}

// Stats returns the counters.
func (c *Coordinator) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// NodeSession is one node stream.
type NodeSession struct{ nodeID string }

// ErrBadRegistration is returned for a first message without a valid NodeInfo.
var ErrBadRegistration = errors.New("bad node registration")

// NodeReport applies a node's report: a registration when info is set (the
// first message of a stream), then its full state. It answers with when the
// next report is due and the leases held valid on the node.
func (c *Coordinator) NodeReport(s *NodeSession, info *rcv1.NodeInfo, state *rcv1.NodeState) (*rcv1.NodeSessionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var n *node
	if info != nil {
		if info.GetNodeId() == "" || info.GetAddress() == "" || info.GetSlots() < 1 || info.GetSlots() > MaxSlotsPerNode {
			return nil, fmt.Errorf("%w: node_id and address are required and slots must be 1..%d", ErrBadRegistration, MaxSlotsPerNode)
		}
		n = c.nodes.get(info.GetNodeId())
		if n != nil && (n.addr != info.GetAddress() || len(n.leases) != int(info.GetSlots())) {
			// Same id, new shape: a new node under an old name.
			c.removeNode(n, "node re-registered with a new address or slot count")
			n = nil
		}
		if n == nil {
			n = c.nodes.add(info)
			c.stats.NodesRegistered++
			c.log.Info("node registered", "node_id", n.id, "address", n.addr, "slots", len(n.leases))
		}
		n.version = info.GetVersion()
		s.nodeID = n.id
		n.session = s
	} else {
		n = c.nodes.get(s.nodeID)
		if n == nil || n.session != s {
			return nil, fmt.Errorf("node %q is not registered on this stream", s.nodeID)
		}
	}
	n.connected = true
	n.deadline = now.Add(c.cfg.HeartbeatInterval + c.cfg.HeartbeatGrace)
	c.deadlines.add(deadline{at: n.deadline, kind: nodeHeartbeat, node: n})
	c.applyState(n, state, now)
	c.announceSize()
	c.dispatch(now)
	return c.nodeResponse(n), nil
}

// applyState reconciles what the node says it holds with the lease table.
func (c *Coordinator) applyState(n *node, st *rcv1.NodeState, now time.Time) {
	wasCooling := n.cooling(now)
	n.coolingUntil, n.coolingReason = time.Time{}, ""
	if st.GetCoolingUntil() != nil {
		n.coolingUntil, n.coolingReason = st.GetCoolingUntil().AsTime(), st.GetCoolingReason()
		if n.cooling(now) {
			c.deadlines.add(deadline{at: n.coolingUntil, kind: coolingEnd, node: n})
		}
	}
	if wasCooling != n.cooling(now) {
		c.log.Info("node cooling", "node_id", n.id, "cooling", n.cooling(now), "reason", n.coolingReason)
	}
	n.draining, n.pages, n.restarts = st.GetDraining(), st.GetPagesRendered(), st.GetBrowserRestarts()
	for _, sl := range st.GetLeases() {
		slot := int(sl.GetSlot())
		if slot < 0 || slot >= len(n.leases) {
			continue
		}
		if l := c.leases.get(sl.GetLeaseId()); l != nil {
			if l.node != n || l.epoch != sl.GetEpoch() {
				c.stats.StaleIgnored++
			}
			continue
		}
		// A lease we do not know: adopt it if it is newer than anything seen
		// in that slot (we restarted and the node re-reports what it holds);
		// otherwise it is stale (already released or superseded): ignore it.
		if sl.GetEpoch() <= n.slotEpoch[slot] || n.leases[slot] != nil {
			c.stats.StaleIgnored++
			continue
		}
		l := &lease{id: sl.GetLeaseId(), epoch: sl.GetEpoch(), node: n, slot: slot, batch: sl.GetBatchId(),
			expires: now.Add(c.cfg.LeaseTTL), orphan: now.Add(c.cfg.GatewayGrace)}
		c.leases.put(l)
		c.epoch = max(c.epoch, l.epoch)
		c.deadlines.add(deadline{at: l.orphan, kind: leaseOrphan, l: l})
		c.log.Info("lease adopted from node report", "node_id", n.id, "lease_id", l.id, "slot", slot)
	}
}

func (c *Coordinator) nodeResponse(n *node) *rcv1.NodeSessionResponse {
	resp := &rcv1.NodeSessionResponse{
		HeartbeatWithin:   durationpb.New(c.cfg.HeartbeatInterval),
		ValidThroughEpoch: c.epoch,
	}
	for slot, l := range n.leases {
		if l != nil {
			resp.ValidLeases = append(resp.ValidLeases, &rcv1.SlotLease{LeaseId: l.id, Epoch: l.epoch, Slot: int32(slot), BatchId: l.batch})
		}
	}
	return resp
}

// NodeDisconnected marks a node's stream as gone: its slots are no longer
// granted, and unless it reports again before its deadline it is removed.
func (c *Coordinator) NodeDisconnected(s *NodeSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes.get(s.nodeID); n != nil && n.session == s {
		n.connected = false
	}
}

// removeNode drops a node and revokes its leases.
func (c *Coordinator) removeNode(n *node, reason string) {
	for _, l := range n.leases {
		if l != nil {
			c.revoke(l, reason)
		}
	}
	c.nodes.remove(n)
	c.stats.NodesLost++
	c.log.Warn("node removed", "node_id", n.id, "reason", reason)
	c.announceSize()
}

// revoke voids a lease and tells its gateway.
func (c *Coordinator) revoke(l *lease, reason string) {
	c.leases.drop(l)
	c.stats.Revoked++
	if l.gw != nil {
		l.gw.push(&rcv1.LeaseSessionResponse{Msg: &rcv1.LeaseSessionResponse_Revoke{Revoke: &rcv1.Revoke{LeaseId: l.id, Epoch: l.epoch, Reason: reason}}})
	}
}

// dispatch grants free slots to waiting batches, round-robin.
func (c *Coordinator) dispatch(now time.Time) {
	if now.Before(c.holdUntil) {
		return
	}
	for c.queue.len() > 0 {
		n, slot := c.nodes.pickFree(now)
		if n == nil {
			return
		}
		d := c.queue.pop()
		c.epoch++
		l := &lease{id: leaseID(c.epoch), epoch: c.epoch, node: n, slot: slot, batch: d.batch, gw: d.gw, expires: now.Add(c.cfg.LeaseTTL)}
		c.leases.put(l)
		d.waiting--
		waitSpan(d, l, now)
		d.turn = now
		if d.waiting <= 0 {
			c.queue.remove(d)
			d.since = time.Time{}
		}
		c.stats.Grants++
		d.gw.push(&rcv1.LeaseSessionResponse{Msg: &rcv1.LeaseSessionResponse_Grant{Grant: &rcv1.Grant{
			LeaseId: l.id, Epoch: l.epoch, BatchId: l.batch, NodeId: n.id, NodeAddress: n.addr,
			Slot: int32(slot), ExpiresAt: timestamppb.New(l.expires),
		}}})
	}
}

// announceSize tells every gateway the pool's size when it changed.
func (c *Coordinator) announceSize() {
	nodes, slots := c.nodes.size()
	if [2]int{nodes, slots} == c.poolSize {
		return
	}
	c.poolSize = [2]int{nodes, slots}
	for gw := range c.gateways {
		gw.push(c.sizeMsg())
	}
}

func (c *Coordinator) sizeMsg() *rcv1.LeaseSessionResponse {
	return &rcv1.LeaseSessionResponse{Msg: &rcv1.LeaseSessionResponse_PoolSize{PoolSize: &rcv1.PoolSize{Nodes: int32(c.poolSize[0]), Slots: int32(c.poolSize[1])}}}
}

// Tick applies every deadline due by the clock's now.
func (c *Coordinator) Tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	// Leases expire rarely (a gateway that stopped releasing): one sweep a
	// second over the table costs less than a heap entry per grant.
	if !now.Before(c.nextSweep) {
		c.nextSweep = now.Add(time.Second)
		for _, l := range c.leases.byID {
			if !now.Before(l.expires) {
				c.revoke(l, "lease expired")
			}
		}
	}
	for _, d := range c.deadlines.due(now) {
		switch d.kind {
		case nodeHeartbeat:
			if c.nodes.get(d.node.id) == d.node && !now.Before(d.node.deadline) {
				c.removeNode(d.node, "missed its heartbeat deadline")
			}
		case leaseOrphan:
			if c.leases.get(d.l.id) == d.l && d.l.gw == nil && !now.Before(d.l.orphan) {
				c.leases.drop(d.l)
				c.log.Info("orphaned lease freed", "lease_id", d.l.id, "node_id", d.l.node.id)
			}
		case coolingEnd:
		}
	}
	c.dispatch(now)
}

// Status reports the pool.
func (c *Coordinator) Status() *commonv1.PoolStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	st := &commonv1.PoolStatus{}
	for _, n := range c.nodes.order {
		ns := &commonv1.NodeStatus{NodeId: n.id, Address: n.addr, Version: n.version, SlotsTotal: int32(len(n.leases)),
			SlotsBusy: int32(len(n.leases) - n.free), Cooling: n.cooling(now), Draining: n.draining, PagesRendered: n.pages}
		if n.cooling(now) || n.draining || !n.connected {
			ns.SlotsCooling = int32(n.free)
		} else {
			ns.SlotsFree = int32(n.free)
		}
		if n.cooling(now) {
			ns.CoolingUntil = timestamppb.New(n.coolingUntil)
		}
		st.NodeStatuses = append(st.NodeStatuses, ns)
		st.Nodes++
		st.SlotsTotal += ns.SlotsTotal
		st.SlotsBusy += ns.SlotsBusy
		st.SlotsFree += ns.SlotsFree
		st.SlotsCooling += ns.SlotsCooling
	}
	waiting, oldest := c.queue.waiting()
	st.QueueLength = int32(waiting)
	st.BatchesWaiting = int32(c.queue.len())
	if !oldest.IsZero() {
		st.OldestWait = durationpb.New(now.Sub(oldest))
	}
	return st
}
