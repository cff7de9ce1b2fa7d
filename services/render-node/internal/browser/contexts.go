package browser

import (
	"context"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// Each batch renders in a browser context of its own: an incognito-like
// profile with its own cookies, storage, cache and service workers, so
// batches (often different users) never see each other's state. Tabs of
// one batch share it while the batch renders on this node; it is disposed
// once the batch has had no tab open for Options.ContextIdle. A render
// without a batch gets a context that lives for its page only.

const (
	defaultContextIdle = 10 * time.Second
	// maxIdleContexts bounds contexts kept with no tab open: past it, a
	// batch's context is disposed as its last tab closes.
	maxIdleContexts = 32
	disposeTimeout  = 5 * time.Second
)

type batchContext struct {
	batch string
	gen   int           // the browser generation it belongs to
	ready chan struct{} // closed once id or err is set
	id    cdp.BrowserContextID
	err   error
	tabs  int
	idle  *time.Timer // disposes the context; set while no tab is open
}

// tabOptions returns how to open a tab for batch, and a func to call when
// the tab is done with. bctx is the browser the tab opens in, gen its
// generation.
func (b *Browser) tabOptions(ctx, bctx context.Context, gen int, batch string) ([]chromedp.ContextOption, func(), error) {
	opts := []chromedp.ContextOption{chromedp.WithNewWindow(false)}
	if batch == "" {
		return append(opts, chromedp.WithNewBrowserContext(b.contextParams)), func() {}, nil
	}
	b.ctxMu.Lock()
	c := b.contexts[batch]
	switch {
	case c == nil || c.gen != gen: // none yet, or one made in a browser since replaced
		c = &batchContext{batch: batch, gen: gen, ready: make(chan struct{})}
		b.contexts[batch] = c
		go b.createContext(bctx, c)
	case c.idle != nil:
		c.idle.Stop()
		c.idle = nil
		b.idleContexts--
	}
	c.tabs++
	b.ctxMu.Unlock()
	select {
	case <-c.ready:
	case <-ctx.Done():
		b.doneWith(bctx, c)
		return nil, nil, ctx.Err()
	}
	if c.err != nil {
		b.doneWith(bctx, c)
		return nil, nil, c.err
	}
	return append(opts, chromedp.WithExistingBrowserContext(c.id)), func() { b.doneWith(bctx, c) }, nil
}

// contextParams sends a new context's traffic through the node's proxy,
// like the browser's own (a context may carry a proxy of its own).
func (b *Browser) contextParams(p *target.CreateBrowserContextParams) {
	p.ProxyServer = "http://" + b.opts.ProxyAddr
	p.ProxyBypassList = "<-loopback>"
}

func (b *Browser) createContext(bctx context.Context, c *batchContext) {
	ctx, cancel := context.WithTimeout(bctx, disposeTimeout)
	defer cancel()
	p := target.CreateBrowserContextParams{}
	b.contextParams(&p)
	res, err := chromedp.CallBrowser(ctx, target.CreateBrowserContext, p)
	if err == nil {
		c.id = res.BrowserContextID
	}
	b.ctxMu.Lock()
	defer b.ctxMu.Unlock()
	c.err = err
	close(c.ready)
	if c.tabs == 0 && b.contexts[c.batch] == c {
		b.idleLocked(bctx, c) // every tab that waited for it gave up
	}
}

// doneWith ends a tab's use of c.
func (b *Browser) doneWith(bctx context.Context, c *batchContext) {
	b.ctxMu.Lock()
	defer b.ctxMu.Unlock()
	c.tabs--
	if c.tabs > 0 || b.contexts[c.batch] != c {
		return
	}
	select {
	case <-c.ready:
		b.idleLocked(bctx, c)
	default: // the creator is still at work: it sees no tab is open
	}
}

// idleLocked handles a created context with no tab open: it is disposed
// after ContextIdle, or at once when too many are idle or it failed to be
// created. b.ctxMu is held.
func (b *Browser) idleLocked(bctx context.Context, c *batchContext) {
	if c.err != nil || b.idleContexts >= maxIdleContexts {
		delete(b.contexts, c.batch)
		go b.dispose(bctx, c)
		return
	}
	b.idleContexts++
	c.idle = time.AfterFunc(b.opts.ContextIdle, func() {
		b.ctxMu.Lock()
		if b.contexts[c.batch] != c || c.tabs > 0 || c.idle == nil {
			b.ctxMu.Unlock()
			return
		}
		delete(b.contexts, c.batch)
		c.idle = nil
		b.idleContexts--
		b.ctxMu.Unlock()
		b.dispose(bctx, c)
	})
}

// dispose closes a context with whatever tabs it still has.
func (b *Browser) dispose(bctx context.Context, c *batchContext) {
	if c.id == "" || bctx.Err() != nil {
		return // never created, or gone with its browser
	}
	ctx, cancel := context.WithTimeout(bctx, disposeTimeout)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: c.id}); err != nil && bctx.Err() == nil {
		b.log.Warn("could not dispose of a batch's browser context", "batch_id", c.batch, "err", err)
	}
}

// resetContexts forgets the contexts of a browser that is gone.
func (b *Browser) resetContexts() {
	b.ctxMu.Lock()
	defer b.ctxMu.Unlock()
	for _, c := range b.contexts {
		if c.idle != nil {
			c.idle.Stop()
		}
	}
	b.contexts = map[string]*batchContext{}
	b.idleContexts = 0
}
