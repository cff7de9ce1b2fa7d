package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/testweb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// mixed is a batch of every kind of page, with the verdict and outcome each
// must end with. Challenges stay blocked through the render tier and come
// back through Decodo (the local emulator).
var mixed = []struct {
	path    string
	verdict commonv1.Verdict
	outcome gatewayv1.Outcome
	errKind commonv1.ErrorKind
}{
	{"/article/1", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/redirect/2/2", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/app/inline/3", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/app/fetch/4", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/challenge/200/5", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/challenge/403/6", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/status/404", commonv1.Verdict_VERDICT_NOT_FOUND, gatewayv1.Outcome_OUTCOME_NOT_FOUND, commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS},
	{"/status/410", commonv1.Verdict_VERDICT_NOT_FOUND, gatewayv1.Outcome_OUTCOME_NOT_FOUND, commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS},
	{"/flaky/e2e-mixed?fail=1&n=9", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"/slow/3000", commonv1.Verdict_VERDICT_COMPLETE, gatewayv1.Outcome_OUTCOME_OK, 0},
	{"ftp://example.com/file", 0, gatewayv1.Outcome_OUTCOME_INVALID, commonv1.ErrorKind_ERROR_KIND_INVALID_URL},
	{"not a url", 0, gatewayv1.Outcome_OUTCOME_INVALID, commonv1.ErrorKind_ERROR_KIND_INVALID_URL},
}

func mixedURLs(base string) []string {
	out := make([]string, len(mixed))
	for i, m := range mixed {
		if strings.HasPrefix(m.path, "/") {
			out[i] = base + m.path
		} else {
			out[i] = m.path
		}
	}
	return out
}

func checkMixed(t *testing.T, b *batchRun, web *testweb.Web, in []string) {
	t.Helper()
	b.checkOnePerIndex(t, len(mixed))
	for i, m := range mixed {
		r := b.results[int32(i)]
		if r == nil {
			continue
		}
		if r.GetUrl() != in[i] || r.GetVerdict() != m.verdict || r.GetOutcome() != m.outcome || r.GetError().GetKind() != m.errKind {
			t.Errorf("%s: url %q verdict %v outcome %v error %v; want %v %v %v", m.path, r.GetUrl(), r.GetVerdict(), r.GetOutcome(), r.GetError(), m.verdict, m.outcome, m.errKind)
		}
		if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_OK && r.GetError().GetMessage() == "" {
			t.Errorf("%s: non-OK result without an error message", m.path)
		}
		if truth, ok := web.Truth(in[i]); ok && !truth.Check(r.GetPage().GetTitle(), r.GetPage().GetText()) {
			t.Errorf("%s: wrong content (title %q)", m.path, r.GetPage().GetTitle())
		}
		if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_INVALID && len(r.GetAttempts()) == 0 {
			t.Errorf("%s: no attempts recorded", m.path)
		}
		// Only app shells and challenges are rendered.
		rendered := false
		for _, a := range r.GetAttempts() {
			rendered = rendered || a.GetTier() == gatewayv1.Tier_TIER_RENDER
		}
		wantRender := strings.Contains(m.path, "/app/") || strings.Contains(m.path, "/challenge/")
		if rendered != wantRender {
			t.Errorf("%s: rendered=%v, want %v", m.path, rendered, wantRender)
		}
	}
	// The slow page must not hold back the others: results stream as they finish.
	slow := int32(len(mixed) - 3)
	first := b.order[0]
	if b.arrived[first] > b.arrived[slow]-2*time.Second {
		t.Errorf("first result came at %s, the slow one at %s: results were not streamed", b.arrived[first], b.arrived[slow])
	}
	if b.results[8].GetAttempts()[0].GetStatusCode() != 503 || len(b.results[8].GetAttempts()) != 2 {
		t.Errorf("flaky page: want a 503 attempt then a retry, got %v", b.results[8].GetAttempts())
	}
}

// The test web's pages are generated from its seed, so the expected content
// is known without fetching.
var web = testweb.New(1)

