// Package batch runs batches: it validates and deduplicates the URLs, runs
// each distinct URL through the escalation policy with bounded concurrency
// per stage, and emits one result per input index as soon as it is final.
//
// Memory is bounded by concurrency, not batch size: a URL's page is held
// only while its attempt runs and its result waits to be sent, and emit
// blocks while the client is slow, which stops new work from starting.
package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Config tunes an engine.
type Config struct {
	// DecodoMaxCalls is the per-batch Decodo budget when a batch names none.
	DecodoMaxCalls int
	// EscalationWindow bounds the URLs of one batch that have left the
	// static stage and wait for or run on the render or Decodo tier.
	EscalationWindow int
}

// Engine runs batches; it is safe for concurrent use, and batches do not
// block each other (each has its own limits; only the render pool is shared).
type Engine struct {
	tiers Tiers
	cfg   Config
	log   *slog.Logger
	m     instruments
}

// NewEngine returns an engine over tiers.
func NewEngine(tiers Tiers, cfg Config, log *slog.Logger) *Engine {
	if cfg.EscalationWindow <= 0 {
		cfg.EscalationWindow = 1000
	}
	if cfg.DecodoMaxCalls <= 0 {
		cfg.DecodoMaxCalls = 100
	}
	return &Engine{tiers: tiers, cfg: cfg, log: log, m: newInstruments()}
}

// Emit sends one event to the client. It blocks while the client is slow
// and fails when the client is gone.
type Emit func(*gatewayv1.FetchBatchResponse) error

// Run runs one batch: first an accepted event, then one result per input
// URL, then the summary. Errors before the accepted event are gRPC status
// errors (INVALID_ARGUMENT for a bad batch, with nothing started); an error
// from emit cancels all of the batch's work and is returned.
func (e *Engine) Run(ctx context.Context, urls []string, o *gatewayv1.FetchOptions, emit Emit) error {
	if n := len(urls); n < 1 || n > MaxURLs {
		return status.Errorf(codes.InvalidArgument, "a batch holds 1 to %d URLs; this one has %d", MaxURLs, n)
	}
	opts, err := ResolveOptions(o, e.cfg.DecodoMaxCalls)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := newRun(e, opts)
	ctx, span := tracer.Start(ctx, "batch", trace.WithAttributes(
		attribute.String("fetchmesh.batch.id", r.id), attribute.Int("fetchmesh.batch.urls", len(urls)), attribute.String("fetchmesh.mode", opts.Mode.String())))
	defer span.End()
	r.traceID = traceID(ctx)
	e.m.batches.Add(ctx, 1)
	defer e.m.batches.Add(context.Background(), -1)
	jobs, invalid := prepare(urls)
	log := e.log.With("batch_id", r.id)
	log.InfoContext(ctx, "batch accepted", "urls", len(urls), "unique", len(jobs), "invalid", len(invalid), "mode", opts.Mode.String())
	if err := emit(&gatewayv1.FetchBatchResponse{Event: &gatewayv1.FetchBatchResponse_Accepted{Accepted: &gatewayv1.BatchAccepted{
		BatchId: r.id, Urls: int32(len(urls)), UniqueUrls: int32(len(jobs)), InvalidUrls: int32(len(invalid)), TraceId: r.traceID,
	}}}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.dispatch(ctx, jobs)
	}()
	// Stop the workers before returning, whatever happens below.
	defer wg.Wait()
	defer cancel()

	for _, bad := range invalid {
		res := invalidResult(bad)
		res.TraceId = r.traceID
		r.summary.add(res)
		if err := emit(wrap(res)); err != nil {
			return err
		}
	}
	for res := range r.out {
		if err := emit(wrap(res)); err != nil {
			log.InfoContext(ctx, "client gone; batch canceled", "err", err)
			span.SetStatus(otelcodes.Error, "client gone")
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	sum := r.summary.proto(r.id, time.Since(r.start))
	log.InfoContext(ctx, "batch done", "results", sum.GetResults(), "ok", sum.GetOk(), "failed", sum.GetFailed(), "duration", time.Since(r.start).String())
	span.SetAttributes(attribute.Int("fetchmesh.batch.ok", int(sum.GetOk())), attribute.Int("fetchmesh.batch.decodo_calls", int(sum.GetDecodoCalls())),
		attribute.Int("fetchmesh.batch.renders", int(sum.GetRenderAttempts())))
	return emit(&gatewayv1.FetchBatchResponse{Event: &gatewayv1.FetchBatchResponse_Summary{Summary: sum}})
}

func wrap(res *gatewayv1.UrlResult) *gatewayv1.FetchBatchResponse {
	return &gatewayv1.FetchBatchResponse{Event: &gatewayv1.FetchBatchResponse_Result{Result: res}}
}

func invalidResult(bad invalidURL) *gatewayv1.UrlResult {
	return &gatewayv1.UrlResult{
		Index:    int32(bad.index),
		Url:      bad.input,
		Outcome:  gatewayv1.Outcome_OUTCOME_INVALID,
		Error:    &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_INVALID_URL, Message: bad.reason},
		Duration: durationpb.New(0),
	}
}

func newBatchID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the runtime guarantees it does not
	}
	return hex.EncodeToString(b[:])
}
