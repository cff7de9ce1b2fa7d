package tiers

import (
	"context"

	decodoproxyv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/decodoproxy/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/batch"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Decodo calls the decodo-proxy.
type Decodo struct {
	Client decodoproxyv1.DecodoProxyServiceClient
}

// Attempt scrapes req.URL through Decodo, asking it to render JavaScript.
func (d *Decodo) Attempt(ctx context.Context, req batch.AttemptRequest) batch.AttemptResult {
	cctx, cancel := context.WithTimeout(ctx, req.Timeout+rpcSlack)
	defer cancel()
	o := req.Options.Decodo
	resp, err := d.Client.Scrape(cctx, &decodoproxyv1.ScrapeRequest{
		Url:          req.URL,
		Render:       true,
		Geo:          o.GetGeo(),
		Locale:       o.GetLocale(),
		DeviceType:   o.GetDeviceType(),
		SessionId:    o.GetSessionId(),
		Headers:      req.Options.Headers,
		MaxBodyBytes: req.Options.MaxBodyBytes,
		Timeout:      durationpb.New(req.Timeout),
		BatchId:      req.BatchID,
	})
	if err != nil {
		return rpcFailure(ctx, "Decodo", err)
	}
	return batch.AttemptResult{Verdict: resp.GetVerdict(), Reason: resp.GetReason(), Page: resp.GetPage(), Error: resp.GetError(),
		Timings: resp.GetTimings(), Calls: int(resp.GetCalls())}
}
