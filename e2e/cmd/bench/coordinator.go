package main

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
)

// benchCoordinator drives the real coordinator process over its real gRPC
// streams: nodes simulated nodes register and heartbeat, gateways simulated
// gateways keep the pool saturated and release every grant at once (no
// render). It measures grants per second and the time from a release to the
// grant of the slot it freed.
func benchCoordinator(ctx context.Context, binDir string, nodes, slots, gateways int, dur time.Duration) error {
	// Releasing every grant at once keeps all 4,000 slots cycling: that
	// measures throughput, but by Little's law its latency is only 4,000
	// divided by the throughput. Latency is measured in a second run that
	// holds each lease so the pool cycles at 20,000 grants/s (15x the real
	// demand of 4,000 slots with 3 s renders).
	rate, p50, p99, err := coordinatorRun(ctx, binDir, nodes, slots, gateways, dur, 0)
	if err != nil {
		return err
	}
	hold := time.Duration(float64(nodes*slots) / 20000 * float64(time.Second))
	rate2, p50h, p99h, err := coordinatorRun(ctx, binDir, nodes, slots, gateways, dur, hold)
	if err != nil {
		return err
	}
	report("coordinator_grants_per_s", rate, "grants/s", fmt.Sprintf("%d simulated nodes x %d slots, %d simulated gateways releasing each grant at once, real gRPC streams on loopback (p50/p99 release-to-grant %.1f/%.1f ms at that saturation); target >= 20000", nodes, slots, gateways, p50, p99))
	report("coordinator_p99_grant_ms", p99h, "ms", fmt.Sprintf("p99 from a release to the grant of the freed slot at %.0f grants/s (leases held %s on average, exponentially distributed; p50 %.2f ms); target < 5", rate2, hold, p50h))
	return nil
}

// coordinatorRun runs the coordinator under load and returns grants/s and
// the p50 and p99 release-to-grant latency in ms.
func coordinatorRun(ctx context.Context, binDir string, nodes, slots, gateways int, dur, hold time.Duration) (float64, float64, float64, error) {
	p, err := mesh.StartProc("render-coordinator", filepath.Join(binDir, "render-coordinator"), []string{"-listen", "127.0.0.1:0"}, strings.Fields(os.Getenv("BENCH_COORD_ENV")), io.Discard)
	if err != nil {
		return 0, 0, 0, err
	}
	defer p.Stop(5 * time.Second)
	addr := p.Addrs["grpc"]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	nodeConn, err := rpc.Dial(addr)
	if err != nil {
		return 0, 0, 0, err
	}
	defer nodeConn.Close()
	nc := rcv1.NewRenderCoordinatorServiceClient(nodeConn)
	var registered sync.WaitGroup
	for i := range nodes {
		registered.Add(1)
		go simNode(ctx, nc, fmt.Sprintf("bench-node-%d", i), slots, &registered)
	}
	registered.Wait()

	var (
		mu        sync.Mutex
		released  = map[slotKey]time.Time{} // when each slot's lease was released
		latencies []time.Duration
		measuring atomic.Bool
		grants    atomic.Int64
	)
	for g := range gateways {
		conn, err := rpc.Dial(addr)
		if err != nil {
			return 0, 0, 0, err
		}
		defer conn.Close()
		stream, err := rcv1.NewRenderCoordinatorServiceClient(conn).LeaseSession(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		stream.Send(&rcv1.LeaseSessionRequest{Msg: &rcv1.LeaseSessionRequest_Hello{Hello: &rcv1.LeaseHello{GatewayId: fmt.Sprintf("bench-gw-%d", g)}}})
		batch := fmt.Sprintf("batch-%d", g)
		var sendMu sync.Mutex
		send := func(m *rcv1.LeaseSessionRequest) {
			sendMu.Lock()
			stream.Send(m)
			sendMu.Unlock()
		}
		demand := func() {
			send(&rcv1.LeaseSessionRequest{Msg: &rcv1.LeaseSessionRequest_Demand{Demand: &rcv1.Demand{BatchId: batch, Waiting: 10000}}})
		}
		demand()
		go func() { // keep the demand topped up
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					demand()
				}
			}
		}()
		// Each lease is held for an exponentially distributed time with
		// the given mean, so releases arrive as a Poisson stream, the way
		// renders of varying length end. A fixed hold would keep the 4,000
		// slots granted in the warm-up burst in lockstep forever, and the
		// figure would measure the burst, not the coordinator. One
		// goroutine per stream sends the releases as they fall due, rather
		// than a timer per grant (20,000 timers a second on the
		// coordinator's two cores).
		var held chan dueRelease
		if hold > 0 {
			held = make(chan dueRelease, nodes*slots)
			go sendWhenDue(ctx, held)
		}
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				gr := resp.GetGrant()
				if gr == nil {
					continue
				}
				now := time.Now()
				key := slotKey{gr.GetNodeId(), gr.GetSlot()}
				if measuring.Load() {
					grants.Add(1)
					mu.Lock()
					if at, ok := released[key]; ok {
						latencies = append(latencies, now.Sub(at))
					}
					mu.Unlock()
				}
				release := func() {
					msg := &rcv1.LeaseSessionRequest{Msg: &rcv1.LeaseSessionRequest_Release{Release: &rcv1.Release{
						LeaseId: gr.GetLeaseId(), Epoch: gr.GetEpoch(), Outcome: rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED}}}
					// Stamped when the release actually goes out: waiting
					// for this stream's send lock is the load generator's
					// time, not the coordinator's.
					sendMu.Lock()
					mu.Lock()
					released[key] = time.Now()
					mu.Unlock()
					stream.Send(msg)
					sendMu.Unlock()
				}
				if hold > 0 {
					held <- dueRelease{now.Add(time.Duration(rand.ExpFloat64() * float64(hold))), release}
				} else {
					release()
				}
			}
		}()
	}
	time.Sleep(time.Second + hold) // warm up: saturate the pool
	measuring.Store(true)
	start := time.Now()
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	n := grants.Load()
	mu.Lock()
	lat := slices.Clone(latencies)
	mu.Unlock()
	cancel()
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("coordinator bench: no grants measured")
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return float64(n) / elapsed.Seconds(), ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), nil
}

type dueRelease struct {
	at   time.Time
	send func()
}

// dueHeap orders releases by when they fall due.
type dueHeap []dueRelease

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueRelease)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// sendWhenDue sends each release from held when its time comes.
func sendWhenDue(ctx context.Context, held <-chan dueRelease) {
	var due dueHeap
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-held:
			heap.Push(&due, d)
		case <-timer.C:
		}
		now := time.Now()
		for due.Len() > 0 && !due[0].at.After(now) {
			heap.Pop(&due).(dueRelease).send()
		}
		if due.Len() > 0 {
			timer.Reset(due[0].at.Sub(now))
		}
	}
}

type slotKey struct {
	node string
	slot int32
}

// simNode registers a node and reports an empty state every second.
func simNode(ctx context.Context, c rcv1.RenderCoordinatorServiceClient, id string, slots int, registered *sync.WaitGroup) {
	stream, err := c.NodeSession(ctx)
	if err != nil {
		registered.Done()
		return
	}
	stream.Send(&rcv1.NodeSessionRequest{Info: &rcv1.NodeInfo{NodeId: id, Address: id + ":1", Slots: int32(slots), Version: "bench"}, State: &rcv1.NodeState{}})
	if _, err := stream.Recv(); err != nil {
		registered.Done()
		return
	}
	registered.Done()
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if stream.Send(&rcv1.NodeSessionRequest{State: &rcv1.NodeState{}}) != nil {
				return
			}
		}
	}
}
