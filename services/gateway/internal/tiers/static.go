package tiers

import (
	"context"
	"time"

	staticfetcherv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/staticfetcher/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"google.golang.org/protobuf/types/known/durationpb"
)

// rpcSlack lets a tier report its own timeout before the call's deadline.
const rpcSlack = 2 * time.Second

// Static calls the static-fetcher.
type Static struct {
	Client staticfetcherv1.StaticFetcherServiceClient
}

// Attempt fetches req.URL on the static tier.
func (s *Static) Attempt(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
	cctx, cancel := context.WithTimeout(ctx, req.Timeout+rpcSlack)
	defer cancel()
	resp, err := s.Client.Fetch(cctx, &staticfetcherv1.FetchRequest{
		Url:          req.URL,
		Headers:      req.Options.Headers,
		MaxBodyBytes: req.Options.MaxBodyBytes,
		Timeout:      durationpb.New(req.Timeout),
		BatchId:      req.BatchID,
	})
	if err != nil {
		return rpcFailure(ctx, "static", err)
	}
	return batch.AttemptResult{Verdict: resp.GetVerdict(), Reason: resp.GetReason(), Page: resp.GetPage(), Error: resp.GetError(), Timings: resp.GetTimings()}
}
