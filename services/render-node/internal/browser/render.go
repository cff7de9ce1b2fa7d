package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/proxy"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"github.com/fetchmesh/fetchmesh/services/shared/classify"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Settling: a page has settled when no request has been in flight for
// quietFor after the load event.
const (
	quietFor     = 500 * time.Millisecond
	pollEvery    = 100 * time.Millisecond
	defaultWait  = 30 * time.Second
	captureGrace = 5 * time.Second

	defaultWidth, defaultHeight = 1366, 768
)

// activity counts the tab's requests in flight and remembers the main
// document's response. It is fed by chromedp.Listen in the tab's event loop.
type activity struct {
	mu       sync.Mutex
	frame    cdp.FrameID
	inflight map[network.RequestID]bool
	last     time.Time
	doc      *network.Response
	docAt    time.Time
	crashed  bool
}

func (a *activity) listen(ev any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		a.inflight[e.RequestID] = true
		a.last = now
	case *network.EventLoadingFinished:
		delete(a.inflight, e.RequestID)
		a.last = now
	case *network.EventLoadingFailed:
		delete(a.inflight, e.RequestID)
		a.last = now
	case *network.EventResponseReceived:
		if e.Type == network.ResourceTypeDocument && e.FrameID == a.frame {
			a.doc, a.docAt = e.Response, now
		}
	case *network.EventRequestServedFromCache:
		a.last = now
	}
	if _, ok := ev.(*inspector.EventTargetCrashed); ok {
		a.crashed = true // the tab's renderer died (the browser may live on)
	}
}

func (a *activity) tabCrashed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.crashed
}

func (a *activity) quiet(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inflight) == 0 && now.Sub(a.last) >= quietFor
}

// Render loads job.URL in a new tab and returns the serialized DOM. The tab
// is closed when Render returns, or as soon as ctx ends.
func (b *Browser) Render(ctx context.Context, job render.Job) render.Result {
	start := time.Now()
	bctx, gen := b.current()
	if bctx == nil || bctx.Err() != nil {
		return b.died("the browser is not running")
	}
	// A tab in the batch's browser context, in that context's window when
	// it has one (a new window per page costs far more).
	tabOpts, doneWithContext, err := b.tabOptions(ctx, bctx, gen, job.Batch)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_CANCELED, "the render was canceled before its tab opened", false), start)
		case bctx.Err() != nil || strings.Contains(err.Error(), "lost the connection"):
			return b.died("the browser died while opening a browser context")
		}
		return render.Failure(commonv1.ErrorKind_ERROR_KIND_INTERNAL, "could not create the batch's browser context: "+err.Error(), true)
	}
	defer doneWithContext()
	tabCtx, closeTab := chromedp.NewContext(bctx, tabOpts...)
	// The tab is closed after each page; the close runs on its own so the
	// slot is free as soon as the result is taken. A revoked lease, a gone
	// client or the deadline closes it at once.
	defer func() { go closeTab() }()
	stop := context.AfterFunc(ctx, closeTab)
	defer stop()
	if err := chromedp.Do(tabCtx); err != nil {
		if bctx.Err() != nil || strings.Contains(err.Error(), "lost the connection") {
			return b.died("the browser died while opening a tab")
		}
		return render.Failure(commonv1.ErrorKind_ERROR_KIND_INTERNAL, "could not open a tab: "+err.Error(), true)
	}
	timeout := job.Timeout
	if timeout <= 0 {
		timeout = defaultWait + 15*time.Second
	}
	rctx, cancel := context.WithTimeout(tabCtx, time.Until(start.Add(timeout)))
	defer cancel()

	act := &activity{inflight: map[network.RequestID]bool{}, last: time.Now(), frame: cdp.FrameID(chromedp.FromContext(tabCtx).Target.TargetID)}
	if err := chromedp.Listen(tabCtx, act.listen); err != nil {
		return render.Failure(commonv1.ErrorKind_ERROR_KIND_INTERNAL, "could not watch the tab: "+err.Error(), true)
	}
	if err := setupTab(rctx, tabCtx, job, b.fits()); err != nil {
		return b.fail(ctx, rctx, bctx, act, err, start)
	}
	maxWait := job.Options.GetMaxWait().AsDuration()
	if maxWait <= 0 {
		maxWait = defaultWait
	}
	waitUntil := start.Add(maxWait)
	navCtx, cancelNav := context.WithDeadline(rctx, waitUntil)
	navErr := chromedp.Do(navCtx, chromedp.Navigate(job.URL))
	cancelNav()
	var loadErr *chromedp.LoadError
	switch {
	case navErr == nil:
	case errors.As(navErr, &loadErr):
		return b.tagged(navFailure(loadErr.ErrorText), start)
	case errors.Is(navErr, context.DeadlineExceeded) && rctx.Err() == nil:
		// The load event did not come within max wait: take the DOM as it is.
	default:
		return b.fail(ctx, rctx, bctx, act, navErr, start)
	}
	if err := settle(rctx, act, job.Options.GetWaitForSelector(), waitUntil); err != nil {
		switch {
		case errors.Is(err, errSelector):
			return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_TIMEOUT, fmt.Sprintf("the selector %q did not appear within %s", job.Options.GetWaitForSelector(), maxWait), false), start)
		case errors.Is(err, errBadSelector):
			return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_INVALID_OPTION, fmt.Sprintf("wait_for_selector %q is not a valid CSS selector", job.Options.GetWaitForSelector()), false), start)
		}
		return b.fail(ctx, rctx, bctx, act, err, start)
	}
	capCtx, cancelCap := context.WithTimeout(rctx, captureGrace)
	defer cancelCap()
	snap, err := chromedp.Run(capCtx, chromedp.Evaluate[snapshot](snapshotScript))
	if err != nil {
		return b.fail(ctx, rctx, bctx, act, err, start)
	}
	return b.result(job, act, snap.HTML, snap.URL, start)
}

