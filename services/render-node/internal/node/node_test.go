package node_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	rendernodev1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendernode/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/node"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// scripted is a renderer whose answers the test chooses.
type scripted struct {
	verdict  commonv1.Verdict
	hold     chan struct{} // renders wait on it when set
	restarts atomic.Int64
	died     bool
}

func (s *scripted) Render(ctx context.Context, job render.Job) render.Result {
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
			return render.Failure(commonv1.ErrorKind_ERROR_KIND_CANCELED, "canceled", false)
		}
	}
	return render.Result{Verdict: s.verdict, Reason: "scripted", Page: &commonv1.Page{StatusCode: 200}, BrowserDied: s.died}
}
func (s *scripted) Healthy(time.Duration) error { return nil }
func (s *scripted) Restart() error              { s.restarts.Add(1); return nil }
func (s *scripted) MemoryBytes() int64          { return 0 }
func (s *scripted) Close()                      {}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func req(slot int32, lease string, epoch uint64) *rendernodev1.RenderRequest {
	return &rendernodev1.RenderRequest{LeaseId: lease, Epoch: epoch, Slot: slot, Url: "https://example.com/"}
}

func TestNode_LeasesAreFencedByEpochAndSlot(t *testing.T) {
	r := &scripted{verdict: commonv1.Verdict_VERDICT_COMPLETE, hold: make(chan struct{})}
	n := node.New(node.Config{Slots: 2}, r, quiet)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := n.Render(context.Background(), req(0, "L1", 10)); err != nil {
			t.Error(err)
		}
	}()
	waitBusy(t, n, 1)
	if _, err := n.Render(context.Background(), req(0, "L2", 11)); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("busy slot: %v", err)
	}
	if _, err := n.Render(context.Background(), req(5, "L3", 12)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("slot out of range: %v", err)
	}
	close(r.hold)
	wg.Wait()
	if _, err := n.Render(context.Background(), req(0, "L0", 9)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("stale epoch: %v", err)
	}
	if resp, err := n.Render(context.Background(), req(0, "L4", 13)); err != nil || resp.GetVerdict() != commonv1.Verdict_VERDICT_COMPLETE {
		t.Errorf("newer lease: %v %v", resp, err)
	}
	if st := n.State(); st.GetPagesRendered() != 2 || len(st.GetLeases()) != 0 {
		t.Errorf("state %v", st)
	}
}

func TestNode_RevokedLeaseCancelsItsRender(t *testing.T) {
	r := &scripted{hold: make(chan struct{})}
	n := node.New(node.Config{Slots: 1}, r, quiet)
	done := make(chan *rendernodev1.RenderResponse, 1)
	go func() {
		resp, _ := n.Render(context.Background(), req(0, "L1", 10))
		done <- resp
	}()
	waitBusy(t, n, 1)
	// The coordinator lists the valid leases up to epoch 20: L1 is not one.
	n.ApplyValid(&rcv1.NodeSessionResponse{ValidThroughEpoch: 20})
	select {
	case resp := <-done:
		if resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_CANCELED {
			t.Errorf("revoked render: %v", resp.GetError())
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a revoked render kept running")
	}
	// A lease newer than the coordinator's mark is not touched.
	go n.Render(context.Background(), req(0, "L2", 30))
	waitBusy(t, n, 1)
	n.ApplyValid(&rcv1.NodeSessionResponse{ValidThroughEpoch: 20})
	time.Sleep(50 * time.Millisecond)
	if st := n.State(); len(st.GetLeases()) != 1 {
		t.Errorf("a lease granted after the coordinator's answer was canceled")
	}
	close(r.hold)
}

func TestNode_CooldownAfterBlockAndRestartEveryPages(t *testing.T) {
	r := &scripted{verdict: commonv1.Verdict_VERDICT_BLOCKED}
	n := node.New(node.Config{Slots: 1, CooldownAfterBlock: time.Minute, RestartEveryPages: 3, CooldownAfterRestart: time.Second}, r, quiet)
	n.Render(context.Background(), req(0, "L1", 1))
	st := n.State()
	if st.GetCoolingUntil() == nil || st.GetCoolingReason() != "a page rendered as blocked" {
		t.Errorf("after a block: %v", st)
	}
	n.Render(context.Background(), req(0, "L2", 2))
	n.Render(context.Background(), req(0, "L3", 3))
	deadline := time.Now().Add(2 * time.Second)
	for r.restarts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.restarts.Load() != 1 {
		t.Errorf("%d restarts after 3 pages, want 1", r.restarts.Load())
	}
	if n.State().GetBrowserRestarts() != 1 {
		t.Errorf("state %v", n.State())
	}
}

func TestNode_DeadBrowserIsRestartedAndRefusesMeanwhile(t *testing.T) {
	r := &scripted{verdict: commonv1.Verdict_VERDICT_FAILED, died: true}
	n := node.New(node.Config{Slots: 1}, r, quiet)
	n.Render(context.Background(), req(0, "L1", 1))
	deadline := time.Now().Add(2 * time.Second)
	for r.restarts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.restarts.Load() != 1 {
		t.Fatalf("the dead browser was not restarted")
	}
}

func TestNode_DrainRefusesNewRendersAndWaitsForOld(t *testing.T) {
	r := &scripted{verdict: commonv1.Verdict_VERDICT_COMPLETE, hold: make(chan struct{})}
	n := node.New(node.Config{Slots: 2}, r, quiet)
	go n.Render(context.Background(), req(0, "L1", 1))
	waitBusy(t, n, 1)
	drained := make(chan struct{})
	go func() { n.Drain(context.Background()); close(drained) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := n.Render(context.Background(), req(1, "L2", 2)); status.Code(err) != codes.Unavailable {
		t.Errorf("render while draining: %v", err)
	}
	if !n.State().GetDraining() {
		t.Error("state does not say draining")
	}
	select {
	case <-drained:
		t.Fatal("drain returned with a render in flight")
	default:
	}
	close(r.hold)
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		t.Fatal("drain did not return after the render ended")
	}
}

func waitBusy(t *testing.T, n *node.Node, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(n.State().GetLeases()) != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(n.State().GetLeases()); got != want {
		t.Fatalf("%d leases busy, want %d", got, want)
	}
}
