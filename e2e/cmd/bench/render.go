package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fetchmesh/fetchmesh/client"
	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/chromium"
	"github.com/fetchmesh/fetchmesh/services/shared/procmem"
	"github.com/fetchmesh/fetchmesh/testweb"
)

const renderSlots = 20

// benchRender compares one render node (20 slots) behind the gateway with
// a plain chromedp loop (one browser, 20 tabs reused) over the same
// app-shell pages, and the memory of each: the node's whole process tree
// (node and Chrome) against the plain loop's browser tree.
//
// The headline baseline runs Debian's full chromium, which is what
// chromedp's defaults find here; the node runs Debian's headless shell. A
// second baseline runs the node's own binary, so the cost of the node's
// fresh tab per page shows apart from the choice of binary.
func benchRender(ctx context.Context, m *mesh.Mesh, pages, rounds int) error {
	web := testweb.New(1)
	urls := make([]string, pages)
	for i := range urls {
		kind := "inline"
		if i%2 == 1 {
			kind = "fetch"
		}
		urls[i] = fmt.Sprintf("%s/app/%s/%d", m.TestWebURL, kind, 1000+i)
	}
	c, err := client.Dial(m.GatewayGRPC)
	if err != nil {
		return err
	}
	defer c.Close()
	fullChromium, err := exec.LookPath("chromium")
	if err != nil {
		return fmt.Errorf("the baseline needs Debian's chromium (make deps): %w", err)
	}
	nodeBinary, err := chromium.Find()
	if err != nil {
		return err
	}
	plain, err := newPlainBrowser(ctx, fullChromium)
	if err != nil {
		return err
	}
	defer plain.close()
	same, err := newPlainBrowser(ctx, nodeBinary)
	if err != nil {
		return err
	}
	defer same.close()
	nodePid := m.Proc("node-1").Pid()
	// The baseline waits for the h1 its pages write; the mesh is told the
	// same with wait_for_selector. The default settle (network quiet for
	// 500 ms) is measured too.
	selector := &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_FORCE_RENDER, Render: &commonv1.RenderOptions{WaitForSelector: "h1"}}
	quiet := &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_FORCE_RENDER}
	// Warm all (browser start-up, first tabs).
	if _, err := renderMesh(ctx, c, web, urls[:40], selector); err != nil {
		return err
	}
	for _, p := range []*plainBrowser{plain, same} {
		if _, err := p.run(ctx, web, urls[:40]); err != nil {
			return err
		}
	}
	var meshRates, quietRates, plainRates, sameRates []float64
	var meshPSS, plainPSS, samePSS float64
	// Each pass runs the pages once while sampling the PSS of its browser's
	// process tree; the rounds alternate them.
	passes := []struct {
		pid   int
		peak  *float64
		rates *[]float64
		run   func() (float64, error)
	}{
		{nodePid, &meshPSS, &meshRates, func() (float64, error) { return renderMesh(ctx, c, web, urls, selector) }},
		{nodePid, &meshPSS, &quietRates, func() (float64, error) { return renderMesh(ctx, c, web, urls, quiet) }},
		{plain.pid(), &plainPSS, &plainRates, func() (float64, error) { return plain.run(ctx, web, urls) }},
		{same.pid(), &samePSS, &sameRates, func() (float64, error) { return same.run(ctx, web, urls) }},
	}
	for range rounds {
		for _, p := range passes {
			stop := sampleTreePSS(p.pid, p.peak)
			r, err := p.run()
			stop()
			if err != nil {
				return err
			}
			*p.rates = append(*p.rates, r)
		}
	}
	mr, qr, pr, sr := median(meshRates), median(quietRates), median(plainRates), median(sameRates)
	report("render_pages_per_s", mr, "pages/s", fmt.Sprintf("one node (%s), %d slots, %d app shells (inline and fetch()), force-render through the gateway with wait_for_selector h1, median of %d", filepath.Base(nodeBinary), renderSlots, pages, rounds))
	report("chromedp_pages_per_s", pr, "pages/s", "plain chromedp loop on Debian's chromium: one browser, 20 tabs reused, navigate + wait for h1")
	report("render_ratio_vs_chromedp", mr/pr, "x", "target >= 0.9")
	report("render_ratio_network_quiet", qr/pr, "x", "the same, with the default settle (no request for 500 ms) instead of the selector")
	report("chromedp_same_binary_pages_per_s", sr, "pages/s", "the plain loop on the node's binary ("+filepath.Base(nodeBinary)+"), tabs reused")
	report("render_ratio_same_binary", mr/sr, "x", "node vs that loop: the price of a fresh tab per page")
	report("render_node_pss_mb", meshPSS, "MB", "peak PSS of the node's process tree (node + Chrome)")
	report("chromedp_pss_mb", plainPSS, "MB", "peak PSS of the plain loop's browser tree (chromium); target: node <= this")
	report("chromedp_same_binary_pss_mb", samePSS, "MB", "peak PSS of the plain loop's browser tree on the node's binary")
	return nil
}

