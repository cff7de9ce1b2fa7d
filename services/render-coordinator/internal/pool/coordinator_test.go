package pool_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	"github.com/fetchmesh/fetchmesh/services/render-coordinator/internal/pool"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeClock is moved by hand; nothing in the coordinator sleeps.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newPool(t *testing.T) (*pool.Coordinator, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	return pool.New(pool.Config{HeartbeatInterval: time.Second, HeartbeatGrace: 2 * time.Second, LeaseTTL: time.Minute, GatewayGrace: 10 * time.Second}, clk.now, quiet), clk
}

func register(t *testing.T, c *pool.Coordinator, id string, slots int, leases ...*rcv1.SlotLease) (*pool.NodeSession, *rcv1.NodeSessionResponse) {
	t.Helper()
	s := &pool.NodeSession{}
	resp, err := c.NodeReport(s, &rcv1.NodeInfo{NodeId: id, Address: id + ":7103", Slots: int32(slots)}, &rcv1.NodeState{Leases: leases})
	if err != nil {
		t.Fatal(err)
	}
	return s, resp
}

// drain returns the grants, revokes and pool sizes queued for g.
func drain(g *pool.GatewaySession) (grants []*rcv1.Grant, revokes []*rcv1.Revoke, sizes []*rcv1.PoolSize) {
	for _, m := range g.Drain() {
		switch {
		case m.GetGrant() != nil:
			grants = append(grants, m.GetGrant())
		case m.GetRevoke() != nil:
			revokes = append(revokes, m.GetRevoke())
		case m.GetPoolSize() != nil:
			sizes = append(sizes, m.GetPoolSize())
		}
	}
	return
}

func TestCoordinator_GrantsUpToFreeSlots(t *testing.T) {
	c, _ := newPool(t)
	register(t, c, "n1", 3)
	register(t, c, "n2", 2)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	_, _, sizes := drain(g)
	if len(sizes) != 1 || sizes[0].GetSlots() != 5 || sizes[0].GetNodes() != 2 {
		t.Fatalf("pool size on hello: %v", sizes)
	}
	c.Demand(g, "b1", 10, nil)
	grants, _, _ := drain(g)
	if len(grants) != 5 {
		t.Fatalf("%d grants, want 5 (all slots)", len(grants))
	}
	seen := map[string]bool{}
	var last uint64
	for _, gr := range grants {
		key := fmt.Sprintf("%s/%d", gr.GetNodeId(), gr.GetSlot())
		if seen[key] {
			t.Errorf("slot %s granted twice", key)
		}
		seen[key] = true
		if gr.GetEpoch() <= last {
			t.Errorf("epochs not increasing: %d after %d", gr.GetEpoch(), last)
		}
		last = gr.GetEpoch()
	}
	st := c.Status()
	if st.GetSlotsBusy() != 5 || st.GetSlotsFree() != 0 || st.GetQueueLength() != 5 || st.GetBatchesWaiting() != 1 {
		t.Errorf("status: %v", st)
	}
	// A release frees a slot, which goes straight to the waiting batch.
	c.Release(g, grants[0].GetLeaseId(), grants[0].GetEpoch(), rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED)
	if more, _, _ := drain(g); len(more) != 1 {
		t.Errorf("after a release: %d grants, want 1", len(more))
	}
}

func TestCoordinator_SmallBatchBehindBigBatchGetsTheNextSlot(t *testing.T) {
	c, _ := newPool(t)
	register(t, c, "n1", 4)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "big", 1000, nil)
	grants, _, _ := drain(g)
	if len(grants) != 4 {
		t.Fatalf("big batch holds %d slots, want 4", len(grants))
	}
	c.Demand(g, "small", 10, nil)
	// The next slot to free goes to the small batch, then they alternate.
	var order []string
	for i := 0; i < 6; i++ {
		gr := grants[0]
		grants = grants[1:]
		c.Release(g, gr.GetLeaseId(), gr.GetEpoch(), rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED)
		got, _, _ := drain(g)
		if len(got) != 1 {
			t.Fatalf("release %d: %d grants", i, len(got))
		}
		order = append(order, got[0].GetBatchId())
		grants = append(grants, got[0])
	}
	if order[0] != "small" || order[1] != "big" || order[2] != "small" {
		t.Errorf("grant order %v: want the small batch first, then turns", order)
	}
}

