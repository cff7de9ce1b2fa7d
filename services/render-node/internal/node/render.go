package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	rendernodev1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendernode/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"github.com/fetchmesh/fetchmesh/services/shared/target"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits of a render request.
const (
	DefaultTimeout = 45 * time.Second
	MaxTimeout     = 150 * time.Second
	DefaultMaxBody = 10 << 20
	MaxMaxBody     = 32 << 20
)

// Render serves one render under a lease. It refuses a lease for a slot out
// of range (INVALID_ARGUMENT), a busy slot (RESOURCE_EXHAUSTED), a lease no
// newer than the slot's last (FAILED_PRECONDITION: stale) and any lease
// while the browser restarts or the node drains (UNAVAILABLE). A lease the
// node has not heard of yet is accepted: the coordinator grants before it
// tells the node, and fences with epochs.
func (n *Node) Render(ctx context.Context, req *rendernodev1.RenderRequest) (*rendernodev1.RenderResponse, error) {
	slot := int(req.GetSlot())
	if slot < 0 || slot >= len(n.slots) || req.GetLeaseId() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "slot %d is outside 0..%d or the lease id is empty", slot, len(n.slots)-1)
	}
	timeout := req.GetTimeout().AsDuration()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxBody := req.GetMaxBodyBytes()
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if timeout > MaxTimeout || maxBody > MaxMaxBody {
		return nil, status.Errorf(codes.InvalidArgument, "timeout must be at most %s and max_body_bytes at most %d", MaxTimeout, MaxMaxBody)
	}

	n.mu.Lock()
	switch {
	case n.restarting || n.draining:
		n.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "the node is restarting its browser or draining")
	case n.slots[slot] != nil:
		n.mu.Unlock()
		return nil, status.Errorf(codes.ResourceExhausted, "slot %d is busy", slot)
	case req.GetEpoch() <= n.slotEpoch[slot]:
		n.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "lease %s is stale for slot %d", req.GetLeaseId(), slot)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n.slots[slot] = &active{lease: req.GetLeaseId(), epoch: req.GetEpoch(), batch: req.GetBatchId(), cancel: cancel}
	n.slotEpoch[slot] = req.GetEpoch()
	n.mu.Unlock()
	n.signal()

	rctx, span := tracer.Start(rctx, "render", trace.WithAttributes(attribute.String("url.full", req.GetUrl()),
		attribute.Int("fetchmesh.slot", slot), attribute.String("fetchmesh.lease.id", req.GetLeaseId())))
	defer span.End()
	var res render.Result
	if err := n.precheck(rctx, req.GetUrl()); err != nil {
		res = *err
	} else {
		res = n.renderer.Render(rctx, render.Job{URL: req.GetUrl(), Options: req.GetOptions(), Headers: req.GetHeaders(), MaxBody: maxBody, Timeout: timeout, Batch: req.GetBatchId()})
	}
	span.SetAttributes(attribute.String("fetchmesh.verdict", res.Verdict.String()), attribute.Int("http.response.status_code", int(res.Page.GetStatusCode())))
	if res.Error != nil {
		span.SetStatus(otelcodes.Error, res.Error.GetMessage())
	}
	pagesRendered.Add(rctx, 1, metric.WithAttributes(attribute.String("fetchmesh.verdict", res.Verdict.String())))
	n.finish(slot, res)
	if ctx.Err() != nil {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &rendernodev1.RenderResponse{Verdict: res.Verdict, Reason: res.Reason, Page: res.Page, Error: res.Error, Timings: res.Timings}, nil
}

// finish frees the slot and applies restart and cooldown rules.
func (n *Node) finish(slot int, res render.Result) {
	n.mu.Lock()
	n.slots[slot] = nil
	restart := ""
	if res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_INVALID_URL && res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS {
		n.pages++
	}
	switch {
	case res.BrowserDied:
		restart = "the browser died"
	case n.cfg.RestartEveryPages > 0 && n.pages%n.cfg.RestartEveryPages == 0:
		restart = fmt.Sprintf("%d pages rendered", n.cfg.RestartEveryPages)
	}
	if res.Verdict == commonv1.Verdict_VERDICT_BLOCKED {
		n.coolDown(n.cfg.CooldownAfterBlock, "a page rendered as blocked")
	}
	if n.cfg.CooldownEveryPages > 0 && n.pages%n.cfg.CooldownEveryPages == 0 {
		n.coolDown(n.cfg.CooldownDuration, fmt.Sprintf("%d pages rendered", n.cfg.CooldownEveryPages))
	}
	n.idle.Broadcast()
	n.mu.Unlock()
	n.signal()
	if restart != "" {
		go n.RestartBrowser(restart)
	}
}

// precheck refuses a URL that cannot be rendered, before Chrome sees it:
// an invalid URL, or a host that resolves to a refused address.
func (n *Node) precheck(ctx context.Context, raw string) *render.Result {
	u, err := target.ParseURL(raw)
	if err != nil {
		r := render.Failure(commonv1.ErrorKind_ERROR_KIND_INVALID_URL, err.Error(), false)
		return &r
	}
	if n.cfg.Guard == nil {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	p, _ := strconv.Atoi(port)
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil // Chrome reports the lookup failure itself
	}
	for _, a := range addrs {
		if err := n.cfg.Guard.Check(netip.AddrPortFrom(a, uint16(p))); err != nil {
			r := render.Failure(commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS, err.(*ssrf.BlockedError).Error(), false)
			return &r
		}
	}
	return nil
}
