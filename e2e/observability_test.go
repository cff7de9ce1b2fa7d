package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
)

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
}

type jaegerTrace struct {
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

func fetchTrace(t *testing.T, j *mesh.Jaeger, id string) *jaegerTrace {
	t.Helper()
	resp, err := http.Get(j.QueryURL + "/api/traces/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Data []jaegerTrace }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Data) == 0 {
		return nil
	}
	return &out.Data[0]
}

func (tr *jaegerTrace) service(s jaegerSpan) string { return tr.Processes[s.ProcessID].ServiceName }

func (tr *jaegerTrace) services() map[string]bool {
	out := map[string]bool{}
	for _, s := range tr.Spans {
		out[tr.service(s)] = true
	}
	return out
}

// complete reports whether every span's parent has arrived: services flush
// their spans on their own schedules, so a trace fills in over a moment.
func (tr *jaegerTrace) complete() bool {
	byID := map[string]bool{}
	for _, x := range tr.Spans {
		byID[x.SpanID] = true
	}
	for _, x := range tr.Spans {
		if len(x.References) > 0 && !byID[x.References[0].SpanID] {
			return false
		}
	}
	return true
}

// ancestors returns the operation names above span s, nearest first.
func (tr *jaegerTrace) ancestors(s jaegerSpan) []string {
	byID := map[string]jaegerSpan{}
	for _, x := range tr.Spans {
		byID[x.SpanID] = x
	}
	var out []string
	for len(s.References) > 0 {
		p, ok := byID[s.References[0].SpanID]
		if !ok {
			break
		}
		out = append(out, tr.service(p)+":"+p.OperationName)
		s = p
	}
	return out
}

// One batch whose URLs take each tier yields one trace in Jaeger with spans
// from all five services, linked parent to child.
func TestE2E_OneTraceAcrossAllFiveServices(t *testing.T) {
	logf, _ := os.Create(filepath.Join(t.TempDir(), "jaeger.log"))
	j, err := mesh.StartJaeger(filepath.Join(repoRoot, ".tmp/bin/jaeger"), filepath.Join(repoRoot, "deploy/jaeger/local.yaml"), "", "", logf)
	if err != nil {
		t.Fatalf("%v (make test builds Jaeger first)", err)
	}
	defer j.Stop()
	m := ownMesh(t, mesh.Options{Jaeger: j, DecodoEmulator: true})
	waitPool(t, m, 1)
	c := dial(t, m.GatewayGRPC)
	b, err := fetchGRPC(t, context.Background(), c, urls(m.TestWebURL, "/article/501", "/app/inline/502", "/challenge/403/503"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.summary.GetOk() != 3 || b.summary.GetByStatic() != 1 || b.summary.GetByRender() != 1 || b.summary.GetByDecodo() != 1 {
		t.Fatalf("the batch did not take each tier: %v", b.summary)
	}
	id := b.accepted.GetTraceId()
	for i, r := range b.results {
		if r.GetTraceId() != id || len(id) != 32 {
			t.Fatalf("result %d carries trace id %q, the batch %q", i, r.GetTraceId(), id)
		}
	}
	want := []string{"gateway", "static-fetcher", "render-coordinator", "render-node", "decodo-proxy"}
	var tr *jaegerTrace
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if tr = fetchTrace(t, j, id); tr != nil && len(tr.services()) >= len(want) && tr.complete() {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if tr == nil {
		t.Fatalf("trace %s never reached Jaeger", id)
	}
	for _, s := range want {
		if !tr.services()[s] {
			t.Errorf("no span from %s in the trace (services: %v)", s, tr.services())
		}
	}
	found := map[string]bool{}
	for _, s := range tr.Spans {
		anc := strings.Join(tr.ancestors(s), " < ")
		switch {
		case tr.service(s) == "render-node" && s.OperationName == "render":
			found["render"] = true
			if !strings.Contains(anc, "gateway:attempt render") || !strings.Contains(anc, "gateway:batch") {
				t.Errorf("the render-node's render span is not under the gateway's render attempt: %s", anc)
			}
		case tr.service(s) == "render-coordinator" && s.OperationName == "coordinator.wait":
			found["wait"] = true
			if !strings.Contains(anc, "gateway:batch") {
				t.Errorf("the coordinator's wait span is not in the batch's tree: %s", anc)
			}
		case tr.service(s) == "decodo-proxy" && s.OperationName == "decodo.scrape":
			found["decodo"] = true
			if !strings.Contains(anc, "gateway:attempt decodo") {
				t.Errorf("the Decodo span is not under the gateway's Decodo attempt: %s", anc)
			}
		case tr.service(s) == "static-fetcher" && s.OperationName == "static.fetch":
			found["static"] = true
			if !strings.Contains(anc, "gateway:attempt static") {
				t.Errorf("the static span is not under the gateway's static attempt: %s", anc)
			}
		}
	}
	for _, k := range []string{"render", "wait", "decodo", "static"} {
		if !found[k] {
			t.Errorf("span %s missing from the trace", k)
		}
	}
}

// scrape sums the samples of metric family name whose labels contain
// every part of match.
func scrape(t *testing.T, addr, name string, match ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum, seen := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue lines
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			seen = true
		}
	}
	return sum, seen
}

func metricsAddr(t *testing.T, m *mesh.Mesh, proc string) string {
	t.Helper()
	a := m.Proc(proc).Addrs["metrics"]
	if a == "" {
		t.Fatalf("%s reported no metrics address", proc)
	}
	return a
}

func TestE2E_MetricsMoveDuringABatch(t *testing.T) {
	m := shared
	c := dial(t, m.GatewayGRPC)
	gw, coord, node, dec := metricsAddr(t, m, "gateway"), metricsAddr(t, m, "render-coordinator"), metricsAddr(t, m, "node-1"), metricsAddr(t, m, "decodo-proxy")
	resultsBefore, _ := scrape(t, gw, "fetchmesh_results_total")
	rendersBefore, _ := scrape(t, gw, "fetchmesh_attempt_duration_seconds_count", `fetchmesh_tier="TIER_RENDER"`)
	done := make(chan *batchRun, 1)
	go func() {
		b, _ := fetchGRPC(t, context.Background(), c, slowRenders(m, 12, 2000, "metrics"), forceRender)
		done <- b
	}()
	busySeen := false
	deadline := time.Now().Add(10 * time.Second)
	for !busySeen && time.Now().Before(deadline) {
		busy, _ := scrape(t, coord, "fetchmesh_render_slots", `state="busy"`)
		busySeen = busy > 0
		time.Sleep(100 * time.Millisecond)
	}
	if !busySeen {
		t.Error("the pool's busy slots never showed on the coordinator's /metrics")
	}
	b := <-done
	if b.summary.GetOk() != 12 {
		t.Fatalf("batch: %v", b.summary)
	}
	// A retried and a refused Decodo call, so those series exist too.
	fetchGRPC(t, context.Background(), c, urls(m.TestWebURL, "/challenge/403/601?emu=503x1", "/challenge/403/602?emu=failed"), nil)
	if after, _ := scrape(t, gw, "fetchmesh_results_total"); after < resultsBefore+12 {
		t.Errorf("results counter went %v -> %v", resultsBefore, after)
	}
	if after, _ := scrape(t, gw, "fetchmesh_attempt_duration_seconds_count", `fetchmesh_tier="TIER_RENDER"`); after < rendersBefore+12 {
		t.Errorf("render attempts went %v -> %v", rendersBefore, after)
	}
	if n, _ := scrape(t, gw, "fetchmesh_render_queue_wait_seconds_count"); n < 12 {
		t.Errorf("queue wait histogram count %v", n)
	}
	// Every metric the dashboard and the alert rules query is exported.
	var all strings.Builder
	for _, a := range []string{gw, coord, node, dec, metricsAddr(t, m, "static-fetcher")} {
		resp, err := http.Get("http://" + a + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
		}
		resp.Body.Close()
	}
	exposed := all.String()
	for _, f := range []string{"deploy/grafana/fetchmesh-dashboard.json", "deploy/prometheus/alerts.yml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`fetchmesh_[a-z_]+`).FindAllString(string(b), -1) {
			if name == "fetchmesh_tier" || name == "fetchmesh_outcome" {
				continue // labels
			}
			if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(exposed) {
				t.Errorf("%s queries %s, which no service exports", f, name)
			}
		}
	}
}
