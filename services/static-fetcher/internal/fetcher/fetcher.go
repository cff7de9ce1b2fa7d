// Package fetcher is the static tier: one HTTP GET per call through an
// SSRF-guarded, pooled HTTP/1.1+HTTP/2 client, with every phase and size
// bounded, the body decompressed (gzip, deflate, br) under a limit counted
// on decompressed bytes, decoded to UTF-8, and classified.
package fetcher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/classify"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"github.com/fetchmesh/fetchmesh/services/shared/target"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Limits bound every fetch. Zero fields take the defaults in DefaultLimits.
type Limits struct {
	Connect        time.Duration // TCP connect
	TLS            time.Duration // TLS handshake
	FirstByte      time.Duration // request written until response headers
	BodyIdle       time.Duration // longest gap between body reads (a dripping body)
	DefaultTotal   time.Duration // whole fetch, when the request names none
	MaxTotal       time.Duration // largest total a request may ask for
	MaxRedirects   int
	MaxHeaderBytes int64
	DefaultBody    int64 // body limit when the request names none
	MaxBody        int64 // largest body limit a request may ask for
}

// DefaultLimits are the limits of a fetcher built with zero Limits.
var DefaultLimits = Limits{
	Connect:        10 * time.Second,
	TLS:            10 * time.Second,
	FirstByte:      20 * time.Second,
	BodyIdle:       10 * time.Second,
	DefaultTotal:   30 * time.Second,
	MaxTotal:       120 * time.Second,
	MaxRedirects:   10,
	MaxHeaderBytes: 64 << 10,
	DefaultBody:    10 << 20,
	MaxBody:        32 << 20,
}

// UserAgent is sent unless the request sets its own.
const UserAgent = "Mozilla/5.0 (compatible; fetchmesh/0.1; +https://github.com/fetchmesh/fetchmesh)"

// Request is one URL to fetch.
type Request struct {
	URL          string
	Headers      []*commonv1.Header
	MaxBodyBytes int64         // 0: the default
	Timeout      time.Duration // 0: the default
}

// Result is what one fetch produced. Page is set whenever a response
// arrived; Error is set when the verdict is failed.
type Result struct {
	Verdict   commonv1.Verdict
	Reason    string
	Page      *commonv1.Page
	Error     *commonv1.Error
	Timings   *commonv1.Timings
	WireBytes int64
}

// Fetcher fetches pages. It is safe for concurrent use.
type Fetcher struct {
	client *http.Client
	limits Limits
}

// New returns a fetcher whose connections are checked by guard.
func New(guard *ssrf.Guard, limits Limits) *Fetcher {
	limits = withDefaults(limits)
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would hide the target's address from the guard
		DialContext:            guard.Dialer(limits.Connect).DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    limits.TLS,
		ResponseHeaderTimeout:  limits.FirstByte,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: limits.MaxHeaderBytes,
		DisableCompression:     true, // we decompress ourselves, under the size limit
		MaxIdleConns:           2000,
		MaxIdleConnsPerHost:    500, // a batch may send 500 fetches to one host
		IdleConnTimeout:        90 * time.Second,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
	f := &Fetcher{limits: limits}
	f.client = &http.Client{Transport: transport, CheckRedirect: f.checkRedirect}
	return f
}

