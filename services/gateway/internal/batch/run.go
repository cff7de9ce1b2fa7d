package batch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/policy"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"
)

// run is one batch in progress.
type run struct {
	e     *Engine
	id    string
	opts  Options
	start time.Time
	// Stage limits: URLs in the static stage (the batch's static
	// concurrency), URLs past it (the escalation window), and Decodo calls
	// in flight (the batch's Decodo concurrency).
	static, escalated, decodo semaphore
	decodoCalls               atomic.Int32 // calls started, against opts.DecodoMaxCalls
	hosts                     *hostMemory
	summary                   summary
	out                       chan *gatewayv1.UrlResult
	traceID                   string
}

func newRun(e *Engine, opts Options) *run {
	return &run{
		e:         e,
		id:        newBatchID(),
		opts:      opts,
		start:     time.Now(),
		static:    newSemaphore(opts.StaticConcurrency),
		escalated: newSemaphore(e.cfg.EscalationWindow),
		decodo:    newSemaphore(opts.DecodoConcurrency),
		hosts:     newHostMemory(),
		// Small: a slow client stops the workers instead of growing a queue.
		out: make(chan *gatewayv1.UrlResult, 16),
	}
}

// dispatch starts every job, each once it has a place in its first stage,
// and closes r.out when all are done (or the batch is canceled).
func (r *run) dispatch(ctx context.Context, jobs []*job) {
	defer close(r.out)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, j := range jobs {
		j.startOnRender = r.opts.Mode == gatewayv1.Mode_MODE_AUTO && r.hosts.preferRender(j.host)
		first := policy.Next(r.policyInput(j, nil))
		stage := r.escalated
		if first.Next == gatewayv1.Tier_TIER_STATIC || first.Next == gatewayv1.Tier_TIER_UNSPECIFIED {
			stage = r.static
		}
		if !stage.acquire(ctx) {
			break
		}
		wg.Go(func() { r.process(ctx, j, stage) })
	}
}

func (r *run) policyInput(j *job, attempts []policy.Attempt) policy.Input {
	return policy.Input{
		Mode:         r.opts.Mode,
		Attempts:     attempts,
		Render:       r.renderUnavailable(),
		Decodo:       r.decodoUnavailable(),
		PreferRender: j.startOnRender,
	}
}

// Availability is implemented by tiers that can be temporarily unable to
// take work (e.g. a render pool without nodes).
type Availability interface {
	Unavailable() *commonv1.Error
}

func (r *run) renderUnavailable() *commonv1.Error {
	if r.e.tiers.Render == nil {
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, Message: "the render tier is not configured on this gateway"}
	}
	if a, ok := r.e.tiers.Render.(Availability); ok {
		return a.Unavailable()
	}
	return nil
}

func (r *run) decodoUnavailable() *commonv1.Error {
	if r.e.tiers.Decodo == nil {
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_NOT_CONFIGURED, Message: "the Decodo tier is not configured on this gateway"}
	}
	if int(r.decodoCalls.Load()) >= r.opts.DecodoMaxCalls {
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED, Message: fmt.Sprintf("the batch's Decodo budget of %d calls is used up", r.opts.DecodoMaxCalls)}
	}
	if a, ok := r.e.tiers.Decodo.(Availability); ok {
		return a.Unavailable()
	}
	return nil
}

