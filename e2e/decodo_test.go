package e2e_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func tiersOf(r *gatewayv1.UrlResult) []gatewayv1.Tier {
	var out []gatewayv1.Tier
	for _, a := range r.GetAttempts() {
		out = append(out, a.GetTier())
	}
	return out
}

func TestE2E_DecodoOnlyForPagesStillBlockedAfterRendering(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := urls(shared.TestWebURL, "/article/301", "/article/302", "/app/inline/303", "/app/fetch/304",
		"/challenge/403/305", "/challenge/200/306", "/challenge/403/307", "/status/404")
	b, err := fetchGRPC(t, context.Background(), c, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.checkOnePerIndex(t, len(in))
	if b.summary.GetDecodoCalls() != 3 || b.summary.GetByDecodo() != 3 || b.summary.GetOk() != 7 {
		t.Errorf("summary %v: want 3 Decodo calls, 7 OK", b.summary)
	}
	for i, u := range in {
		r := b.results[int32(i)]
		usedDecodo := false
		for _, tier := range tiersOf(r) {
			usedDecodo = usedDecodo || tier == gatewayv1.Tier_TIER_DECODO
		}
		if want := strings.Contains(u, "/challenge/"); usedDecodo != want {
			t.Errorf("%s: tiers %v", u, tiersOf(r))
		}
		if truth, ok := web.Truth(u); ok && !truth.Check(r.GetPage().GetTitle(), r.GetPage().GetText()) {
			t.Errorf("%s: wrong content %q", u, r.GetPage().GetTitle())
		}
	}
}

func TestE2E_DecodoBudgetPerBatch(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := urls(shared.TestWebURL, "/challenge/403/311", "/challenge/403/312", "/challenge/403/313")
	b, err := fetchGRPC(t, context.Background(), c, in, &gatewayv1.FetchOptions{Decodo: &gatewayv1.DecodoOptions{MaxCalls: 2}, DecodoConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.checkOnePerIndex(t, 3)
	exhausted := 0
	for _, r := range b.results {
		if r.GetError().GetKind() == commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED {
			exhausted++
			if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_BLOCKED || r.GetPage() == nil {
				t.Errorf("budget exhausted: outcome %v, page kept: %v", r.GetOutcome(), r.GetPage() != nil)
			}
		}
	}
	if exhausted != 1 || b.summary.GetDecodoCalls() != 2 || b.summary.GetOk() != 2 {
		t.Errorf("%d budget-exhausted results, summary %v: want 1 and 2 calls", exhausted, b.summary)
	}
}

func emulatorPeak(t *testing.T, m *mesh.Mesh) int {
	t.Helper()
	resp, err := http.Get(m.DecodoEmulatorURL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		MaxConcurrent int `json:"max_concurrent"`
	}
	decodeJSON(resp, &s)
	return s.MaxConcurrent
}

// The per-batch cap and the account-wide limit hold in what the (emulated)
// API sees, with several batches at once.
func TestE2E_DecodoConcurrencyLimitsHold(t *testing.T) {
	m := ownMesh(t, mesh.Options{DecodoEmulator: true, Args: map[string][]string{"decodo-proxy": {"-concurrency", "4", "-rate", "1000"}}})
	c := dial(t, m.GatewayGRPC)
	batch := func(tag string) []string {
		in := make([]string, 8)
		for i := range in {
			in[i] = fmt.Sprintf("%s/article/%d?emu=slow300ms&%s=%d", m.TestWebURL, 400+i, tag, i)
		}
		return in
	}
	opts := &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_FORCE_DECODO, DecodoConcurrency: 2}
	b, err := fetchGRPC(t, context.Background(), c, batch("solo"), opts)
	if err != nil || b.summary.GetOk() != 8 {
		t.Fatalf("solo batch: %v %v", err, b.summary)
	}
	if peak := emulatorPeak(t, m); peak != 2 {
		t.Errorf("one batch capped at 2 reached %d concurrent calls", peak)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := fetchGRPC(t, context.Background(), c, batch(fmt.Sprintf("many%d", i)), opts); err != nil || b.summary.GetOk() != 8 {
				t.Errorf("batch %d: %v %v", i, err, b.summary)
			}
		}()
	}
	wg.Wait()
	if peak := emulatorPeak(t, m); peak > 4 || peak < 3 {
		t.Errorf("4 batches x 2 under an account limit of 4 reached %d concurrent calls", peak)
	}
}

func TestE2E_DecodoNotConfigured(t *testing.T) {
	m := ownMesh(t, mesh.Options{})
	waitPool(t, m, 1)
	c := dial(t, m.GatewayGRPC)
	b, err := fetchGRPC(t, context.Background(), c, urls(m.TestWebURL, "/challenge/403/321", "/article/322"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := b.results[0]
	if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_BLOCKED || !strings.Contains(r.GetError().GetMessage(), "Decodo not configured") {
		t.Errorf("challenge without credentials: %v %v", r.GetOutcome(), r.GetError())
	}
	if b.results[1].GetOutcome() != gatewayv1.Outcome_OUTCOME_OK {
		t.Errorf("the rest of the mesh: %v", b.results[1].GetOutcome())
	}
}

// The credentials appear in no log line and no result.
func TestE2E_DecodoCredentialsNeverLeak(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := urls(shared.TestWebURL, "/challenge/403/331", "/challenge/403/332?emu=500x5", "/challenge/403/333?emu=failed")
	b, err := fetchGRPC(t, context.Background(), c, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{mesh.EmulatorPassword, base64.StdEncoding.EncodeToString([]byte(mesh.EmulatorUser + ":" + mesh.EmulatorPassword))}
	for i, r := range b.results {
		raw, _ := protojson.Marshal(r)
		for _, s := range secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("result %d carries the credentials", i)
			}
		}
	}
	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.HasPrefix(line, "decodo-emulator |") {
			continue // the emulator is the API's stand-in: it was given them
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a log line carries the credentials: %.120s", line)
			}
		}
	}
	if b.results[1].GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_UPSTREAM || b.results[2].GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_UPSTREAM {
		t.Errorf("Decodo failures: %v / %v", b.results[1].GetError(), b.results[2].GetError())
	}
}
