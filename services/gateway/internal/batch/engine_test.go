package batch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// tierFunc is an in-process tier for engine tests; the end-to-end tests
// use the real services.
type tierFunc func(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult

func (f tierFunc) Attempt(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
	return f(ctx, req)
}

func verdict(v commonv1.Verdict) batch.AttemptResult {
	return batch.AttemptResult{Verdict: v, Reason: v.String(), Page: &commonv1.Page{StatusCode: 200}}
}

func failure(kind commonv1.ErrorKind, retryable bool) batch.AttemptResult {
	return batch.AttemptResult{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: "failed", Error: &commonv1.Error{Kind: kind, Message: kind.String(), Retryable: retryable}}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type collected struct {
	mu      sync.Mutex
	results map[int32][]*gatewayv1.UrlResult
	summary *gatewayv1.BatchSummary
	events  int
}

func run(t *testing.T, e *batch.Engine, ctx context.Context, urls []string, o *gatewayv1.FetchOptions) (*collected, error) {
	t.Helper()
	c := &collected{results: map[int32][]*gatewayv1.UrlResult{}}
	err := e.Run(ctx, urls, o, func(ev *gatewayv1.FetchBatchResponse) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.events++
		if r := ev.GetResult(); r != nil {
			c.results[r.GetIndex()] = append(c.results[r.GetIndex()], r)
		}
		if s := ev.GetSummary(); s != nil {
			c.summary = s
		}
		return nil
	})
	return c, err
}

func (c *collected) exactlyOnePerIndex(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		if got := len(c.results[int32(i)]); got != 1 {
			t.Fatalf("index %d has %d results", i, got)
		}
	}
	if c.summary == nil || int(c.summary.GetResults()) != n {
		t.Fatalf("summary %v, want %d results", c.summary, n)
	}
}

func TestEngine_EveryIndexGetsExactlyOneResultWhateverFails(t *testing.T) {
	var calls atomic.Int64
	chaos := tierFunc(func(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
		calls.Add(1)
		switch rand.IntN(7) {
		case 0:
			return verdict(commonv1.Verdict_VERDICT_COMPLETE)
		case 1:
			return verdict(commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT)
		case 2:
			return verdict(commonv1.Verdict_VERDICT_BLOCKED)
		case 3:
			return verdict(commonv1.Verdict_VERDICT_NOT_FOUND)
		case 4:
			return failure(commonv1.ErrorKind_ERROR_KIND_TIMEOUT, true)
		case 5:
			return failure(commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED, true)
		}
		return failure(commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, true)
	})
	e := batch.NewEngine(batch.Tiers{Static: chaos, Render: chaos, Decodo: chaos}, batch.Config{DecodoMaxCalls: 50}, quiet)
	urls := make([]string, 3000)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://site%d.example/p/%d", i%17, i%2500) // 500 duplicates
	}
	urls[7], urls[99] = "ftp://x/", "::not a url"
	c, err := run(t, e, context.Background(), urls, &gatewayv1.FetchOptions{StaticConcurrency: 50})
	if err != nil {
		t.Fatal(err)
	}
	c.exactlyOnePerIndex(t, len(urls))
	if c.results[7][0].GetOutcome() != gatewayv1.Outcome_OUTCOME_INVALID || c.results[99][0].GetOutcome() != gatewayv1.Outcome_OUTCOME_INVALID {
		t.Error("invalid URLs not reported as invalid")
	}
	s := c.summary
	if s.GetOk()+s.GetNotFound()+s.GetBlocked()+s.GetFailed()+s.GetInvalid() != int32(len(urls)) {
		t.Errorf("outcome counts do not add up: %v", s)
	}
	if s.GetDecodoCalls() > 50 {
		t.Errorf("%d Decodo calls past a budget of 50", s.GetDecodoCalls())
	}
	for i, rs := range c.results {
		r := rs[0]
		if r.GetOutcome() != gatewayv1.Outcome_OUTCOME_OK && r.GetOutcome() != gatewayv1.Outcome_OUTCOME_INVALID && r.GetError().GetMessage() == "" {
			t.Fatalf("index %d: %v without an error", i, r.GetOutcome())
		}
	}
}