func withDefaults(l Limits) Limits {
	d := DefaultLimits
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	l.Connect, l.TLS, l.FirstByte = pick(l.Connect, d.Connect), pick(l.TLS, d.TLS), pick(l.FirstByte, d.FirstByte)
	l.BodyIdle, l.DefaultTotal, l.MaxTotal = pick(l.BodyIdle, d.BodyIdle), pick(l.DefaultTotal, d.DefaultTotal), pick(l.MaxTotal, d.MaxTotal)
	if l.MaxRedirects <= 0 {
		l.MaxRedirects = d.MaxRedirects
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.DefaultBody <= 0 {
		l.DefaultBody = d.DefaultBody
	}
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	return l
}

// Close releases idle connections.
func (f *Fetcher) Close() { f.client.CloseIdleConnections() }

// Validate checks a request's limits; the error text is safe for clients.
func (f *Fetcher) Validate(req Request) error {
	if req.MaxBodyBytes < 0 || req.MaxBodyBytes > f.limits.MaxBody {
		return fmt.Errorf("max_body_bytes %d is outside 0..%d", req.MaxBodyBytes, f.limits.MaxBody)
	}
	if req.Timeout < 0 || req.Timeout > f.limits.MaxTotal {
		return fmt.Errorf("timeout %s is outside 0..%s", req.Timeout, f.limits.MaxTotal)
	}
	if len(req.Headers) > target.MaxHeaders {
		return fmt.Errorf("%d headers, more than %d", len(req.Headers), target.MaxHeaders)
	}
	for _, h := range req.Headers {
		if err := target.CheckHeader(h.GetName(), h.GetValue()); err != nil {
			return err
		}
	}
	return nil
}

// errTooManyRedirects marks the redirect limit.
var errTooManyRedirects = errors.New("too many redirects")

// errBadRedirect marks a redirect to a URL the mesh may not fetch.
type errBadRedirect struct{ err error }

func (e *errBadRedirect) Error() string { return "redirect refused: " + e.err.Error() }

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.limits.MaxRedirects {
		return errTooManyRedirects
	}
	if _, err := target.ParseURL(req.URL.String()); err != nil {
		return &errBadRedirect{err}
	}
	// Never carry credentials to another host, subdomains included.
	if req.URL.Host != via[0].URL.Host {
		for _, h := range []string{"Authorization", "Cookie", "Cookie2", "Proxy-Authorization", "Www-Authenticate"} {
			req.Header.Del(h)
		}
	}
	return nil
}

// Fetch GETs req.URL. It never returns a Go error: failures are in Result.
// Cancelling ctx ends the fetch at once.
func (f *Fetcher) Fetch(ctx context.Context, req Request) Result {
	start := time.Now()
	res := Result{Timings: &commonv1.Timings{}}
	u, err := target.ParseURL(req.URL)
	if err != nil {
		return res.fail(start, commonv1.ErrorKind_ERROR_KIND_INVALID_URL, err.Error(), false)
	}
	total := req.Timeout
	if total <= 0 {
		total = f.limits.DefaultTotal
	}
	maxBody := req.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = f.limits.DefaultBody
	}
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	// idleCtx is cancelled by the body's idle timer, separately from the
	// total deadline, so the two failures are told apart.
	ctx, cancelIdle := context.WithCancelCause(ctx)
	defer cancelIdle(nil)

	tr := newTrace(start)
	hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tr.clientTrace()), http.MethodGet, u.String(), nil)
	if err != nil {
		return res.fail(start, commonv1.ErrorKind_ERROR_KIND_INVALID_URL, "malformed URL", false)
	}
	hreq.Header.Set("User-Agent", UserAgent)
	hreq.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	hreq.Header.Set("Accept-Language", "en-US,en;q=0.9")
	for _, h := range req.Headers {
		hreq.Header.Add(h.GetName(), h.GetValue())
	}
	hreq.Header.Set("Accept-Encoding", "gzip, deflate, br")

	resp, err := f.client.Do(hreq)
	if err != nil {
		kind, msg, retry := classifyError(ctx, err, total)
		tr.fill(res.Timings)
		return res.fail(start, kind, msg, retry)
	}
	defer resp.Body.Close()

	body, err := readBody(resp, maxBody, f.limits.BodyIdle, cancelIdle)
	res.WireBytes = body.wireBytes
	tr.fill(res.Timings)
	if err != nil {
		kind, msg, retry := classifyError(ctx, err, total)
		return res.fail(start, kind, msg, retry)
	}
	page := buildPage(resp, body)
	res.Page = page
	verdict := classify.Classify(classify.Input{StatusCode: resp.StatusCode, ContentType: page.ContentType, Body: body.classifyBytes()})
	page.Title = verdict.Title
	res.Verdict, res.Reason = verdict.Verdict, verdict.Reason
	if verdict.Verdict == commonv1.Verdict_VERDICT_FAILED {
		res.Error = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, Message: fmt.Sprintf("the site answered HTTP %d", resp.StatusCode), Retryable: verdict.Retryable}
	}
	res.Timings.Total = durationpb.New(time.Since(start))
	return res
}

func (r Result) fail(start time.Time, kind commonv1.ErrorKind, msg string, retryable bool) Result {
	r.Verdict = commonv1.Verdict_VERDICT_FAILED
	r.Reason = msg
	r.Error = &commonv1.Error{Kind: kind, Message: msg, Retryable: retryable}
	r.Timings.Total = durationpb.New(time.Since(start))
	return r
}