// snapshot is the settled page, taken in one evaluation.
type snapshot struct {
	HTML string `json:"html"`
	URL  string `json:"url"`
}

const snapshotScript = `({
	html: (document.doctype ? new XMLSerializer().serializeToString(document.doctype) + "\n" : "") + document.documentElement.outerHTML,
	url: location.href
})`

// setupTab applies the job's options to the tab before navigating.
// windowFits: the window is the default viewport.
func setupTab(rctx, tabCtx context.Context, job render.Job, windowFits bool) error {
	o := job.Options
	// Service workers could serve requests the proxy never sees.
	if _, err := chromedp.Call(rctx, network.SetBypassServiceWorker, network.SetBypassServiceWorkerParams{Bypass: true}); err != nil {
		return err
	}
	if len(job.Headers) > 0 {
		h := network.Headers{}
		for _, x := range job.Headers {
			h[x.GetName()] = x.GetValue()
		}
		if _, err := chromedp.Call(rctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
			return err
		}
	}
	if ua := o.GetUserAgent(); ua != "" {
		if _, err := chromedp.Call(rctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
			return err
		}
	}
	// Emulating a size costs about a fifth of a page's Chrome CPU: skip it
	// when the window already is the viewport asked for.
	w, h := int64(o.GetViewportWidth()), int64(o.GetViewportHeight())
	if w == 0 || h == 0 {
		w, h = defaultWidth, defaultHeight
	}
	if !windowFits || w != defaultWidth || h != defaultHeight {
		if _, err := chromedp.Call(rctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: w, Height: h, DeviceScaleFactor: 1}); err != nil {
			return err
		}
	}
	if !o.GetLoadImages() {
		// Images, fonts and media are failed in the browser before any
		// connection is made.
		paused := chromedp.Events(tabCtx, fetch.RequestPaused)
		if _, err := chromedp.Call(rctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
			{URLPattern: "*", ResourceType: network.ResourceTypeImage},
			{URLPattern: "*", ResourceType: network.ResourceTypeFont},
			{URLPattern: "*", ResourceType: network.ResourceTypeMedia},
		}}); err != nil {
			return err
		}
		go func() {
			for ev, err := range paused {
				if err != nil {
					return
				}
				chromedp.Call(tabCtx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
			}
		}()
	}
	return nil
}

var (
	errSelector    = errors.New("selector did not appear")
	errBadSelector = errors.New("not a valid CSS selector")
)

