package e2e_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/procmem"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ownMesh starts a mesh for a test that disturbs it (kills, restarts).
func ownMesh(t *testing.T, o mesh.Options) *mesh.Mesh {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "mesh-*.log")
	if err != nil {
		t.Fatal(err)
	}
	o.BinDir, o.Log = binDir, logf
	m, err := mesh.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 15000 {
				b = b[len(b)-15000:]
			}
			t.Logf("mesh log:\n%s", b)
		}
	})
	return m
}

// waitPool waits until the pool has n nodes registered.
func waitPool(t *testing.T, m *mesh.Mesh, nodes int) {
	t.Helper()
	c := dial(t, m.GatewayGRPC)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.API().GetPoolStatus(ctx, &gatewayv1.GetPoolStatusRequest{})
		cancel()
		if err == nil && int(st.GetPool().GetNodes()) == nodes {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the pool did not reach %d nodes", nodes)
}

func slowRenders(m *mesh.Mesh, n int, ms int, tag string) []string {
	in := make([]string, n)
	for i := range in {
		in[i] = fmt.Sprintf("%s/slow/%d?%s=%d", m.TestWebURL, ms, tag, i)
	}
	return in
}

var forceRender = &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_FORCE_RENDER}

func allOK(t *testing.T, b *batchRun, n int) {
	t.Helper()
	b.checkOnePerIndex(t, n)
	for i, r := range b.results {
		if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_OK {
			t.Errorf("index %d: %v %v (attempts %d)", i, r.GetOutcome(), r.GetError(), len(r.GetAttempts()))
		}
	}
}

func crashedAttempts(b *batchRun) int {
	n := 0
	for _, r := range b.results {
		for _, a := range r.GetAttempts() {
			if a.GetError().GetKind() == commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED {
				n++
			}
		}
	}
	return n
}

func TestE2E_RenderModes(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := urls(shared.TestWebURL, "/article/21", "/app/inline/22")
	b, err := fetchGRPC(t, context.Background(), c, in, forceRender)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range in {
		r := b.results[int32(i)]
		truth, _ := web.Truth(u)
		if r.GetTier() != gatewayv1.Tier_TIER_RENDER || len(r.GetAttempts()) != 1 || !truth.Check(r.GetPage().GetTitle(), r.GetPage().GetText()) {
			t.Errorf("force render %s: tier %v, %d attempts, title %q", u, r.GetTier(), len(r.GetAttempts()), r.GetPage().GetTitle())
		}
	}
	b, err = fetchGRPC(t, context.Background(), c, urls(shared.TestWebURL, "/app/fetch/23"), &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_STATIC_ONLY})
	if err != nil || b.results[0].GetVerdict() != commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT || b.results[0].GetTier() != gatewayv1.Tier_TIER_STATIC {
		t.Errorf("static only: %v %v", err, b.results[0])
	}
	// A selector that never appears ends the render at max wait.
	b, err = fetchGRPC(t, context.Background(), c, urls(shared.TestWebURL, "/app/inline/24"), &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_FORCE_RENDER,
		Render: &commonv1.RenderOptions{WaitForSelector: "#never", MaxWait: durationpb.New(2 * time.Second)}})
	if err != nil || b.results[0].GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_TIMEOUT || !strings.Contains(b.results[0].GetError().GetMessage(), "#never") {
		t.Errorf("missing selector: %v %v", err, b.results[0].GetError())
	}
}

func TestE2E_KillNodeMidBatch(t *testing.T) {
	m := ownMesh(t, mesh.Options{RenderNodes: 2})
	waitPool(t, m, 2)
	victim := m.Proc("node-1")
	chrome, _ := procmem.Descendants(victim.Pid())
	in := slowRenders(m, 60, 1500, "kill")
	c := dial(t, m.GatewayGRPC)
	time.AfterFunc(1200*time.Millisecond, func() { victim.Signal(syscall.SIGKILL) })
	b, err := fetchGRPC(t, context.Background(), c, in, forceRender)
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, b, len(in))
	if crashedAttempts(b) == 0 {
		t.Error("no render was in flight on the killed node: the test proved nothing")
	}
	// Chrome outlives neither a killed node nor a stopped one.
	survivor := m.Proc("node-2")
	chrome2, _ := procmem.Descendants(survivor.Pid())
	survivor.Stop(30 * time.Second)
	if len(chrome2) == 0 {
		t.Error("the surviving node had no Chrome processes")
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range append(chrome, chrome2...) {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("chrome process %d outlived its killed node", pid)
		}
	}
}

