package batch

import (
	"sync"
	"sync/atomic"
	"time"

	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// summary counts a batch's results and attempts.
type summary struct {
	mu                                          sync.Mutex
	outcomes                                    map[gatewayv1.Outcome]int32
	tiers                                       map[gatewayv1.Tier]int32
	results                                     int32
	staticAttempts, renderAttempts, decodoCalls atomic.Int32
}

func (s *summary) add(res *gatewayv1.UrlResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outcomes == nil {
		s.outcomes, s.tiers = map[gatewayv1.Outcome]int32{}, map[gatewayv1.Tier]int32{}
	}
	s.results++
	s.outcomes[res.GetOutcome()]++
	s.tiers[res.GetTier()]++
}

func (s *summary) proto(batchID string, d time.Duration) *gatewayv1.BatchSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &gatewayv1.BatchSummary{
		BatchId:        batchID,
		Results:        s.results,
		Ok:             s.outcomes[gatewayv1.Outcome_OUTCOME_OK],
		NotFound:       s.outcomes[gatewayv1.Outcome_OUTCOME_NOT_FOUND],
		Blocked:        s.outcomes[gatewayv1.Outcome_OUTCOME_BLOCKED],
		Failed:         s.outcomes[gatewayv1.Outcome_OUTCOME_FAILED],
		Invalid:        s.outcomes[gatewayv1.Outcome_OUTCOME_INVALID],
		ByStatic:       s.tiers[gatewayv1.Tier_TIER_STATIC],
		ByRender:       s.tiers[gatewayv1.Tier_TIER_RENDER],
		ByDecodo:       s.tiers[gatewayv1.Tier_TIER_DECODO],
		StaticAttempts: s.staticAttempts.Load(),
		RenderAttempts: s.renderAttempts.Load(),
		DecodoCalls:    s.decodoCalls.Load(),
		Duration:       durationpb.New(d),
	}
}
