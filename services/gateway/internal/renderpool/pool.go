// Package renderpool is the gateway's side of the render pool: one lease
// stream to the coordinator per gateway process. URLs of a batch wait in
// Acquire; the pool states each batch's number of waiters to the
// coordinator, hands grants to waiters in order, cancels renders whose lease
// is revoked, and after a reconnect re-reports what it holds.
package renderpool

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// How long the pool may be unreachable or empty before URLs that need it
// get "render tier unavailable" instead of waiting (a coordinator restart
// or a node starting up takes less).
const (
	unreachableGrace = 10 * time.Second
	emptyGrace       = 5 * time.Second
)

// ErrUnavailable is returned by Acquire when the pool cannot serve.
var ErrUnavailable = errors.New("render tier unavailable")

// Lease is a granted slot. Done is closed if the coordinator revokes it.
type Lease struct {
	Grant  *rcv1.Grant
	ctx    context.Context
	revoke context.CancelFunc
}

// Revoked is done when the coordinator revoked the lease (its node was lost
// or it expired): the render under it must stop.
func (l *Lease) Revoked() context.Context { return l.ctx }

type waiter struct{ ch chan *Lease }

// Pool is safe for concurrent use.
type Pool struct {
	client  rcv1.RenderCoordinatorServiceClient
	id      string
	log     *slog.Logger
	started time.Time

	mu         sync.Mutex
	waiters    map[string][]*waiter // by batch, in arrival order
	held       map[string]*Lease    // by lease id
	dirty      map[string]bool      // batches whose demand must be sent
	releases   []*rcv1.Release      // releases to send
	trace      map[string]map[string]string
	connected  bool
	lastSeen   time.Time // last moment the stream was up
	slots      int
	sizeKnown  bool
	emptySince time.Time
	signal     chan struct{}
}

// New returns a pool for the gateway gatewayID.
func New(client rcv1.RenderCoordinatorServiceClient, gatewayID string, log *slog.Logger) *Pool {
	return &Pool{client: client, id: gatewayID, log: log, started: time.Now(),
		waiters: map[string][]*waiter{}, held: map[string]*Lease{}, dirty: map[string]bool{},
		trace: map[string]map[string]string{}, signal: make(chan struct{}, 1)}
}

func (p *Pool) kick() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// Unavailable says why the pool cannot take work now, or nil.
func (p *Pool) Unavailable() *commonv1.Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unavailableLocked(time.Now())
}

func (p *Pool) unavailableLocked(now time.Time) *commonv1.Error {
	since := p.started
	if p.lastSeen.After(since) {
		since = p.lastSeen
	}
	switch {
	case !p.connected && now.Sub(since) > unreachableGrace:
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, Message: "the render coordinator cannot be reached"}
	case p.connected && p.sizeKnown && p.slots == 0 && now.Sub(p.emptySince) > emptyGrace:
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, Message: "the render pool has no nodes"}
	}
	return nil
}

// Acquire waits for a slot for batch. It fails with ctx's error, or with
// ErrUnavailable when the pool stays unreachable or empty.
func (p *Pool) Acquire(ctx context.Context, batch string) (*Lease, error) {
	w := &waiter{ch: make(chan *Lease, 1)}
	// The demand carries the trace context, so the coordinator's wait span
	// joins this batch's trace.
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	p.mu.Lock()
	if len(carrier) > 0 {
		p.trace[batch] = carrier
	}
	p.waiters[batch] = append(p.waiters[batch], w)
	p.dirty[batch] = true
	p.mu.Unlock()
	p.kick()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case l := <-w.ch:
			return l, nil
		case <-ctx.Done():
			p.abandon(batch, w)
			return nil, ctx.Err()
		case <-check.C:
			if p.Unavailable() != nil {
				p.abandon(batch, w)
				return nil, ErrUnavailable
			}
		}
	}
}