// process runs one job to its final result. It holds a place in stage and
// moves to the escalation stage when it leaves the static tier.
func (r *run) process(ctx context.Context, j *job, stage semaphore) {
	holding := stage
	defer func() { holding.release() }()
	start := time.Now()
	ctx, span := tracer.Start(ctx, "url", trace.WithAttributes(attribute.String("url.full", j.url), attribute.Int("fetchmesh.url.index", j.indices[0])))
	defer span.End()
	jctx, cancel := context.WithTimeout(ctx, r.opts.URLTimeout)
	defer cancel()
	var held int64 // page bytes this URL holds, for the memory gauge
	defer func() { r.e.m.held.Add(context.Background(), -held) }()

	var (
		attempts []policy.Attempt
		records  []*gatewayv1.Attempt
		last     *AttemptResult
		lastTier gatewayv1.Tier
		// The latest attempt that returned a page: when a later tier fails
		// without one (Decodo down, say), the result still shows what the
		// site answered. The escalation window bounds how many are held.
		shown     *AttemptResult
		shownTier gatewayv1.Tier
		d         policy.Decision
	)
	for {
		d = policy.Next(r.policyInput(j, attempts))
		if d.Next == gatewayv1.Tier_TIER_UNSPECIFIED {
			break
		}
		if d.Next != gatewayv1.Tier_TIER_STATIC && holding == r.static {
			// Leaving the static stage: wait for a place in the escalation
			// window first, so a batch full of app shells slows its static
			// stage down instead of piling up URLs.
			if !r.escalated.acquire(ctx) {
				return
			}
			r.static.release()
			holding = r.escalated
		}
		if d.Next == gatewayv1.Tier_TIER_DECODO && !r.takeDecodoCall() {
			continue // the budget just ran out: the policy sees it now
		}
		if ctx.Err() != nil {
			return // the batch is canceled: no result is wanted
		}
		if jctx.Err() != nil {
			d = policy.Decision{Outcome: gatewayv1.Outcome_OUTCOME_FAILED, Reason: "URL deadline passed", Error: &commonv1.Error{
				Kind: commonv1.ErrorKind_ERROR_KIND_TIMEOUT, Message: fmt.Sprintf("the URL's deadline of %s passed after %d attempts", r.opts.URLTimeout, len(attempts)), Retryable: true,
			}}
			break
		}
		res := r.attempt(jctx, d.Next, j)
		if ctx.Err() != nil {
			return
		}
		last, lastTier = &res, d.Next
		if res.Page != nil {
			if shown != nil {
				r.e.m.held.Add(ctx, -shown.Page.GetBodyBytes())
				held -= shown.Page.GetBodyBytes()
			}
			shown, shownTier = &res, d.Next
			r.e.m.held.Add(ctx, res.Page.GetBodyBytes())
			held += res.Page.GetBodyBytes()
		}
		attempts = append(attempts, policy.Attempt{Tier: d.Next, Verdict: res.Verdict, Error: res.Error, Retryable: res.Error.GetRetryable()})
		records = append(records, attemptRecord(d.Next, res))
	}
	if r.opts.Mode == gatewayv1.Mode_MODE_AUTO {
		r.hosts.learn(j.host, attempts)
	}
	res := &gatewayv1.UrlResult{Outcome: d.Outcome, Attempts: records, Duration: durationpb.New(time.Since(start)), TraceId: r.traceID}
	if d.Outcome != gatewayv1.Outcome_OUTCOME_OK {
		res.Error = d.Error
	}
	if last != nil && last.Page == nil && shown != nil {
		last, lastTier = shown, shownTier
	}
	if last != nil {
		res.Tier, res.Verdict, res.Page = lastTier, last.Verdict, last.Page
	}
	outcome := attribute.String("fetchmesh.outcome", res.GetOutcome().String())
	tier := attribute.String("fetchmesh.tier", res.GetTier().String())
	span.SetAttributes(outcome, tier, attribute.Int("fetchmesh.attempts", len(records)))
	if res.GetError() != nil {
		span.SetStatus(otelcodes.Error, res.GetError().GetMessage())
	}
	r.e.m.urlTime.Record(ctx, time.Since(start).Seconds(), attrs(outcome, tier))
	r.e.m.results.Add(ctx, int64(len(j.indices)), attrs(outcome, tier))
	r.emit(ctx, j, res)
}

// emit sends the job's result once per input index that named its URL.
func (r *run) emit(ctx context.Context, j *job, res *gatewayv1.UrlResult) {
	for k, idx := range j.indices {
		out := res
		if k > 0 {
			// A shallow copy: the page is shared and never modified.
			out = &gatewayv1.UrlResult{Outcome: res.Outcome, Tier: res.Tier, Verdict: res.Verdict, Page: res.Page,
				Error: res.Error, Attempts: res.Attempts, Duration: res.Duration, TraceId: res.TraceId}
		}
		out.Index, out.Url = int32(idx), j.inputs[k]
		r.summary.add(out)
		select {
		case r.out <- out:
		case <-ctx.Done():
			return
		}
	}
}

