package main

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fetchmesh/fetchmesh/client"
	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/classify"
)

const staticConcurrency = 100

// benchStatic compares client -> gateway -> static-fetcher with a plain
// net/http fan-out of 100 workers doing the same per-page work (read the
// decompressed body, classify it) over the same pages, in alternating
// rounds.
func benchStatic(ctx context.Context, m *mesh.Mesh, pages, rounds int) error {
	urls := make([]string, pages)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/article/%d", m.TestWebURL, i)
	}
	c, err := client.Dial(m.GatewayGRPC)
	if err != nil {
		return err
	}
	defer c.Close()
	// Warm both paths (connections, caches) before measuring.
	if _, err := runMesh(ctx, c, urls[:200]); err != nil {
		return err
	}
	if _, err := runPlain(ctx, urls[:200]); err != nil {
		return err
	}
	var meshRates, plainRates []float64
	for range rounds {
		pr, err := runPlain(ctx, urls)
		if err != nil {
			return err
		}
		mr, err := runMesh(ctx, c, urls)
		if err != nil {
			return err
		}
		plainRates, meshRates = append(plainRates, pr), append(meshRates, mr)
	}
	mr, pr := median(meshRates), median(plainRates)
	report("static_urls_per_s", mr, "urls/s", fmt.Sprintf("%d article pages (~100 KB, gzip), %d concurrent, client->gateway->static-fetcher, median of %d", pages, staticConcurrency, rounds))
	report("plain_urls_per_s", pr, "urls/s", "plain net/http fan-out, 100 workers, same pages, same per-page work")
	report("static_ratio_vs_plain", mr/pr, "x", "target >= 0.8")
	return nil
}

func runMesh(ctx context.Context, c *client.Client, urls []string) (float64, error) {
	start := time.Now()
	ok := 0
	for ev, err := range c.FetchBatch(ctx, urls, &gatewayv1.FetchOptions{StaticConcurrency: staticConcurrency, Mode: gatewayv1.Mode_MODE_STATIC_ONLY}) {
		if err != nil {
			return 0, err
		}
		if r := ev.GetResult(); r != nil && r.GetOutcome() == gatewayv1.Outcome_OUTCOME_OK {
			ok++
		}
	}
	if ok != len(urls) {
		return 0, fmt.Errorf("mesh: %d of %d pages OK", ok, len(urls))
	}
	return float64(len(urls)) / since(start), nil
}

var plainClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: staticConcurrency, ForceAttemptHTTP2: true}}

func runPlain(ctx context.Context, urls []string) (float64, error) {
	start := time.Now()
	work := make(chan string)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ok     int
		errOne error
	)
	for range staticConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				err := plainFetch(ctx, u)
				mu.Lock()
				if err == nil {
					ok++
				} else if errOne == nil {
					errOne = err
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
		return 0, fmt.Errorf("plain: %d of %d pages OK (%v)", ok, len(urls), errOne)
	}
	return float64(len(urls)) / since(start), nil
}

func plainFetch(ctx context.Context, u string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := plainClient.Do(req) // transparent gzip
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	v := classify.Classify(classify.Input{StatusCode: resp.StatusCode, ContentType: mt, Body: string(body)})
	if v.Title == "" {
		return fmt.Errorf("no title")
	}
	return nil
}

// benchGatewayRSS sends one batch of n 100 KB pages and reads the gateway's
// peak resident memory (VmHWM) afterwards, sampling VmRSS meanwhile.
func benchGatewayRSS(ctx context.Context, m *mesh.Mesh, n int) error {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/article/%d", m.TestWebURL, 50000+i)
	}
	c, err := client.Dial(m.GatewayGRPC)
	if err != nil {
		return err
	}
	defer c.Close()
	pid := m.Proc("gateway").Pid()
	stop := make(chan struct{})
	var peakSampled float64
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				peakSampled = max(peakSampled, procStatusMB(pid, "VmRSS"))
			}
		}
	}()
	start := time.Now()
	results := 0
	for ev, err := range c.FetchBatch(ctx, urls, &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_STATIC_ONLY}) {
		if err != nil {
			close(stop)
			return err
		}
		if ev.GetResult() != nil {
			results++
		}
	}
	close(stop)
	if results != n {
		return fmt.Errorf("rss batch: %d results of %d", results, n)
	}
	report("gateway_peak_rss_mb", procStatusMB(pid, "VmHWM"), "MB", fmt.Sprintf("VmHWM after a %d-URL batch of 100 KB pages in %.1fs (sampled VmRSS peak %.0f MB); target < 150", n, since(start), peakSampled))
	return nil
}

// procStatusMB reads a kB field of /proc/<pid>/status, in MB.
func procStatusMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