func TestE2E_HungNodeWorkGoesElsewhere(t *testing.T) {
	m := ownMesh(t, mesh.Options{RenderNodes: 2})
	waitPool(t, m, 2)
	victim := m.Proc("node-1")
	defer victim.Signal(syscall.SIGCONT)
	in := slowRenders(m, 40, 1500, "hang")
	c := dial(t, m.GatewayGRPC)
	// A stopped process: its connections stay open but nothing answers,
	// so only the coordinator's heartbeat deadline can tell.
	time.AfterFunc(1200*time.Millisecond, func() { victim.Signal(syscall.SIGSTOP) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := fetchGRPC(t, ctx, c, in, forceRender)
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, b, len(in))
	if crashedAttempts(b) == 0 {
		t.Error("no render was stranded on the hung node: the test proved nothing")
	}
}

func TestE2E_CoordinatorRestartMidBatch(t *testing.T) {
	m := ownMesh(t, mesh.Options{})
	waitPool(t, m, 1)
	in := slowRenders(m, 60, 1000, "restart")
	c := dial(t, m.GatewayGRPC)
	var restartErr error
	time.AfterFunc(1500*time.Millisecond, func() {
		m.Proc("render-coordinator").Signal(syscall.SIGKILL)
		_, restartErr = m.Restart("render-coordinator")
	})
	start := time.Now()
	b, err := fetchGRPC(t, context.Background(), c, in, forceRender)
	if err != nil || restartErr != nil {
		t.Fatal(err, restartErr)
	}
	allOK(t, b, len(in))
	// Renders in flight during the restart were not failed.
	if crashedAttempts(b) > 0 {
		t.Errorf("%d renders failed across the coordinator restart", crashedAttempts(b))
	}
	if time.Since(start) < 2*time.Second {
		t.Error("the batch ended before the restart: the test proved nothing")
	}
}

func TestE2E_CancelReleasesLeasesAndClosesTabs(t *testing.T) {
	m := ownMesh(t, mesh.Options{})
	waitPool(t, m, 1)
	c := dial(t, m.GatewayGRPC)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fetchGRPC(t, ctx, c, slowRenders(m, 30, 20000, "cancel"), forceRender)
	busy := func() int32 {
		st, err := c.API().GetPoolStatus(context.Background(), &gatewayv1.GetPoolStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetPool().GetSlotsBusy()
	}
	deadline := time.Now().Add(15 * time.Second)
	for busy() < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if busy() < 10 {
		t.Fatalf("renders never started (busy %d)", busy())
	}
	cancel()
	canceled := time.Now()
	for (busy() > 0 || webInflight(t, m.TestWebURL) > 0) && time.Since(canceled) < 5*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(canceled); d > time.Second {
		t.Errorf("leases and tabs took %s to go after the cancel (busy %d, web in flight %d)", d, busy(), webInflight(t, m.TestWebURL))
	}
}

// A 10-URL batch sent while a big batch holds the whole pool gets its
// first slot within about one render.
func TestE2E_FairShareForASmallBatchBehindABigOne(t *testing.T) {
	m := ownMesh(t, mesh.Options{Args: map[string][]string{"render-node": {"-slots", "10"}}})
	waitPool(t, m, 1)
	c := dial(t, m.GatewayGRPC)
	const pageDelay = 2000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bigDone := make(chan *batchRun, 1)
	go func() {
		b, _ := fetchGRPC(t, ctx, c, slowRenders(m, 300, pageDelay, "big"), forceRender)
		bigDone <- b
	}()
	time.Sleep(1500 * time.Millisecond) // the big batch holds all 10 slots; 290 URLs wait
	small, err := fetchGRPC(t, context.Background(), c, slowRenders(m, 10, pageDelay, "small"), forceRender)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	big := <-bigDone
	// What one render really takes here (page delay, Chrome, settling).
	var renders []time.Duration
	for _, r := range big.results {
		if a := r.GetAttempts(); len(a) == 1 && a[0].GetTimings().GetTotal() != nil {
			renders = append(renders, a[0].GetTimings().GetTotal().AsDuration())
		}
	}
	if len(renders) < 10 {
		t.Fatalf("only %d big renders finished", len(renders))
	}
	slices.Sort(renders)
	render := renders[len(renders)/2]
	firstGrant := time.Hour
	for _, r := range small.results {
		if q := r.GetAttempts()[0].GetTimings().GetQueue(); q != nil {
			firstGrant = min(firstGrant, q.AsDuration())
		}
	}
	t.Logf("render %s; the small batch's first grant after %s; big batch %d/300 done", render, firstGrant, len(big.results))
	if firstGrant > render+time.Second {
		t.Errorf("the small batch waited %s for its first slot; one render takes %s", firstGrant, render)
	}
	if len(big.results) > 100 {
		t.Errorf("the big batch finished %d URLs: it did not hold the pool during the test", len(big.results))
	}
}
