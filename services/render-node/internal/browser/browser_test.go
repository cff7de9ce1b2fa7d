package browser_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/chromium"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/browser"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/proxy"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"github.com/fetchmesh/fetchmesh/services/shared/procmem"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"github.com/fetchmesh/fetchmesh/testweb"
	"google.golang.org/protobuf/types/known/durationpb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start serves the test web and a browser whose proxy lets exactly the
// test web through.
func start(t *testing.T) (*httptest.Server, *testweb.Web, *browser.Browser) {
	t.Helper()
	return startWith(t, browser.Options{})
}

func startWith(t *testing.T, opts browser.Options) (*httptest.Server, *testweb.Web, *browser.Browser) {
	t.Helper()
	if _, err := chromium.Find(); err != nil {
		t.Fatalf("%v (the render tests need real Chromium; make deps installs it)", err)
	}
	web := testweb.New(1)
	srv := httptest.NewServer(web)
	t.Cleanup(srv.Close)
	guard, err := ssrf.New(ssrf.Options{Allow: []string{srv.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.Start(guard, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	opts.ProxyAddr = px.Addr()
	b, err := browser.Start(opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return srv, web, b
}

func job(url string) render.Job {
	return render.Job{URL: url, Options: &commonv1.RenderOptions{MaxWait: durationpb.New(10 * time.Second)}, Timeout: 20 * time.Second, MaxBody: 10 << 20}
}

func TestRender_JavaScriptPagesComeBackWithTheirText(t *testing.T) {
	srv, web, b := start(t)
	var wg sync.WaitGroup
	for _, path := range []string{"/app/inline/3", "/app/fetch/4", "/article/5"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := b.Render(context.Background(), job(srv.URL+path))
			truth, _ := web.Truth(srv.URL + path)
			if res.Verdict != commonv1.Verdict_VERDICT_COMPLETE || !truth.Check(res.Page.GetTitle(), res.Page.GetText()) {
				t.Errorf("%s: verdict %v (%s), error %v, title %q", path, res.Verdict, res.Reason, res.Error, res.Page.GetTitle())
			}
			if res.Page.GetStatusCode() != 200 || !strings.HasSuffix(res.Page.GetFinalUrl(), path) {
				t.Errorf("%s: status %d final %q", path, res.Page.GetStatusCode(), res.Page.GetFinalUrl())
			}
		}()
	}
	wg.Wait()
}

func TestRender_WaitForSelector(t *testing.T) {
	srv, _, b := start(t)
	withSelector := func(path, selector string, maxWait time.Duration) render.Result {
		j := job(srv.URL + path)
		j.Options.WaitForSelector, j.Options.MaxWait = selector, durationpb.New(maxWait)
		return b.Render(context.Background(), j)
	}
	t.Run("appears after the page went quiet", func(t *testing.T) {
		res := withSelector("/app/late/1500", "#late", 10*time.Second)
		if res.Verdict != commonv1.Verdict_VERDICT_COMPLETE || !strings.Contains(res.Page.GetText(), `<div id="late">arrived</div>`) {
			t.Errorf("verdict %v (%s): the late element is missing", res.Verdict, res.Reason)
		}
	})
	t.Run("survives a script navigation", func(t *testing.T) {
		res := withSelector("/app/script-redirect/7", "#root h1", 10*time.Second)
		if res.Verdict != commonv1.Verdict_VERDICT_COMPLETE || !strings.HasSuffix(res.Page.GetFinalUrl(), "/app/inline/7") || !strings.Contains(res.Page.GetText(), "<h1>") {
			t.Errorf("verdict %v (%s), final %q", res.Verdict, res.Reason, res.Page.GetFinalUrl())
		}
	})
	t.Run("never appears", func(t *testing.T) {
		begin := time.Now()
		res := withSelector("/article/1", "#nothing-like-this", time.Second)
		if res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_TIMEOUT || time.Since(begin) > 3*time.Second {
			t.Errorf("got %v after %s, want a timeout after ~1s", res.Error, time.Since(begin))
		}
	})
	t.Run("not CSS", func(t *testing.T) {
		begin := time.Now()
		res := withSelector("/article/1", "div[", 10*time.Second)
		if res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_INVALID_OPTION || res.Error.GetRetryable() || time.Since(begin) > 5*time.Second {
			t.Errorf("got %v after %s, want an invalid option at once", res.Error, time.Since(begin))
		}
	})
	t.Run("without a selector the late element is not awaited", func(t *testing.T) {
		j := job(srv.URL + "/app/late/3000")
		res := b.Render(context.Background(), j)
		if res.Verdict != commonv1.Verdict_VERDICT_COMPLETE || strings.Contains(res.Page.GetText(), `<div id="late">`) {
			t.Errorf("verdict %v: the network-quiet settle should not wait for timers", res.Verdict)
		}
	})
}

func TestRender_ChallengeStaysBlockedAndNotFoundIsFinal(t *testing.T) {
	srv, _, b := start(t)
	if res := b.Render(context.Background(), job(srv.URL+"/challenge/403/1")); res.Verdict != commonv1.Verdict_VERDICT_BLOCKED || res.Page.GetStatusCode() != 403 {
		t.Errorf("challenge: %v %d", res.Verdict, res.Page.GetStatusCode())
	}
	if res := b.Render(context.Background(), job(srv.URL+"/challenge/200/1")); res.Verdict != commonv1.Verdict_VERDICT_BLOCKED {
		t.Errorf("200 challenge: %v", res.Verdict)
	}
	if res := b.Render(context.Background(), job(srv.URL+"/status/404")); res.Verdict != commonv1.Verdict_VERDICT_NOT_FOUND {
		t.Errorf("404: %v", res.Verdict)
	}
}

func TestRender_PastDeadlineIsKilledAndReported(t *testing.T) {
	srv, _, b := start(t)
	j := job(srv.URL + "/slow/20000")
	j.Timeout = 2 * time.Second
	begin := time.Now()
	res := b.Render(context.Background(), j)
	if res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_TIMEOUT || time.Since(begin) > 4*time.Second {
		t.Errorf("got %v after %s, want a timeout after ~2s", res.Error, time.Since(begin))
	}
	// The browser works on; the killed tab is gone.
	if res := b.Render(context.Background(), job(srv.URL+"/article/1")); res.Verdict != commonv1.Verdict_VERDICT_COMPLETE {
		t.Errorf("after a killed render: %v %v", res.Verdict, res.Error)
	}
}

func TestRender_ChromeCannotReachRefusedAddresses(t *testing.T) {
	srv, _, b := start(t)
	other := httptest.NewServer(testweb.New(2))
	defer other.Close()
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	// A page with no batch gets a browser context of its own, a page of a
	// batch its batch's: both must keep to the proxy.
	for _, batch := range []string{"", "batch-1"} {
		for _, u := range []string{
			other.URL + "/article/1",                   // loopback, not allowed
			"http://0x7f000001:" + port + "/article/1", // Chrome reads this as 127.0.0.1
			"http://127.1:" + port + "/article/1",
			srv.URL + "/redirect-to?url=" + other.URL + "/article/1", // a redirect
		} {
			j := job(u)
			j.Batch = batch
			res := b.Render(context.Background(), j)
			if res.Verdict == commonv1.Verdict_VERDICT_COMPLETE || strings.Contains(res.Page.GetText(), "fingerprint") {
				t.Errorf("%s (batch %q): Chrome reached a refused address (%v)", u, batch, res.Verdict)
			}
		}
		// An allowed page that embeds the refused address as an iframe,
		// an image, a fetch() and a WebSocket gets none of them through.
		j := job(srv.URL + "/embed?url=" + other.URL + "/article/1")
		j.Batch = batch
		res := b.Render(context.Background(), j)
		if res.Error != nil || res.Page.GetTitle() != "Embed" {
			t.Errorf("embed page (batch %q): %v %v", batch, res.Verdict, res.Error)
		}
	}
	if hits := other.Config.Handler.(*testweb.Web).Hits("/article/1"); hits != 0 {
		t.Errorf("the refused server was reached %d times", hits)
	}
}

// Batches are isolated from each other: cookies and storage one leaves are
// seen by later pages of the same batch only, and not after its context
// idled out.
func TestRender_BatchesDoNotShareState(t *testing.T) {
	srv, _, b := startWith(t, browser.Options{ContextIdle: 2 * time.Second})
	state := func(batch, tag string) string {
		t.Helper()
		j := job(srv.URL + "/state/" + tag)
		j.Batch = batch
		res := b.Render(context.Background(), j)
		if res.Error != nil {
			t.Fatalf("state page: %v", res.Error)
		}
		text := res.Page.GetText()
		return found(text, "cookie: ") + "/" + found(text, `id="storage">storage: `)
	}
	for _, step := range []struct{ batch, tag, want, why string }{
		{"a", "a1", "none/none", "the first page of batch a found state"},
		{"a", "a2", "a1/a1", "batch a's second page did not find its first page's cookie and storage"},
		{"b", "b1", "none/none", "batch b found state"},
		{"", "x1", "none/none", "a page without a batch found state"},
		{"", "x2", "none/none", "a page without a batch found another's state"},
	} {
		if got := state(step.batch, step.tag); got != step.want {
			t.Errorf("%s: got %s, want %s", step.why, got, step.want)
		}
	}
	time.Sleep(3 * time.Second)
	if got := state("a", "a3"); got != "none/none" {
		t.Errorf("batch a's context outlived its idle time: found %s", got)
	}
	// A restart takes every context with the browser; batches get new ones.
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := state("a", "a4"); got != "none/none" {
		t.Errorf("batch a after a browser restart: found %s", got)
	}
}

// Pages rendered side by side all get animation frames: a tab is not
// starved for being in the background of a shared window.
func TestRender_ConcurrentTabsGetAnimationFrames(t *testing.T) {
	srv, web, b := start(t)
	const n = 12
	var wg sync.WaitGroup
	results := make([]render.Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := job(fmt.Sprintf("%s/app/frame/%d", srv.URL, 300+i))
			j.Options.WaitForSelector, j.Options.MaxWait = "h1", durationpb.New(8*time.Second)
			j.Batch = "one-batch" // its tabs share a window
			results[i] = b.Render(context.Background(), j)
		}()
	}
	wg.Wait()
	for i, res := range results {
		u := fmt.Sprintf("%s/app/frame/%d", srv.URL, 300+i)
		truth, _ := web.Truth(u)
		if res.Error != nil || !truth.Check(res.Page.GetTitle(), res.Page.GetText()) {
			t.Errorf("%s: %v (the page's script never got an animation frame)", u, res.Error)
		}
	}
}

func TestRender_Viewport(t *testing.T) {
	srv, _, b := start(t)
	for _, c := range []struct {
		w, h int32
		want string
	}{
		{0, 0, "1366x768"}, // the default
		{1366, 768, "1366x768"},
		{800, 600, "800x600"},
		{0, 0, "1366x768"}, // a tab after an emulated one is back to the default
	} {
		for _, batch := range []string{"", "batch-1"} { // a context per page, a batch's context
			j := job(srv.URL + "/viewport")
			j.Options.ViewportWidth, j.Options.ViewportHeight = c.w, c.h
			j.Batch = batch
			res := b.Render(context.Background(), j)
			if got := found(res.Page.GetText(), `id="size">`); got != c.want {
				t.Errorf("viewport %dx%d (batch %q): the page saw %s (%v), want %s", c.w, c.h, batch, got, res.Error, c.want)
			}
		}
	}
}

// found returns the word after label in text.
func found(text, label string) string {
	_, rest, ok := strings.Cut(text, label)
	if !ok {
		return "(missing)"
	}
	end := strings.IndexAny(rest, "<\n ")
	if end < 0 {
		end = len(rest)
	}
	return rest[:end]
}

func TestRender_CancelClosesTheTab(t *testing.T) {
	srv, _, b := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	begin := time.Now()
	res := b.Render(ctx, job(srv.URL+"/slow/20000"))
	if time.Since(begin) > time.Second || res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_CANCELED {
		t.Errorf("cancel: %v after %s", res.Error, time.Since(begin))
	}
}

func TestBrowser_NoChromeProcessOutlivesClose(t *testing.T) {
	_, _, b := start(t)
	pid := b.PID()
	kids, _ := procmem.Descendants(pid)
	if pid == 0 || len(kids) == 0 {
		t.Fatalf("browser pid %d with %d children", pid, len(kids))
	}
	if mem := b.MemoryBytes(); mem < 10<<20 {
		t.Errorf("browser tree PSS %d bytes: implausibly small", mem)
	}
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range append(kids, pid) {
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(p) {
			t.Errorf("chrome process %d outlived the browser", p)
		}
	}
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil || p.Signal(syscall.Signal(0)) != nil {
		return false
	}
	// A zombie waiting for its parent's wait is dead for our purpose.
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return !strings.Contains(string(b), ") Z ")
}