func TestCoordinator_NodeLostRevokesLeases(t *testing.T) {
	c, clk := newPool(t)
	s1, _ := register(t, c, "n1", 2)
	s2, _ := register(t, c, "n2", 2)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 4, nil)
	grants, _, _ := drain(g)
	// n2 keeps reporting; n1 goes silent.
	for range 4 {
		clk.advance(time.Second)
		c.NodeReport(s2, nil, &rcv1.NodeState{})
		c.Tick()
	}
	_, revokes, sizes := drain(g)
	onN1 := 0
	for _, gr := range grants {
		if gr.GetNodeId() == "n1" {
			onN1++
		}
	}
	if len(revokes) != onN1 || onN1 == 0 {
		t.Errorf("%d revokes for %d leases on the lost node", len(revokes), onN1)
	}
	if len(sizes) == 0 || sizes[len(sizes)-1].GetNodes() != 1 {
		t.Errorf("pool size not announced after the loss: %v", sizes)
	}
	if _, err := c.NodeReport(s1, nil, &rcv1.NodeState{}); err == nil {
		t.Error("a removed node's old stream was accepted")
	}
	if c.Stats().NodesLost != 1 {
		t.Errorf("stats: %+v", c.Stats())
	}
}

func TestCoordinator_StaleLeaseIgnored(t *testing.T) {
	c, _ := newPool(t)
	s, _ := register(t, c, "n1", 1)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 2, nil)
	first, _, _ := drain(g)
	old := first[0]
	c.Release(g, old.GetLeaseId(), old.GetEpoch(), rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED)
	second, _, _ := drain(g)
	if len(second) != 1 || second[0].GetEpoch() <= old.GetEpoch() {
		t.Fatalf("regrant: %v", second)
	}
	// The node still reports the old lease (a late report): ignored, and
	// the current lease stays valid.
	resp, err := c.NodeReport(s, nil, &rcv1.NodeState{Leases: []*rcv1.SlotLease{{LeaseId: old.GetLeaseId(), Epoch: old.GetEpoch(), Slot: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetValidLeases()) != 1 || resp.GetValidLeases()[0].GetLeaseId() != second[0].GetLeaseId() {
		t.Errorf("valid leases %v, want only the current one", resp.GetValidLeases())
	}
	// A duplicate release of the old lease changes nothing.
	c.Release(g, old.GetLeaseId(), old.GetEpoch(), rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED)
	if st := c.Status(); st.GetSlotsBusy() != 1 {
		t.Errorf("a stale release freed the slot: %v", st)
	}
	if c.Stats().StaleIgnored < 2 {
		t.Errorf("stale messages not counted: %+v", c.Stats())
	}
}

func TestCoordinator_RestartAdoptsWhatNodesAndGatewaysReport(t *testing.T) {
	c, clk := newPool(t)
	register(t, c, "n1", 2)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 1, nil)
	grants, _, _ := drain(g)
	held := grants[0]

	// A new coordinator: the node re-registers with the lease it serves,
	// the gateway says hello with the lease it holds.
	clk.advance(time.Second)
	c2 := pool.New(pool.Config{LeaseTTL: time.Minute}, clk.now, quiet)
	_, resp := register(t, c2, "n1", 2, &rcv1.SlotLease{LeaseId: held.GetLeaseId(), Epoch: held.GetEpoch(), Slot: held.GetSlot(), BatchId: "b"})
	if len(resp.GetValidLeases()) != 1 {
		t.Fatalf("restarted coordinator did not adopt the node's lease: %v", resp)
	}
	g2 := c2.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw", Held: []*rcv1.HeldLease{{LeaseId: held.GetLeaseId(), Epoch: held.GetEpoch(), BatchId: "b", NodeId: "n1", Slot: held.GetSlot()}}})
	c2.Demand(g2, "b", 5, nil)
	more, _, _ := drain(g2)
	if len(more) != 1 || more[0].GetSlot() == held.GetSlot() || more[0].GetEpoch() <= held.GetEpoch() {
		t.Fatalf("after restart: grants %v; want the one free slot with a newer epoch", more)
	}
	// The adopted lease is released normally; its slot goes to the batch.
	c2.Release(g2, held.GetLeaseId(), held.GetEpoch(), rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED)
	if again, _, _ := drain(g2); len(again) != 1 {
		t.Errorf("released adopted lease did not free its slot: %v", again)
	}
}

func TestCoordinator_CoolingNodeIsNotGranted(t *testing.T) {
	c, clk := newPool(t)
	s, _ := register(t, c, "n1", 2)
	c.NodeReport(s, nil, &rcv1.NodeState{CoolingUntil: timestamppb.New(clk.now().Add(2 * time.Minute)), CoolingReason: "browser restart"})
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 1, nil)
	if grants, _, _ := drain(g); len(grants) != 0 {
		t.Fatalf("granted a cooling node's slot")
	}
	if st := c.Status(); st.GetSlotsCooling() != 2 || !st.GetNodeStatuses()[0].GetCooling() {
		t.Errorf("status while cooling: %v", st)
	}
	// The cooldown ends: the slot is granted on the next tick.
	clk.advance(3 * time.Minute)
	c.NodeReport(s, nil, &rcv1.NodeState{})
	c.Tick()
	if grants, _, _ := drain(g); len(grants) != 1 {
		t.Errorf("after the cooldown: %d grants, want 1", len(grants))
	}
}