func (r *run) takeDecodoCall() bool {
	for {
		n := r.decodoCalls.Load()
		if int(n) >= r.opts.DecodoMaxCalls {
			return false
		}
		if r.decodoCalls.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// attempt runs one attempt on tier within the batch's per-tier limits, in
// its own span.
func (r *run) attempt(ctx context.Context, tier gatewayv1.Tier, j *job) AttemptResult {
	ctx, span := tracer.Start(ctx, "attempt "+policy.TierName(tier), trace.WithAttributes(attribute.String("fetchmesh.tier", tier.String())))
	defer span.End()
	start := time.Now()
	res := r.attemptOn(ctx, tier, j)
	span.SetAttributes(attribute.String("fetchmesh.verdict", res.Verdict.String()), attribute.Int("http.response.status_code", int(res.Page.GetStatusCode())),
		attribute.Int64("fetchmesh.body_bytes", res.Page.GetBodyBytes()))
	if res.NodeID != "" {
		span.SetAttributes(attribute.String("fetchmesh.node.id", res.NodeID))
	}
	if res.Calls > 0 {
		span.SetAttributes(attribute.Int("fetchmesh.decodo.calls", res.Calls))
	}
	if res.Error != nil {
		span.SetStatus(otelcodes.Error, res.Error.GetMessage())
		span.SetAttributes(attribute.String("error.type", res.Error.GetKind().String()))
	}
	r.e.m.attempt.Record(ctx, time.Since(start).Seconds(), attrs(attribute.String("fetchmesh.tier", tier.String()), attribute.String("fetchmesh.verdict", res.Verdict.String())))
	if tier == gatewayv1.Tier_TIER_STATIC && res.Page != nil {
		r.e.m.staticByte.Add(ctx, res.Page.GetBodyBytes())
	}
	return res
}

func (r *run) attemptOn(ctx context.Context, tier gatewayv1.Tier, j *job) AttemptResult {
	remaining := time.Until(deadlineOf(ctx))
	req := AttemptRequest{BatchID: r.id, URL: j.url, Options: &r.opts}
	var (
		t     Tier
		queue time.Duration
	)
	switch tier {
	case gatewayv1.Tier_TIER_STATIC:
		t, req.Timeout = r.e.tiers.Static, staticAttemptTimeout
		r.summary.staticAttempts.Add(1)
	case gatewayv1.Tier_TIER_RENDER:
		t, req.Timeout = r.e.tiers.Render, r.opts.Render.GetMaxWait().AsDuration()+renderAttemptSlack
		if r.opts.Render.GetMaxWait() == nil {
			req.Timeout = DefaultRenderWait + renderAttemptSlack
		}
		r.summary.renderAttempts.Add(1)
	case gatewayv1.Tier_TIER_DECODO:
		t, req.Timeout = r.e.tiers.Decodo, decodoAttemptTimeout
		r.summary.decodoCalls.Add(1)
		queued := time.Now()
		if !r.decodo.acquire(ctx) {
			return canceledResult(ctx)
		}
		defer r.decodo.release()
		queue = time.Since(queued)
	}
	req.Timeout = min(req.Timeout, remaining)
	res := t.Attempt(ctx, req)
	if res.Timings == nil {
		res.Timings = &commonv1.Timings{}
	}
	if queue > 0 && res.Timings.Queue == nil {
		res.Timings.Queue = durationpb.New(queue)
	}
	return res
}

func canceledResult(ctx context.Context) AttemptResult {
	return AttemptResult{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: "canceled",
		Error: &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIMEOUT, Message: "the URL's deadline passed while waiting for a slot", Retryable: true}}
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(MaxURLTimeout)
	}
	return d
}

func attemptRecord(tier gatewayv1.Tier, res AttemptResult) *gatewayv1.Attempt {
	return &gatewayv1.Attempt{
		Tier:       tier,
		Verdict:    res.Verdict,
		Reason:     res.Reason,
		StatusCode: res.Page.GetStatusCode(),
		Error:      res.Error,
		Timings:    res.Timings,
		BodyBytes:  res.Page.GetBodyBytes(),
		NodeId:     res.NodeID,
	}
}
