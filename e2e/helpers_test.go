package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fetchmesh/fetchmesh/client"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func dial(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func urls(base string, paths ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = base + p
	}
	return out
}

// batchRun is what a batch's stream carried.
type batchRun struct {
	accepted *gatewayv1.BatchAccepted
	results  map[int32]*gatewayv1.UrlResult
	order    []int32 // indices in arrival order
	arrived  map[int32]time.Duration
	summary  *gatewayv1.BatchSummary
	dups     []int32 // indices that arrived twice
}

func (b *batchRun) take(t *testing.T, ev *gatewayv1.FetchBatchResponse, since time.Time) {
	t.Helper()
	switch e := ev.GetEvent().(type) {
	case *gatewayv1.FetchBatchResponse_Accepted:
		if b.accepted != nil || len(b.results) > 0 {
			t.Errorf("accepted event out of place")
		}
		b.accepted = e.Accepted
	case *gatewayv1.FetchBatchResponse_Result:
		i := e.Result.GetIndex()
		if _, seen := b.results[i]; seen {
			b.dups = append(b.dups, i)
		}
		b.results[i] = e.Result
		b.order = append(b.order, i)
		b.arrived[i] = time.Since(since)
	case *gatewayv1.FetchBatchResponse_Summary:
		b.summary = e.Summary
	}
}

func newBatchRun() *batchRun {
	return &batchRun{results: map[int32]*gatewayv1.UrlResult{}, arrived: map[int32]time.Duration{}}
}

// fetchGRPC runs a batch over gRPC and collects its stream.
func fetchGRPC(t *testing.T, ctx context.Context, c *client.Client, in []string, opts *gatewayv1.FetchOptions) (*batchRun, error) {
	t.Helper()
	b := newBatchRun()
	start := time.Now()
	for ev, err := range c.FetchBatch(ctx, in, opts) {
		if err != nil {
			return b, err
		}
		b.take(t, ev, start)
	}
	return b, nil
}

// fetchREST runs a batch over REST, reading the NDJSON stream line by line
// as it arrives.
func fetchREST(t *testing.T, ctx context.Context, base string, body any) (*batchRun, int, error) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/batches:stream", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b := newBatchRun()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return b, resp.StatusCode, fmt.Errorf("line is not JSON: %v: %.200s", err, sc.Text())
		}
		if e, ok := line["error"]; ok {
			return b, resp.StatusCode, fmt.Errorf("stream error: %s", e)
		}
		var ev gatewayv1.FetchBatchResponse
		if err := protojson.Unmarshal(line["result"], &ev); err != nil {
			return b, resp.StatusCode, fmt.Errorf("bad event: %v", err)
		}
		b.take(t, &ev, start)
	}
	return b, resp.StatusCode, sc.Err()
}

// checkOnePerIndex asserts the batch's central promise: exactly one
// result per input index, then a summary that counts them.
func (b *batchRun) checkOnePerIndex(t *testing.T, n int) {
	t.Helper()
	if b.accepted == nil || int(b.accepted.GetUrls()) != n {
		t.Errorf("accepted event: %v, want urls=%d", b.accepted, n)
	}
	if len(b.dups) > 0 {
		t.Errorf("indices with more than one result: %v", b.dups)
	}
	if len(b.results) != n {
		t.Errorf("%d results, want %d", len(b.results), n)
	}
	for i := range n {
		if _, ok := b.results[int32(i)]; !ok {
			t.Errorf("no result for index %d", i)
		}
	}
	if b.summary == nil || int(b.summary.GetResults()) != n {
		t.Errorf("summary %v, want results=%d", b.summary, n)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil || p.Signal(syscall.Signal(0)) != nil {
		return false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return !strings.Contains(string(b), ") Z ") // a zombie is dead for our purpose
}
