package node

import (
	"context"
	"time"
)

// RestartBrowser stops granting, waits for renders in flight to end (each
// has its own deadline), restarts the browser and cools down. Concurrent
// calls restart once.
func (n *Node) RestartBrowser(reason string) {
	n.mu.Lock()
	if n.restarting {
		n.mu.Unlock()
		return
	}
	n.restarting = true
	n.mu.Unlock()
	n.signal()
	n.log.Warn("restarting the browser", "reason", reason)

	ctx, cancel := context.WithTimeout(context.Background(), MaxTimeout)
	n.waitIdle(ctx)
	cancel()
	err := n.renderer.Restart()
	for attempt := 1; err != nil && attempt < 5; attempt++ {
		n.log.Error("browser restart failed", "err", err, "attempt", attempt)
		time.Sleep(time.Duration(attempt) * time.Second)
		err = n.renderer.Restart()
	}
	n.mu.Lock()
	n.restarting = false
	n.restarts++
	n.coolDown(n.cfg.CooldownAfterRestart, "browser restart")
	n.mu.Unlock()
	n.signal()
}

// Watch checks the browser's health and memory until ctx ends: a browser
// that does not answer, or whose process tree passes the memory cap, is
// restarted. A silent stream is not proof of life; this is.
func (n *Node) Watch(ctx context.Context) {
	t := time.NewTicker(n.cfg.HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		restarting := n.restarting
		n.mu.Unlock()
		if restarting {
			continue
		}
		if err := n.renderer.Healthy(5 * time.Second); err != nil {
			go n.RestartBrowser("the browser did not answer: " + err.Error())
			continue
		}
		if limit := n.cfg.MemoryCapBytes; limit > 0 {
			if mem := n.renderer.MemoryBytes(); mem > limit {
				go n.RestartBrowser("the browser's memory passed the cap")
			}
		}
	}
}
