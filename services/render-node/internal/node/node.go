// Package node is a render node's logic: which leases it serves in which
// slot, when its browser is restarted or cooled down, and the state it
// reports to the coordinator. The gRPC handler and the coordinator session
// are thin layers over it.
package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Config says how the node treats its browser.
type Config struct {
	Slots int
	// RestartEveryPages restarts the browser after this many pages (0: never).
	RestartEveryPages int64
	// MemoryCapBytes restarts the browser when its process tree's PSS passes
	// this (0: no cap).
	MemoryCapBytes int64
	// HealthEvery is how often the browser is asked for a sign of life.
	HealthEvery time.Duration
	// Cooldowns: after a browser restart, after a page rendered as blocked,
	// and every CooldownEveryPages pages (for CooldownDuration). Zero is off.
	CooldownAfterRestart time.Duration
	CooldownAfterBlock   time.Duration
	CooldownEveryPages   int64
	CooldownDuration     time.Duration
	// Guard checks a page's host before Chrome is asked to load it, so a
	// refused address gets a clear error (the proxy enforces it regardless).
	Guard *ssrf.Guard
}

// Node is one render node.
type Node struct {
	cfg      Config
	renderer render.Renderer
	log      *slog.Logger

	mu            sync.Mutex
	slots         []*active // per slot, nil when free
	slotEpoch     []uint64  // newest lease epoch seen per slot
	coolingUntil  time.Time
	coolingReason string
	restarting    bool
	draining      bool
	pages         int64
	restarts      int64
	idle          *sync.Cond // signalled when a render ends
	changed       chan struct{}
}

// active is a render in progress under a lease.
type active struct {
	lease  string
	epoch  uint64
	batch  string
	cancel context.CancelFunc
}

// New returns a node over r.
func New(cfg Config, r render.Renderer, log *slog.Logger) *Node {
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = 5 * time.Second
	}
	if cfg.CooldownDuration <= 0 {
		cfg.CooldownDuration = 2 * time.Minute
	}
	n := &Node{cfg: cfg, renderer: r, log: log, slots: make([]*active, cfg.Slots), slotEpoch: make([]uint64, cfg.Slots), changed: make(chan struct{}, 1)}
	n.idle = sync.NewCond(&n.mu)
	return n
}

// Changed signals when the node's state changed and should be reported.
func (n *Node) Changed() <-chan struct{} { return n.changed }

func (n *Node) signal() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// State is the node's full state, as reported to the coordinator.
func (n *Node) State() *rcv1.NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := &rcv1.NodeState{Draining: n.draining, PagesRendered: n.pages, BrowserRestarts: n.restarts}
	for slot, a := range n.slots {
		if a != nil {
			st.Leases = append(st.Leases, &rcv1.SlotLease{LeaseId: a.lease, Epoch: a.epoch, Slot: int32(slot), BatchId: a.batch})
		}
	}
	switch {
	case n.restarting:
		// Until the new browser is up: no grants. Reported as a short
		// cooldown that is renewed with every report.
		st.CoolingUntil, st.CoolingReason = timestamppb.New(time.Now().Add(time.Minute)), "browser restarting"
	case time.Now().Before(n.coolingUntil):
		st.CoolingUntil, st.CoolingReason = timestamppb.New(n.coolingUntil), n.coolingReason
	}
	return st
}

// ApplyValid cancels renders whose lease the coordinator no longer holds
// valid (revoked or expired): leases at or below its epoch mark that it
// does not list.
func (n *Node) ApplyValid(resp *rcv1.NodeSessionResponse) {
	valid := map[string]bool{}
	for _, l := range resp.GetValidLeases() {
		valid[l.GetLeaseId()] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range n.slots {
		if a != nil && a.epoch <= resp.GetValidThroughEpoch() && !valid[a.lease] {
			n.log.Info("lease revoked by the coordinator; render canceled", "lease_id", a.lease)
			a.cancel()
		}
	}
}

// coolDown extends the cooldown to at least d from now.
func (n *Node) coolDown(d time.Duration, reason string) {
	if d <= 0 {
		return
	}
	if until := time.Now().Add(d); until.After(n.coolingUntil) {
		n.coolingUntil, n.coolingReason = until, reason
		n.log.Info("cooling down", "until", until, "reason", reason)
	}
}

// Drain stops taking renders and waits (at most until ctx ends) for the
// ones in flight.
func (n *Node) Drain(ctx context.Context) {
	n.mu.Lock()
	n.draining = true
	n.mu.Unlock()
	n.signal()
	n.waitIdle(ctx)
}

// waitIdle waits until no render is in flight or ctx ends.
func (n *Node) waitIdle(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		n.mu.Lock()
		n.idle.Broadcast()
		n.mu.Unlock()
	})
	defer stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.busy() > 0 && ctx.Err() == nil {
		n.idle.Wait()
	}
}

func (n *Node) busy() int {
	c := 0
	for _, a := range n.slots {
		if a != nil {
			c++
		}
	}
	return c
}
