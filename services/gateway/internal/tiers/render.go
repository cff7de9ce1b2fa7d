package tiers

import (
	"context"
	"errors"
	"sync"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	rcv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendercoordinator/v1"
	rendernodev1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendernode/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/renderpool"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var queueWait, _ = otel.Meter("github.com/fetchmesh/fetchmesh/services/gateway").Float64Histogram("fetchmesh.render.queue_wait",
	metric.WithUnit("s"), metric.WithDescription("Time a URL waited for a render slot"),
	metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))

// Render leases a slot from the pool and calls the node directly: page
// bytes never pass through the coordinator.
type Render struct {
	Pool *renderpool.Pool

	mu    sync.Mutex
	nodes map[string]*grpc.ClientConn // by node address
}

// Unavailable reports the pool's state to the policy.
func (r *Render) Unavailable() *commonv1.Error { return r.Pool.Unavailable() }

// Close closes the connections to nodes.
func (r *Render) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.nodes {
		c.Close()
	}
}

func (r *Render) node(addr string) (rendernodev1.RenderNodeServiceClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nodes == nil {
		r.nodes = map[string]*grpc.ClientConn{}
	}
	c, ok := r.nodes[addr]
	if !ok {
		var err error
		if c, err = rpc.Dial(addr); err != nil {
			return nil, err
		}
		r.nodes[addr] = c
	}
	return rendernodev1.NewRenderNodeServiceClient(c), nil
}

// Attempt renders req.URL on a leased slot.
func (r *Render) Attempt(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
	queued := time.Now()
	l, err := r.Pool.Acquire(ctx, req.BatchID)
	if err != nil {
		if errors.Is(err, renderpool.ErrUnavailable) {
			u := r.Pool.Unavailable()
			if u == nil {
				u = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, Message: err.Error()}
			}
			return batch.AttemptResult{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: u.GetMessage(), Error: u}
		}
		return rpcFailure(ctx, "render", status.FromContextError(err).Err())
	}
	wait := time.Since(queued)
	queueWait.Record(ctx, wait.Seconds())
	g := l.Grant
	rctx, cancel := context.WithTimeout(ctx, req.Timeout+rpcSlack)
	defer cancel()
	stop := context.AfterFunc(l.Revoked(), cancel)
	defer stop()
	res := r.render(rctx, ctx, l, req)
	outcome := rcv1.ReleaseOutcome_RELEASE_OUTCOME_RENDERED
	switch {
	case res.Verdict == commonv1.Verdict_VERDICT_BLOCKED:
		outcome = rcv1.ReleaseOutcome_RELEASE_OUTCOME_BLOCKED
	case res.Error != nil:
		outcome = rcv1.ReleaseOutcome_RELEASE_OUTCOME_FAILED
	}
	r.Pool.Release(l, outcome)
	res.NodeID = g.GetNodeId()
	if res.Timings == nil {
		res.Timings = &commonv1.Timings{}
	}
	res.Timings.Queue = durationpb.New(wait)
	return res
}

func (r *Render) render(rctx, ctx context.Context, l *renderpool.Lease, req batch.AttemptRequest) batch.AttemptResult {
	g := l.Grant
	client, err := r.node(g.GetNodeAddress())
	if err != nil {
		return crashed("the render node's address is not dialable")
	}
	resp, err := client.Render(rctx, &rendernodev1.RenderRequest{
		LeaseId: g.GetLeaseId(), Epoch: g.GetEpoch(), Slot: g.GetSlot(), Url: req.URL,
		Options: req.Options.Render, Headers: req.Options.Headers, MaxBodyBytes: req.Options.MaxBodyBytes,
		Timeout: durationpb.New(req.Timeout), BatchId: req.BatchID,
	})
	if err == nil {
		return batch.AttemptResult{Verdict: resp.GetVerdict(), Reason: resp.GetReason(), Page: resp.GetPage(), Error: resp.GetError(), Timings: resp.GetTimings()}
	}
	switch {
	case ctx.Err() != nil:
		return rpcFailure(ctx, "render", err)
	case l.Revoked().Err() != nil:
		return crashed("the render node was lost (its lease was revoked)")
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Unknown, codes.Internal:
		return crashed("the render node failed during the render")
	case codes.ResourceExhausted, codes.FailedPrecondition:
		return batch.AttemptResult{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: "lease refused by the node",
			Error: &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, Message: "the render node refused the lease: " + status.Convert(err).Message(), Retryable: true}}
	}
	return rpcFailure(ctx, "render", err)
}

func crashed(msg string) batch.AttemptResult {
	return batch.AttemptResult{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: msg,
		Error: &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED, Message: msg, Retryable: true}}
}