func TestEngine_DecodoBudgetExhausted(t *testing.T) {
	blocked := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		return verdict(commonv1.Verdict_VERDICT_BLOCKED)
	})
	var decodoCalls atomic.Int64
	decodo := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		decodoCalls.Add(1)
		return verdict(commonv1.Verdict_VERDICT_COMPLETE)
	})
	e := batch.NewEngine(batch.Tiers{Static: blocked, Render: blocked, Decodo: decodo}, batch.Config{}, quiet)
	urls := []string{"https://a.example/1", "https://a.example/2", "https://a.example/3"}
	c, err := run(t, e, context.Background(), urls, &gatewayv1.FetchOptions{Decodo: &gatewayv1.DecodoOptions{MaxCalls: 2}, DecodoConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.exactlyOnePerIndex(t, 3)
	exhausted := 0
	for _, rs := range c.results {
		if rs[0].GetError().GetKind() == commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED {
			exhausted++
			if rs[0].GetOutcome() != gatewayv1.Outcome_OUTCOME_BLOCKED {
				t.Errorf("budget exhausted should leave the URL blocked, got %v", rs[0].GetOutcome())
			}
		}
	}
	if decodoCalls.Load() != 2 || exhausted != 1 || c.summary.GetDecodoCalls() != 2 {
		t.Errorf("decodo calls %d, exhausted %d, summary %d: want 2, 1, 2", decodoCalls.Load(), exhausted, c.summary.GetDecodoCalls())
	}
}

func TestEngine_ConcurrencyLimitsHold(t *testing.T) {
	var inStatic, maxStatic, inDecodo, maxDecodo atomic.Int64
	track := func(in, peak *atomic.Int64, v commonv1.Verdict) tierFunc {
		return func(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
			n := in.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			in.Add(-1)
			return verdict(v)
		}
	}
	blocked := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		return verdict(commonv1.Verdict_VERDICT_BLOCKED)
	})
	e := batch.NewEngine(batch.Tiers{
		Static: track(&inStatic, &maxStatic, commonv1.Verdict_VERDICT_BLOCKED),
		Render: blocked,
		Decodo: track(&inDecodo, &maxDecodo, commonv1.Verdict_VERDICT_COMPLETE),
	}, batch.Config{DecodoMaxCalls: 1000}, quiet)
	urls := make([]string, 400)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://b.example/%d", i)
	}
	c, err := run(t, e, context.Background(), urls, &gatewayv1.FetchOptions{StaticConcurrency: 7, DecodoConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	c.exactlyOnePerIndex(t, len(urls))
	if maxStatic.Load() > 7 || maxDecodo.Load() > 2 {
		t.Errorf("peak concurrency static %d (limit 7), decodo %d (limit 2)", maxStatic.Load(), maxDecodo.Load())
	}
}

func TestEngine_CancelStopsWorkPromptly(t *testing.T) {
	var running atomic.Int64
	slow := tierFunc(func(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
		running.Add(1)
		defer running.Add(-1)
		select {
		case <-ctx.Done():
			return failure(commonv1.ErrorKind_ERROR_KIND_CANCELED, false)
		case <-time.After(time.Minute):
			return verdict(commonv1.Verdict_VERDICT_COMPLETE)
		}
	})
	e := batch.NewEngine(batch.Tiers{Static: slow}, batch.Config{}, quiet)
	urls := make([]string, 500)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://c.example/%d", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := run(t, e, ctx, urls, nil)
	if status.Code(err) != codes.Canceled {
		t.Errorf("err %v, want Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second || running.Load() != 0 {
		t.Errorf("Run returned after %s with %d attempts still running", d, running.Load())
	}
}

func TestEngine_EmitFailureCancelsTheBatch(t *testing.T) {
	var attempts atomic.Int64
	ok := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		attempts.Add(1)
		return verdict(commonv1.Verdict_VERDICT_COMPLETE)
	})
	e := batch.NewEngine(batch.Tiers{Static: ok}, batch.Config{}, quiet)
	urls := make([]string, 5000)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://d.example/%d", i)
	}
	gone := errors.New("client gone")
	sent := 0
	err := e.Run(context.Background(), urls, &gatewayv1.FetchOptions{StaticConcurrency: 10}, func(*gatewayv1.FetchBatchResponse) error {
		sent++
		if sent > 20 {
			return gone
		}
		return nil
	})
	if !errors.Is(err, gone) || attempts.Load() > 200 {
		t.Errorf("err %v after %d attempts: want the emit error and the batch stopped early", err, attempts.Load())
	}
}