// settle waits until the page is quiet (or the selector is present), and at
// most until waitUntil. Without a selector, the DOM is taken as it is then.
func settle(ctx context.Context, act *activity, selector string, waitUntil time.Time) error {
	if selector != "" {
		return awaitSelector(ctx, selector, waitUntil)
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if now := time.Now(); act.quiet(now) || !now.Before(waitUntil) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// selectorScript resolves once the selector (%s, a JSON string) matches,
// watching the document with a MutationObserver. A bad selector rejects.
const selectorScript = `new Promise(function(resolve) {
	var sel = %s;
	if (document.querySelector(sel)) { resolve(true); return; }
	var o = new MutationObserver(function() {
		if (document.querySelector(sel)) { o.disconnect(); resolve(true); }
	});
	o.observe(document, {childList: true, subtree: true, attributes: true});
})`

// awaitSelector waits for selector with one evaluation that the page itself
// resolves, rather than a query every few milliseconds through the
// browser's main thread (the node's bottleneck). A navigation destroys the
// wait with its document; it then starts again in the new one.
func awaitSelector(ctx context.Context, selector string, waitUntil time.Time) error {
	q, _ := json.Marshal(selector)
	script := fmt.Sprintf(selectorScript, q)
	for {
		wctx, cancel := context.WithDeadline(ctx, waitUntil)
		_, err := chromedp.Run(wctx, chromedp.Evaluate[bool](script, chromedp.EvalAwaitPromise))
		cancel()
		var exc *chromedp.ExceptionError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !time.Now().Before(waitUntil):
			return errSelector
		case errors.As(err, &exc) && strings.Contains(exc.Error(), "SyntaxError"):
			return errBadSelector
		}
		select { // the document is being replaced: wait for the next one
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

func (b *Browser) result(job render.Job, act *activity, html, finalURL string, start time.Time) render.Result {
	act.mu.Lock()
	doc, docAt := act.doc, act.docAt
	act.mu.Unlock()
	page := &commonv1.Page{StatusCode: 200, FinalUrl: finalURL, ContentType: "text/html", Charset: "utf-8"}
	if doc != nil {
		page.StatusCode = int32(doc.Status)
		for name, v := range doc.Headers {
			for line := range strings.SplitSeq(fmt.Sprint(v), "\n") {
				page.Headers = append(page.Headers, &commonv1.Header{Name: name, Value: line})
			}
			if strings.EqualFold(name, proxy.RefusedHeader) {
				return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS, fmt.Sprint(v), false), start)
			}
		}
	}
	if max := job.MaxBody; max > 0 && int64(len(html)) > max {
		cut := int(max)
		for cut > 0 && !utf8.RuneStart(html[cut]) {
			cut--
		}
		html, page.Truncated = html[:cut], true
	}
	page.Body = &commonv1.Page_Text{Text: html}
	page.BodyBytes = int64(len(html))
	v := classify.Classify(classify.Input{StatusCode: int(page.StatusCode), ContentType: "text/html", Body: html})
	page.Title = v.Title
	res := render.Result{Verdict: v.Verdict, Reason: v.Reason, Page: page, Timings: &commonv1.Timings{}}
	if v.Verdict == commonv1.Verdict_VERDICT_FAILED {
		res.Error = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, Message: fmt.Sprintf("the site answered HTTP %d", page.StatusCode), Retryable: v.Retryable}
	}
	if !docAt.IsZero() {
		res.Timings.FirstByte = durationpb.New(docAt.Sub(start))
	}
	res.Timings.Total = durationpb.New(time.Since(start))
	return res
}

// fail classifies an error from the browser: the render's own deadline, the
// caller's cancel, or the browser dying.
func (b *Browser) fail(ctx, rctx, bctx context.Context, act *activity, err error, start time.Time) render.Result {
	switch {
	case bctx.Err() != nil || strings.Contains(err.Error(), "lost the connection"):
		return b.died("the browser died during the render")
	case act.tabCrashed():
		return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED, "the page crashed its tab", true), start)
	case ctx.Err() != nil:
		return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_CANCELED, "the render was canceled; its tab was closed", false), start)
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_TIMEOUT, "the render passed its deadline; its tab was closed", true), start)
	}
	return b.tagged(render.Failure(commonv1.ErrorKind_ERROR_KIND_INTERNAL, "the browser failed: "+err.Error(), true), start)
}

func (b *Browser) died(msg string) render.Result {
	r := render.Failure(commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED, msg, true)
	r.BrowserDied = true
	return r
}

func (b *Browser) tagged(r render.Result, start time.Time) render.Result {
	if r.Timings == nil {
		r.Timings = &commonv1.Timings{}
	}
	r.Timings.Total = durationpb.New(time.Since(start))
	return r
}

// navFailure maps Chrome's net error names to typed errors.
func navFailure(text string) render.Result {
	k, retry := commonv1.ErrorKind_ERROR_KIND_PROTOCOL, true
	switch {
	case strings.Contains(text, "ERR_NAME_NOT_RESOLVED"):
		k, retry = commonv1.ErrorKind_ERROR_KIND_DNS, false
	case strings.Contains(text, "ERR_TUNNEL_CONNECTION_FAILED"), strings.Contains(text, "ERR_CONNECTION"), strings.Contains(text, "ERR_ADDRESS"):
		k = commonv1.ErrorKind_ERROR_KIND_CONNECT
	case strings.Contains(text, "TIMED_OUT"):
		k = commonv1.ErrorKind_ERROR_KIND_TIMEOUT
	case strings.Contains(text, "ERR_CERT"), strings.Contains(text, "ERR_SSL"):
		k, retry = commonv1.ErrorKind_ERROR_KIND_TLS, false
	case strings.Contains(text, "ERR_TOO_MANY_REDIRECTS"):
		k, retry = commonv1.ErrorKind_ERROR_KIND_TOO_MANY_REDIRECTS, false
	case strings.Contains(text, "ERR_ABORTED"):
		k, retry = commonv1.ErrorKind_ERROR_KIND_PROTOCOL, false
		text += " (the browser did not display the document; a download?)"
	}
	return render.Failure(k, "the browser could not load the page: "+text, retry)
}
