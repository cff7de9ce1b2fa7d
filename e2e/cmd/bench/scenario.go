package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/fetchmesh/fetchmesh/client"
	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
)

// benchScenario1 is the capacity guide's scenario 1 through the real
// gateway and coordinator: 13 simulated nodes x 20 slots, each render
// taking 3 s; 10 concurrent batches x 100 URLs in force-render mode. The
// ideal makespan is 12 s (1,000 renders over 260 slots = 4 waves).
func benchScenario1(ctx context.Context, binDir string) error {
	const (
		nodes, batches, perBatch = 13, 10, 100
		renderTime               = 3 * time.Second
	)
	m, err := mesh.Start(mesh.Options{BinDir: binDir, Log: io.Discard, SimNodes: nodes, SimRenderTime: renderTime})
	if err != nil {
		return err
	}
	defer m.Stop()
	c, err := client.Dial(m.GatewayGRPC)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := waitSlots(ctx, c, nodes*20); err != nil {
		return err
	}
	start := time.Now()
	var wg sync.WaitGroup
	finish := make([]time.Duration, batches)
	errs := make([]error, batches)
	for b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			urls := make([]string, perBatch)
			for i := range urls {
				urls[i] = fmt.Sprintf("%s/article/%d?batch=%d", m.TestWebURL, i, b)
			}
			ok := 0
			for ev, err := range c.FetchBatch(ctx, urls, &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_FORCE_RENDER}) {
				if err != nil {
					errs[b] = err
					return
				}
				if r := ev.GetResult(); r != nil && r.GetOutcome() == gatewayv1.Outcome_OUTCOME_OK {
					ok++
				}
			}
			if ok != perBatch {
				errs[b] = fmt.Errorf("batch %d: %d of %d OK", b, ok, perBatch)
			}
			finish[b] = time.Since(start)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	makespan := slices.Max(finish)
	spread := makespan - slices.Min(finish)
	report("scenario1_makespan_s", makespan.Seconds(), "s", fmt.Sprintf("13 simulated nodes x 20 slots, 3 s renders, 10 batches x 100 URLs force-render; ideal 12 s, target < 13.5 s; batches finished within %.1f s of each other (target: one 3 s wave)", spread.Seconds()))
	report("scenario1_batch_spread_s", spread.Seconds(), "s", "first to last batch to finish")
	return nil
}

func waitSlots(ctx context.Context, c *client.Client, slots int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.API().GetPoolStatus(ctx, &gatewayv1.GetPoolStatusRequest{})
		if err == nil && int(st.GetPool().GetSlotsFree()) >= slots {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the pool did not reach %d free slots", slots)
}