func TestEngine_RejectsBadBatches(t *testing.T) {
	e := batch.NewEngine(batch.Tiers{Static: tierFunc(nil)}, batch.Config{}, quiet)
	for name, tc := range map[string]struct {
		n    int
		opts *gatewayv1.FetchOptions
		want string
	}{
		"empty":        {0, nil, "1 to 10000"},
		"too many":     {10_001, nil, "1 to 10000"},
		"concurrency":  {1, &gatewayv1.FetchOptions{StaticConcurrency: 501}, "static_concurrency"},
		"decodo conc":  {1, &gatewayv1.FetchOptions{DecodoConcurrency: 11}, "decodo_concurrency"},
		"body":         {1, &gatewayv1.FetchOptions{MaxBodyBytes: -1}, "max_body_bytes"},
		"header":       {1, &gatewayv1.FetchOptions{Headers: []*commonv1.Header{{Name: "Content-Length", Value: "1"}}}, "Content-Length"},
		"viewport":     {1, &gatewayv1.FetchOptions{Render: &commonv1.RenderOptions{ViewportWidth: 10}}, "viewport_width"},
		"unknown mode": {1, &gatewayv1.FetchOptions{Mode: 42}, "mode"},
	} {
		urls := make([]string, tc.n)
		for i := range urls {
			urls[i] = "https://e.example/"
		}
		events := 0
		err := e.Run(context.Background(), urls, tc.opts, func(*gatewayv1.FetchBatchResponse) error { events++; return nil })
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) || events != 0 {
			t.Errorf("%s: err %v after %d events; want INVALID_ARGUMENT mentioning %q and nothing started", name, err, events, tc.want)
		}
	}
}

func TestEngine_LearnsHostsThatNeedRendering(t *testing.T) {
	var staticCalls, renderCalls atomic.Int64
	static := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		staticCalls.Add(1)
		return verdict(commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT)
	})
	render := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		renderCalls.Add(1)
		return verdict(commonv1.Verdict_VERDICT_COMPLETE)
	})
	e := batch.NewEngine(batch.Tiers{Static: static, Render: render}, batch.Config{}, quiet)
	urls := make([]string, 100)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://spa.example/%d", i)
	}
	// One at a time, so each URL sees what the earlier ones taught.
	c, err := run(t, e, context.Background(), urls, &gatewayv1.FetchOptions{StaticConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.exactlyOnePerIndex(t, 100)
	// The first URLs until the host is learned, then one in ten re-checks.
	if s := staticCalls.Load(); s > 16 || s < 5 || renderCalls.Load() != 100 {
		t.Errorf("static %d, render %d: want ~13 static fetches and 100 renders", s, renderCalls.Load())
	}
}

func TestEngine_MixedHostIsNotLearned(t *testing.T) {
	var renders atomic.Int64
	static := tierFunc(func(_ context.Context, req batch.AttemptRequest) batch.AttemptResult {
		if strings.Contains(req.URL, "/app/") {
			return verdict(commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT)
		}
		return verdict(commonv1.Verdict_VERDICT_COMPLETE)
	})
	render := tierFunc(func(context.Context, batch.AttemptRequest) batch.AttemptResult {
		renders.Add(1)
		return verdict(commonv1.Verdict_VERDICT_COMPLETE)
	})
	e := batch.NewEngine(batch.Tiers{Static: static, Render: render}, batch.Config{}, quiet)
	urls := make([]string, 100)
	for i := range urls {
		kind := "article"
		if i%4 == 0 {
			kind = "app"
		}
		urls[i] = fmt.Sprintf("https://mixed.example/%s/%d", kind, i)
	}
	c, err := run(t, e, context.Background(), urls, &gatewayv1.FetchOptions{StaticConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.exactlyOnePerIndex(t, 100)
	if renders.Load() != 25 {
		t.Errorf("%d renders, want exactly the 25 app shells", renders.Load())
	}
}
