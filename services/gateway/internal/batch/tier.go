package batch

import (
	"context"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
)

// Tier runs one attempt of one URL on one tier. Failures, including a tier
// that cannot be reached, are reported in the result, never as a Go error.
type Tier interface {
	Attempt(ctx context.Context, req AttemptRequest) AttemptResult
}

// AttemptRequest is one attempt to run.
type AttemptRequest struct {
	BatchID string
	URL     string
	Options *Options
	// Timeout bounds the attempt (the tier's own deadline, cut to what is
	// left of the URL's deadline).
	Timeout time.Duration
}

// AttemptResult is what a tier answered.
type AttemptResult struct {
	Verdict commonv1.Verdict
	Reason  string
	Page    *commonv1.Page
	Error   *commonv1.Error
	Timings *commonv1.Timings
	NodeID  string // render tier: the node that rendered
	Calls   int    // Decodo: HTTP calls made by the proxy
}

// Tiers are the tiers the runner may use. A nil Render or Decodo tier is
// reported to the policy as unavailable.
type Tiers struct {
	Static Tier
	Render Tier
	Decodo Tier
}

// Per-attempt deadlines by tier, cut to what is left of the URL's deadline.
const (
	staticAttemptTimeout = 30 * time.Second
	renderAttemptSlack   = 15 * time.Second // on top of the render's max wait
	decodoAttemptTimeout = 180 * time.Second
)