// abandon removes a waiter; a lease handed to it meanwhile is given back.
func (p *Pool) abandon(batch string, w *waiter) {
	p.mu.Lock()
	ws := p.waiters[batch]
	for i, x := range ws {
		if x == w {
			p.waiters[batch] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(p.waiters[batch]) == 0 {
		delete(p.waiters, batch)
	}
	p.dirty[batch] = true
	p.mu.Unlock()
	select {
	case l := <-w.ch:
		p.Release(l, rcv1.ReleaseOutcome_RELEASE_OUTCOME_UNUSED)
	default:
	}
	p.kick()
}

// Release gives a lease back with how its render ended.
func (p *Pool) Release(l *Lease, outcome rcv1.ReleaseOutcome) {
	l.revoke()
	p.mu.Lock()
	delete(p.held, l.Grant.GetLeaseId())
	p.releases = append(p.releases, &rcv1.Release{LeaseId: l.Grant.GetLeaseId(), Epoch: l.Grant.GetEpoch(), Outcome: outcome})
	p.mu.Unlock()
	p.kick()
}

// Run holds the lease stream until ctx ends, reconnecting with backoff.
func (p *Pool) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := p.session(ctx)
		p.mu.Lock()
		if p.connected {
			p.lastSeen = time.Now()
		}
		p.connected = false
		p.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		p.log.Warn("lease stream ended; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)/2+1))):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (p *Pool) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.client.LeaseSession(ctx)
	if err != nil {
		return err
	}
	// Hello re-reports every held lease; pending releases are implied (a
	// lease not re-reported is freed by the coordinator after its grace),
	// and every batch's demand is sent again.
	p.mu.Lock()
	hello := &rcv1.LeaseHello{GatewayId: p.id}
	for _, l := range p.held {
		g := l.Grant
		hello.Held = append(hello.Held, &rcv1.HeldLease{LeaseId: g.GetLeaseId(), Epoch: g.GetEpoch(), BatchId: g.GetBatchId(), NodeId: g.GetNodeId(), Slot: g.GetSlot()})
	}
	p.releases = nil
	for b := range p.waiters {
		p.dirty[b] = true
	}
	p.mu.Unlock()
	if err := stream.Send(&rcv1.LeaseSessionRequest{Msg: &rcv1.LeaseSessionRequest_Hello{Hello: hello}}); err != nil {
		return err
	}
	p.mu.Lock()
	p.connected, p.lastSeen = true, time.Now()
	p.mu.Unlock()
	p.kick()

	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			p.receive(resp)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return err
		case <-p.signal:
		}
		for _, m := range p.outgoing() {
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

// outgoing takes the releases and changed demands to send.
func (p *Pool) outgoing() []*rcv1.LeaseSessionRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*rcv1.LeaseSessionRequest
	for _, r := range p.releases {
		out = append(out, &rcv1.LeaseSessionRequest{Msg: &rcv1.LeaseSessionRequest_Release{Release: r}})
	}
	p.releases = nil
	for b := range p.dirty {
		out = append(out, &rcv1.LeaseSessionRequest{Msg: &rcv1.LeaseSessionRequest_Demand{Demand: &rcv1.Demand{
			BatchId: b, Waiting: int32(len(p.waiters[b])), TraceContext: p.trace[b]}}})
		if len(p.waiters[b]) == 0 {
			delete(p.trace, b)
		}
	}
	clear(p.dirty)
	return out
}

func (p *Pool) receive(resp *rcv1.LeaseSessionResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch m := resp.GetMsg().(type) {
	case *rcv1.LeaseSessionResponse_Grant:
		g := m.Grant
		ws := p.waiters[g.GetBatchId()]
		ctx, cancel := context.WithCancel(context.Background())
		l := &Lease{Grant: g, ctx: ctx, revoke: cancel}
		if len(ws) == 0 {
			// Nobody waits any more (a demand crossed a grant): give it back.
			cancel()
			p.releases = append(p.releases, &rcv1.Release{LeaseId: g.GetLeaseId(), Epoch: g.GetEpoch(), Outcome: rcv1.ReleaseOutcome_RELEASE_OUTCOME_UNUSED})
			p.kick()
			return
		}
		p.waiters[g.GetBatchId()] = ws[1:]
		if len(ws) == 1 {
			delete(p.waiters, g.GetBatchId())
		}
		p.held[g.GetLeaseId()] = l
		ws[0].ch <- l
	case *rcv1.LeaseSessionResponse_Revoke:
		if l := p.held[m.Revoke.GetLeaseId()]; l != nil && l.Grant.GetEpoch() == m.Revoke.GetEpoch() {
			p.log.Warn("lease revoked", "lease_id", l.Grant.GetLeaseId(), "node_id", l.Grant.GetNodeId(), "reason", m.Revoke.GetReason())
			l.revoke()
		}
	case *rcv1.LeaseSessionResponse_PoolSize:
		p.sizeKnown = true
		if n := int(m.PoolSize.GetSlots()); n == 0 && (p.slots != 0 || p.emptySince.IsZero()) {
			p.emptySince = time.Now()
		}
		p.slots = int(m.PoolSize.GetSlots())
	}
}