func renderMesh(ctx context.Context, c *client.Client, web *testweb.Web, urls []string, opts *gatewayv1.FetchOptions) (float64, error) {
	start := time.Now()
	ok := 0
	for ev, err := range c.FetchBatch(ctx, urls, opts) {
		if err != nil {
			return 0, err
		}
		if r := ev.GetResult(); r != nil {
			if truth, _ := web.Truth(r.GetUrl()); truth.Check(r.GetPage().GetTitle(), r.GetPage().GetText()) {
				ok++
			}
		}
	}
	if ok != len(urls) {
		return 0, fmt.Errorf("mesh render: %d of %d pages correct", ok, len(urls))
	}
	return float64(len(urls)) / since(start), nil
}

// plainBrowser is the baseline: chromedp as one would write it by hand.
type plainBrowser struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newPlainBrowser(ctx context.Context, execPath string) (*plainBrowser, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.DisableGPU, chromedp.ExecPath(execPath))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(bctx); err != nil {
		cancelB()
		cancelAlloc()
		return nil, err
	}
	return &plainBrowser{ctx: bctx, cancel: func() { cancelB(); cancelAlloc() }}, nil
}

func (p *plainBrowser) close() { p.cancel() }

func (p *plainBrowser) pid() int { return chromedp.FromContext(p.ctx).Browser.Process().Pid }

func (p *plainBrowser) run(ctx context.Context, web *testweb.Web, urls []string) (float64, error) {
	start := time.Now()
	work := make(chan string)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		errs []error
	)
	for range renderSlots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tab, cancel := chromedp.NewContext(p.ctx)
			defer cancel()
			if err := chromedp.Do(tab); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				for range work {
				}
				return
			}
			for u := range work {
				tctx, cancelT := context.WithTimeout(tab, 30*time.Second)
				err := chromedp.Do(tctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("h1")))
				var html, title string
				if err == nil {
					html, err = chromedp.Run(tctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
				}
				if err == nil {
					title, err = chromedp.Run(tctx, chromedp.Title())
				}
				cancelT()
				truth, _ := web.Truth(u)
				mu.Lock()
				if err == nil && truth.Check(title, html) {
					ok++
				} else if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, u := range urls {
		work <- u
	}
	close(work)
	wg.Wait()
	if ok != len(urls) {
		return 0, fmt.Errorf("plain chromedp: %d of %d pages correct (%v)", ok, len(urls), errs)
	}
	return float64(len(urls)) / since(start), nil
}

// sampleTreePSS samples the PSS of pid's process tree every 200 ms into
// peak (MB) until the returned func is called.
func sampleTreePSS(pid int, peak *float64) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := procmem.TreePSS(pid); err == nil {
				*peak = max(*peak, float64(b)/(1<<20))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
