// Package scrape is the decodo-proxy's logic: one Scrape call is a bounded
// series of Decodo API calls under the account-wide limiter, the circuit
// breaker and the daily budget, ending in one classified page or one typed
// error. It retries only what may succeed later: 429 (honouring
// Retry-After), 5xx and network errors, at most Retries times, with
// exponential backoff and jitter.
package scrape

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	decodoproxyv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/decodoproxy/v1"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/api"
	"github.com/fetchmesh/fetchmesh/services/shared/classify"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Caller makes one API call (api.Client, or a test's).
type Caller interface {
	Call(ctx context.Context, req api.Request) api.Answer
}

// Config tunes the scraper.
type Config struct {
	Retries        int           // retries after the first call (Decodo's own tools: 2)
	BackoffBase    time.Duration // first backoff; doubles each retry (1 s)
	MaxRetryAfter  time.Duration // longest Retry-After honoured (30 s)
	DefaultTimeout time.Duration // per Scrape, retries included (180 s)
}

// Scraper is safe for concurrent use.
type Scraper struct {
	api     Caller // nil: not configured
	limiter *Limiter
	breaker *Breaker
	budget  *Budget
	cfg     Config
	log     *slog.Logger
}

// New returns a scraper. api nil means no credentials: every call answers
// "Decodo not configured".
func New(caller Caller, limiter *Limiter, breaker *Breaker, budget *Budget, cfg Config, log *slog.Logger) *Scraper {
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 30 * time.Second
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 180 * time.Second
	}
	return &Scraper{api: caller, limiter: limiter, breaker: breaker, budget: budget, cfg: cfg, log: log}
}

// Configured reports whether credentials are set.
func (s *Scraper) Configured() bool { return s.api != nil }

// Usage reports the budget and breaker.
func (s *Scraper) Usage() *decodoproxyv1.GetUsageResponse {
	calls, billed, cap := s.budget.Today()
	return &decodoproxyv1.GetUsageResponse{Configured: s.Configured(), CallsToday: calls, BilledToday: billed, DailyCap: cap, CircuitOpen: s.breaker.Open()}
}

func fail(kind commonv1.ErrorKind, msg string, retryable bool) *decodoproxyv1.ScrapeResponse {
	return &decodoproxyv1.ScrapeResponse{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: msg,
		Error: &commonv1.Error{Kind: kind, Message: msg, Retryable: retryable}}
}

// Scrape fetches req.Url through Decodo.
func (s *Scraper) Scrape(ctx context.Context, req *decodoproxyv1.ScrapeRequest) *decodoproxyv1.ScrapeResponse {
	start := time.Now()
	ctx, span := tracer.Start(ctx, "decodo.scrape", trace.WithAttributes(attribute.String("url.full", req.GetUrl()), attribute.Bool("fetchmesh.decodo.render", req.GetRender())))
	defer span.End()
	resp := s.scrape(ctx, req)
	span.SetAttributes(attribute.Int("fetchmesh.decodo.calls", int(resp.GetCalls())), attribute.Int("fetchmesh.decodo.billed", int(resp.GetBilledCalls())),
		attribute.String("fetchmesh.verdict", resp.GetVerdict().String()))
	if resp.GetError() != nil {
		span.SetStatus(otelcodes.Error, resp.GetError().GetMessage())
		rejections.Add(ctx, 1, metric.WithAttributes(attribute.String("error.type", resp.GetError().GetKind().String())))
	}
	if resp.Timings == nil {
		resp.Timings = &commonv1.Timings{}
	}
	resp.Timings.Total = durationpb.New(time.Since(start))
	return resp
}

