package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fetchmesh/fetchmesh/client"
	"github.com/fetchmesh/fetchmesh/e2e/mesh"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/testweb"
)

// benchMix runs the whole pipeline on a mixed batch in auto mode: 70%
// article pages, 20% app shells, 10% challenge pages, through gateway,
// static-fetcher, one real render node (20 slots) and the Decodo emulator,
// and checks every page against the test web's own truth.
func benchMix(ctx context.Context, m *mesh.Mesh, n int) error {
	web := testweb.New(1)
	urls := make([]string, n)
	for i := range urls {
		switch {
		case i < n*7/10:
			urls[i] = fmt.Sprintf("%s/article/%d", m.TestWebURL, 70000+i)
		case i < n*8/10:
			urls[i] = fmt.Sprintf("%s/app/inline/%d", m.TestWebURL, 70000+i)
		case i < n*9/10:
			urls[i] = fmt.Sprintf("%s/app/fetch/%d", m.TestWebURL, 70000+i)
		case i < n*95/100:
			urls[i] = fmt.Sprintf("%s/challenge/200/%d", m.TestWebURL, 70000+i)
		default:
			urls[i] = fmt.Sprintf("%s/challenge/403/%d", m.TestWebURL, 70000+i)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	c, err := client.Dial(m.GatewayGRPC)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	correct := 0
	var sum *gatewayv1.BatchSummary
	for ev, err := range c.FetchBatch(ctx, urls, &gatewayv1.FetchOptions{Mode: gatewayv1.Mode_MODE_AUTO, Decodo: &gatewayv1.DecodoOptions{MaxCalls: int32(n)}}) {
		if err != nil {
			return err
		}
		if r := ev.GetResult(); r != nil {
			if truth, ok := web.Truth(r.GetUrl()); ok && r.GetOutcome() == gatewayv1.Outcome_OUTCOME_OK && truth.Check(r.GetPage().GetTitle(), r.GetPage().GetText()) {
				correct++
			}
		}
		if s := ev.GetSummary(); s != nil {
			sum = s
		}
	}
	elapsed := time.Since(start)
	report("mix_urls_per_s", float64(n)/elapsed.Seconds(), "urls/s", fmt.Sprintf("%d URLs (70%% articles, 20%% app shells, 10%% challenges) in auto mode in %.1f s through gateway, static-fetcher, one real render node (20 slots) and the Decodo emulator; target >= 8", n, elapsed.Seconds()))
	report("mix_correct", float64(correct)/float64(n), "fraction", "pages whose title and text match the test web's truth; target 1.0")
	report("mix_renders", float64(sum.GetRenderAttempts()), "renders", fmt.Sprintf("target %d (app shells and challenges only)", n*3/10))
	report("mix_decodo_calls", float64(sum.GetDecodoCalls()), "calls", fmt.Sprintf("target %d (challenges only)", n/10))
	return nil
}