func TestCoordinator_GatewayGoneFreesLeasesAfterGrace(t *testing.T) {
	c, clk := newPool(t)
	s, _ := register(t, c, "n1", 1)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 1, nil)
	drain(g)
	c.GatewayGone(g)
	clk.advance(5 * time.Second)
	c.NodeReport(s, nil, &rcv1.NodeState{})
	c.Tick()
	if st := c.Status(); st.GetSlotsBusy() != 1 {
		t.Fatalf("lease freed before the grace ended")
	}
	clk.advance(6 * time.Second)
	c.NodeReport(s, nil, &rcv1.NodeState{})
	c.Tick()
	if st := c.Status(); st.GetSlotsBusy() != 0 || st.GetQueueLength() != 0 {
		t.Errorf("after the grace: %v", st)
	}
}

func TestCoordinator_ExpiredLeaseIsRevoked(t *testing.T) {
	c, clk := newPool(t)
	s, _ := register(t, c, "n1", 1)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 1, nil)
	grants, _, _ := drain(g)
	for range 61 {
		clk.advance(time.Second)
		c.NodeReport(s, nil, &rcv1.NodeState{})
		c.Tick()
	}
	_, revokes, _ := drain(g)
	if len(revokes) != 1 || revokes[0].GetLeaseId() != grants[0].GetLeaseId() {
		t.Errorf("revokes %v, want the expired lease", revokes)
	}
}

func TestCoordinator_BadRegistrationRefused(t *testing.T) {
	c, _ := newPool(t)
	for _, info := range []*rcv1.NodeInfo{{}, {NodeId: "x", Address: "a:1", Slots: 0}, {NodeId: "x", Address: "a:1", Slots: 1000}, {NodeId: "x", Slots: 2}} {
		if _, err := c.NodeReport(&pool.NodeSession{}, info, nil); err == nil {
			t.Errorf("registration %v accepted", info)
		}
	}
}

func TestCoordinator_BatchesArrivingTogetherShareFreeSlots(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	c := pool.New(pool.Config{ArrivalWindow: 50 * time.Millisecond}, clk.now, quiet)
	register(t, c, "n1", 20)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	drain(g)
	for b := range 4 {
		c.Demand(g, fmt.Sprintf("b%d", b), 100, nil)
		clk.advance(5 * time.Millisecond)
	}
	if grants, _, _ := drain(g); len(grants) != 0 {
		t.Fatalf("%d grants inside the arrival window", len(grants))
	}
	clk.advance(50 * time.Millisecond)
	c.Tick()
	grants, _, _ := drain(g)
	per := map[string]int{}
	for _, gr := range grants {
		per[gr.GetBatchId()]++
	}
	if len(grants) != 20 || per["b0"] != 5 || per["b3"] != 5 {
		t.Errorf("grants per batch %v (of %d): want 5 each", per, len(grants))
	}
}

func TestCoordinator_SaturatedPoolGrantsWhatFreesAndNeverARemovedNode(t *testing.T) {
	c, clk := newPool(t)
	s1, _ := register(t, c, "n1", 2)
	register(t, c, "n2", 2)
	s3, _ := register(t, c, "n3", 2)
	g := c.GatewayConnect(&rcv1.LeaseHello{GatewayId: "gw"})
	c.Demand(g, "b", 100, nil)
	grants, _, _ := drain(g)
	if len(grants) != 6 {
		t.Fatalf("%d grants, want all 6 slots", len(grants))
	}
	release := func(node string) *rcv1.Grant {
		t.Helper()
		for i, gr := range grants {
			if gr.GetNodeId() == node {
				grants = append(grants[:i], grants[i+1:]...)
				c.Release(g, gr.GetLeaseId(), gr.GetEpoch(), rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED)
				got, _, _ := drain(g)
				if len(got) != 1 || got[0].GetNodeId() != node || got[0].GetSlot() != gr.GetSlot() {
					t.Fatalf("released %s/%d, then granted %v", node, gr.GetSlot(), got)
				}
				grants = append(grants, got[0])
				return got[0]
			}
		}
		t.Fatalf("no lease on %s", node)
		return nil
	}
	release("n3")
	release("n1")
	// n2 goes silent: its leases are revoked and its slots, free now, must
	// not be granted once it is gone.
	for range 4 {
		clk.advance(time.Second)
		c.NodeReport(s1, nil, &rcv1.NodeState{})
		c.NodeReport(s3, nil, &rcv1.NodeState{})
		c.Tick()
	}
	more, revokes, _ := drain(g)
	if len(revokes) != 2 || len(more) != 0 {
		t.Fatalf("after n2 was lost: %d revokes, %d grants (want 2, 0)", len(revokes), len(more))
	}
	kept := grants[:0]
	for _, gr := range grants {
		if gr.GetNodeId() != "n2" {
			kept = append(kept, gr)
		}
	}
	grants = kept
	release("n3")
	release("n1")
}