func (s *Scraper) scrape(ctx context.Context, req *decodoproxyv1.ScrapeRequest) *decodoproxyv1.ScrapeResponse {
	if s.api == nil {
		return fail(commonv1.ErrorKind_ERROR_KIND_NOT_CONFIGURED, "Decodo not configured: the decodo-proxy has no credentials", false)
	}
	if len(req.GetUrl()) > api.MaxURLLength {
		return fail(commonv1.ErrorKind_ERROR_KIND_INVALID_URL, fmt.Sprintf("the URL is longer than Decodo's %d-character limit", api.MaxURLLength), false)
	}
	timeout := req.GetTimeout().AsDuration()
	if timeout <= 0 {
		timeout = s.cfg.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	call := api.Request{Target: "universal", URL: req.GetUrl(), Geo: req.GetGeo(), Locale: req.GetLocale(),
		DeviceType: req.GetDeviceType(), SessionID: req.GetSessionId()}
	if req.GetRender() {
		call.Headless = "html"
	}
	if len(req.GetHeaders()) > 0 {
		call.Headers, call.ForceHeaders = map[string]string{}, true
		for _, h := range req.GetHeaders() {
			call.Headers[h.GetName()] = h.GetValue()
		}
	}
	var (
		calls, billed int32
		queued        time.Duration
		last          api.Answer
	)
	result := func(r *decodoproxyv1.ScrapeResponse) *decodoproxyv1.ScrapeResponse {
		r.Calls, r.BilledCalls = calls, billed
		r.Timings = &commonv1.Timings{Queue: durationpb.New(queued)}
		return r
	}
	for attempt := 0; ; attempt++ {
		if e := s.breaker.Allow(); e != nil {
			return result(fail(e.GetKind(), e.GetMessage(), e.GetRetryable()))
		}
		if !s.budget.Take() {
			_, _, cap := s.budget.Today()
			return result(fail(commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED, fmt.Sprintf("the operator's daily Decodo cap of %d calls is used up", cap), false))
		}
		waitStart := time.Now()
		release, err := s.limiter.Acquire(ctx, req.GetBatchId())
		queued += time.Since(waitStart)
		if err != nil {
			return result(fail(commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "the deadline passed while waiting for the account's rate limit", true))
		}
		cctx, cspan := tracer.Start(ctx, "decodo.call", trace.WithAttributes(attribute.Int("fetchmesh.decodo.attempt", attempt)))
		last = s.api.Call(cctx, call)
		cspan.SetAttributes(attribute.Int("http.response.status_code", last.Status))
		cspan.End()
		release()
		calls++
		callCount.Add(ctx, 1, metric.WithAttributes(attribute.Int("http.response.status_code", last.Status)))
		if attempt > 0 {
			retries.Add(ctx, 1)
		}
		if last.Billed {
			billed++
			s.budget.Billed()
		}
		switch last.Kind {
		case api.OK:
			s.breaker.Success()
			return result(s.page(last.Result, req.GetMaxBodyBytes()))
		case api.AuthFailed:
			s.breaker.AuthFailure()
			s.log.ErrorContext(ctx, "Decodo rejected the credentials; calls paused")
			return result(fail(commonv1.ErrorKind_ERROR_KIND_CREDENTIALS_REJECTED, "Decodo credentials rejected", false))
		case api.Failed:
			s.breaker.Success() // Decodo works; it could not get this page
			return result(fail(commonv1.ErrorKind_ERROR_KIND_UPSTREAM, last.Message, false))
		case api.BadRequest:
			return result(fail(commonv1.ErrorKind_ERROR_KIND_UPSTREAM, last.Message, false))
		case api.NotFound:
			r := fail(commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, last.Message, false)
			r.Verdict = commonv1.Verdict_VERDICT_NOT_FOUND
			return result(r)
		}
		// 429, 5xx, network: retryable.
		if ctx.Err() != nil {
			return result(fail(commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "Decodo did not answer within the deadline", true))
		}
		if last.Kind != api.RateLimited {
			s.breaker.Failure()
		}
		if attempt >= s.cfg.Retries {
			break
		}
		wait := s.backoff(attempt)
		if last.RetryAfter > 0 {
			wait = min(last.RetryAfter, s.cfg.MaxRetryAfter)
		}
		select {
		case <-ctx.Done():
			return result(fail(commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "the deadline passed while backing off", true))
		case <-time.After(wait):
		}
	}
	kind := commonv1.ErrorKind_ERROR_KIND_UPSTREAM
	if last.Kind == api.RateLimited {
		kind = commonv1.ErrorKind_ERROR_KIND_RATE_LIMITED
	}
	return result(fail(kind, fmt.Sprintf("%s (after %d calls)", last.Message, calls), true))
}

// backoff is base x 2^attempt, plus up to half of it again as jitter.
func (s *Scraper) backoff(attempt int) time.Duration {
	d := s.cfg.BackoffBase << attempt
	return d + time.Duration(rand.Int64N(int64(d)/2+1))
}

// page turns Decodo's result into a classified page.
func (s *Scraper) page(r *api.Result, maxBody int64) *decodoproxyv1.ScrapeResponse {
	if maxBody <= 0 {
		maxBody = 10 << 20
	}
	content := r.Content
	truncated := false
	if int64(len(content)) > maxBody {
		cut := int(maxBody)
		for cut > 0 && !utf8.RuneStart(content[cut]) {
			cut--
		}
		content, truncated = content[:cut], true
	}
	ct := r.Headers["content-type"]
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "" {
		mt, _, _ = mime.ParseMediaType(http.DetectContentType([]byte(content[:min(len(content), 512)])))
	}
	p := &commonv1.Page{StatusCode: int32(r.StatusCode), FinalUrl: r.URL, ContentType: strings.ToLower(mt), Charset: "utf-8",
		Body: &commonv1.Page_Text{Text: content}, BodyBytes: int64(len(content)), Truncated: truncated}
	for k, v := range r.Headers {
		p.Headers = append(p.Headers, &commonv1.Header{Name: http.CanonicalHeaderKey(k), Value: v})
	}
	v := classify.Classify(classify.Input{StatusCode: r.StatusCode, ContentType: p.ContentType, Body: content})
	p.Title = v.Title
	out := &decodoproxyv1.ScrapeResponse{Verdict: v.Verdict, Reason: v.Reason, Page: p, TaskId: r.TaskID}
	if v.Verdict == commonv1.Verdict_VERDICT_FAILED {
		out.Error = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, Message: fmt.Sprintf("the site answered HTTP %d through Decodo", r.StatusCode), Retryable: v.Retryable}
	}
	return out
}