func TestE2E_MixedBatchOverGRPC(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := mixedURLs(shared.TestWebURL)
	in[8] = strings.Replace(in[8], "e2e-mixed", "e2e-mixed-grpc", 1)
	b, err := fetchGRPC(t, context.Background(), c, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMixed(t, b, web, in)
	s := b.summary
	if s.GetOk() != 8 || s.GetNotFound() != 2 || s.GetBlocked() != 0 || s.GetFailed() != 0 || s.GetInvalid() != 2 || s.GetByStatic() != 6 || s.GetByRender() != 2 || s.GetByDecodo() != 2 || s.GetDecodoCalls() != 2 {
		t.Errorf("summary counts: %v", s)
	}
}

func TestE2E_MixedBatchOverREST(t *testing.T) {
	in := mixedURLs(shared.TestWebURL)
	in[8] = strings.Replace(in[8], "e2e-mixed", "e2e-mixed-rest", 1)
	b, code, err := fetchREST(t, context.Background(), shared.RESTURL, map[string]any{"urls": in})
	if err != nil || code != http.StatusOK {
		t.Fatalf("status %d, err %v", code, err)
	}
	checkMixed(t, b, web, in)
}

func TestE2E_RESTBodiesAreReadableText(t *testing.T) {
	resp, err := http.Post(shared.RESTURL+"/v1/fetch", "application/json",
		strings.NewReader(fmt.Sprintf(`{"urls":[%q,%q]}`, shared.TestWebURL+"/article/5", shared.TestWebURL+"/image.png")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Index int `json:"index"`
			Page  struct {
				Text   *string `json:"text"`
				Binary *string `json:"binary"`
			} `json:"page"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Results) != 2 {
		t.Fatalf("decode: %v (%d results)", err, len(out.Results))
	}
	truth, _ := web.Truth(shared.TestWebURL + "/article/5")
	if out.Results[0].Page.Text == nil || !strings.Contains(*out.Results[0].Page.Text, truth.Fingerprint) {
		t.Errorf("article body is not readable text in the JSON")
	}
	if out.Results[1].Page.Binary == nil || !strings.HasPrefix(*out.Results[1].Page.Binary, "iVBORw0KGgo") {
		t.Errorf("image body should be base64 binary")
	}
}

func TestE2E_BatchSizeLimits(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	for _, n := range []int{0, 10_001} {
		in := make([]string, n)
		for i := range in {
			in[i] = shared.TestWebURL + "/article/1"
		}
		_, err := fetchGRPC(t, context.Background(), c, in, nil)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "10000") {
			t.Errorf("%d URLs over gRPC: %v, want INVALID_ARGUMENT naming the limit", n, err)
		}
		_, code, err := fetchREST(t, context.Background(), shared.RESTURL, map[string]any{"urls": in})
		if code != http.StatusBadRequest {
			t.Errorf("%d URLs over REST: status %d (%v), want 400", n, code, err)
		}
	}
	if web := shared.Proc("testweb"); web == nil {
		t.Fatal("no test web")
	}
}

// 10,000 URLs of ~2 KB each (a 20 MB request) are accepted over gRPC and
// REST. They point at a loopback port the SSRF guard refuses, so each
// fails at once without sending a byte anywhere.
func TestE2E_TenThousandLongURLs(t *testing.T) {
	in := make([]string, 10_000)
	pad := strings.Repeat("p", 2000)
	for i := range in {
		in[i] = fmt.Sprintf("http://127.0.0.1:9/%d?pad=%s", i, pad)
	}
	c := dial(t, shared.GatewayGRPC)
	b, err := fetchGRPC(t, context.Background(), c, in, &gatewayv1.FetchOptions{StaticConcurrency: 500})
	if err != nil {
		t.Fatal(err)
	}
	b.checkOnePerIndex(t, len(in))
	if r := b.results[9999]; r.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS {
		t.Errorf("want FORBIDDEN_ADDRESS, got %v", r.GetError())
	}
	rb, code, err := fetchREST(t, context.Background(), shared.RESTURL, map[string]any{"urls": in, "options": map[string]any{"staticConcurrency": 500}})
	if err != nil || code != 200 {
		t.Fatalf("REST: %d %v", code, err)
	}
	rb.checkOnePerIndex(t, len(in))
}

func TestE2E_DuplicatesFetchedOnceReportedAtEveryIndex(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	u := shared.TestWebURL + "/article/42"
	spelled := strings.Replace(u, "http://", "HTTP://", 1)
	in := []string{u, shared.TestWebURL + "/article/43", u, spelled}
	b, err := fetchGRPC(t, context.Background(), c, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.checkOnePerIndex(t, 4)
	if b.accepted.GetUniqueUrls() != 2 || b.summary.GetStaticAttempts() != 2 {
		t.Errorf("unique %d, static attempts %d: want 2 and 2", b.accepted.GetUniqueUrls(), b.summary.GetStaticAttempts())
	}
	for _, i := range []int32{0, 2, 3} {
		if b.results[i].GetOutcome() != gatewayv1.Outcome_OUTCOME_OK || b.results[i].GetUrl() != in[i] {
			t.Errorf("index %d: %v %q", i, b.results[i].GetOutcome(), b.results[i].GetUrl())
		}
	}
}

func TestE2E_BadOptionsRejected(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	for name, o := range map[string]*gatewayv1.FetchOptions{
		"static concurrency 501": {StaticConcurrency: 501},
		"body limit 1 GiB":       {MaxBodyBytes: 1 << 30},
		"timeout 1 hour":         {UrlTimeout: durationpb.New(time.Hour)},
		"Host header":            {Headers: []*commonv1.Header{{Name: "Host", Value: "evil"}}},
	} {
		_, err := fetchGRPC(t, context.Background(), c, []string{shared.TestWebURL + "/article/1"}, o)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

func TestE2E_HostileResponsesAreBoundedAndServicesStayHealthy(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := urls(shared.TestWebURL, "/gzip-bomb", "/huge/200", "/drip", "/huge-headers", "/redirect-loop", "/status/503", "/article/7")
	start := time.Now()
	b, err := fetchGRPC(t, context.Background(), c, in, &gatewayv1.FetchOptions{UrlTimeout: durationpb.New(3 * time.Second), MaxBodyBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b.checkOnePerIndex(t, len(in))
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("hostile batch took %s", d)
	}
	want := []struct {
		truncated bool
		kind      commonv1.ErrorKind
	}{
		{true, 0}, {true, 0},
		{false, commonv1.ErrorKind_ERROR_KIND_TIMEOUT},
		{false, commonv1.ErrorKind_ERROR_KIND_TOO_LARGE},
		{false, commonv1.ErrorKind_ERROR_KIND_TOO_MANY_REDIRECTS},
		{false, commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS},
		{false, 0},
	}
	for i, w := range want {
		r := b.results[int32(i)]
		if r.GetPage().GetTruncated() != w.truncated || r.GetError().GetKind() != w.kind {
			t.Errorf("%s: truncated=%v error=%v; want truncated=%v kind=%v", in[i], r.GetPage().GetTruncated(), r.GetError(), w.truncated, w.kind)
		}
		if r.GetPage().GetBodyBytes() > 2<<20 {
			t.Errorf("%s: %d body bytes past the 2 MiB limit", in[i], r.GetPage().GetBodyBytes())
		}
	}
	// Both services answer health checks and work afterwards.
	b, err = fetchGRPC(t, context.Background(), c, urls(shared.TestWebURL, "/article/8"), nil)
	if err != nil || b.results[0].GetOutcome() != gatewayv1.Outcome_OUTCOME_OK {
		t.Errorf("after the hostile batch: %v %v", err, b.results[0])
	}
	resp, err := http.Get(shared.RESTURL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
}

func TestE2E_SSRFRefusedThroughTheMesh(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	_, webPort, _ := strings.Cut(shared.TestWeb, ":")
	in := []string{
		"http://" + shared.GatewayGRPC + "/",     // the mesh's own gateway
		"http://[::1]:" + webPort + "/article/1", // the test web over IPv6 loopback: not the allowed address
		"http://[::ffff:127.0.0.1]:9/",           // mapped IPv4 loopback, another port
		"http://169.254.169.254/latest/meta-data/",
		"http://localhost:9/",
		"http://0x7f000001:9/",                                     // 127.0.0.1 spelled as one hex number
		shared.TestWebURL + "/redirect-to?url=http://127.0.0.1:9/", // redirect to a refused address
		shared.TestWebURL + "/redirect-to?url=http://127.0.0.1:" + strings.Split(shared.GatewayGRPC, ":")[1] + "/",
	}
	b, err := fetchGRPC(t, context.Background(), c, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.checkOnePerIndex(t, len(in))
	for i, u := range in {
		r := b.results[int32(i)]
		if strings.Contains(u, "0x7f") {
			if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_INVALID {
				t.Errorf("%s: %v, want INVALID", u, r.GetOutcome())
			}
			continue
		}
		if r.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS || r.GetOutcome() != gatewayv1.Outcome_OUTCOME_FAILED {
			t.Errorf("%s: %v %v, want FORBIDDEN_ADDRESS", u, r.GetOutcome(), r.GetError())
		}
	}
}

func TestE2E_ClientCancelStopsInFlightFetches(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := make([]string, 50)
	for i := range in {
		in[i] = fmt.Sprintf("%s/slow/20000?i=%d", shared.TestWebURL, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := c.FetchBatch(ctx, in, nil)
	for ev, err := range stream {
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetAccepted() != nil {
			break // stopping the iteration cancels the batch
		}
	}
	// The test web sees the fetches in flight, then sees them end.
	deadline := time.Now().Add(5 * time.Second)
	var canceledAt time.Time
	for time.Now().Before(deadline) {
		n, _ := webStats(t, shared.TestWebURL)
		if canceledAt.IsZero() {
			canceledAt = time.Now()
		}
		if n == 0 {
			if d := time.Since(canceledAt); d > time.Second {
				t.Errorf("in-flight fetches took %s to stop", d)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, _ := webStats(t, shared.TestWebURL)
	t.Errorf("fetches still in flight 5 s after the client canceled: %d", n)
}

// webStats is a test web's count of requests in flight and served.
func webStats(t *testing.T, base string) (inflight, requests int) {
	t.Helper()
	resp, err := http.Get(base + "/_stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Inflight, Requests int }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Inflight, s.Requests
}

func webInflight(t *testing.T, base string) int {
	n, _ := webStats(t, base)
	return n
}

// A client that stops reading slows the batch down: the gateway does not
// keep fetching into a growing buffer.
func TestE2E_SlowReaderGetsBackPressure(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := make([]string, 3000)
	for i := range in {
		in[i] = fmt.Sprintf("%s/article/%d?bp", shared.TestWebURL, 100000+i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.API().FetchBatch(ctx, &gatewayv1.FetchBatchRequest{Urls: in, Options: &gatewayv1.FetchOptions{MaxBodyBytes: 200 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // accepted
		t.Fatal(err)
	}
	_, before := webStats(t, shared.TestWebURL)
	time.Sleep(3 * time.Second)
	_, mid := webStats(t, shared.TestWebURL)
	time.Sleep(time.Second)
	_, after := webStats(t, shared.TestWebURL)
	if after != mid || after-before >= len(in)/2 {
		t.Errorf("with nobody reading, fetches went on: %d then %d then %d requests (batch of %d)", before, mid, after, len(in))
	}
	// Reading resumes the batch to its end.
	n := 0
	for {
		ev, err := stream.Recv()
		if err != nil {
			break
		}
		if ev.GetResult() != nil {
			n++
		}
	}
	if n != len(in) {
		t.Errorf("%d results after resuming, want %d", n, len(in))
	}
}

func TestE2E_ConcurrentBatchesDoNotBlockEachOther(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	slow := make([]string, 40)
	for i := range slow {
		slow[i] = fmt.Sprintf("%s/slow/3000?c=%d", shared.TestWebURL, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fetchGRPC(t, ctx, c, slow, &gatewayv1.FetchOptions{StaticConcurrency: 4})
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	b, err := fetchGRPC(t, context.Background(), c, urls(shared.TestWebURL, "/article/11", "/article/12"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second || b.summary.GetOk() != 2 {
		t.Errorf("small batch took %s behind a slow one (ok=%d)", d, b.summary.GetOk())
	}
	cancel()
	wg.Wait()
}

func TestE2E_UnaryFetchAnswersInIndexOrder(t *testing.T) {
	c := dial(t, shared.GatewayGRPC)
	in := urls(shared.TestWebURL, "/slow/800", "/article/701", "/status/404")
	resp, err := c.Fetch(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != 3 || resp.GetSummary().GetResults() != 3 {
		t.Fatalf("%d results, summary %v", len(resp.GetResults()), resp.GetSummary())
	}
	for i, r := range resp.GetResults() {
		if int(r.GetIndex()) != i || r.GetUrl() != in[i] {
			t.Errorf("position %d holds index %d (%s)", i, r.GetIndex(), r.GetUrl())
		}
	}
	if resp.GetResults()[2].GetOutcome() != gatewayv1.Outcome_OUTCOME_NOT_FOUND {
		t.Errorf("404: %v", resp.GetResults()[2].GetOutcome())
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = shared.TestWebURL + "/article/1"
	}
	if _, err := c.Fetch(context.Background(), many, nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("101 URLs: %v, want INVALID_ARGUMENT", err)
	}
}
