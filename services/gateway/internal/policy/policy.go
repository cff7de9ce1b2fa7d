// Package policy is the escalation policy: given what has been tried for a
// URL, which tier comes next, or what the final outcome is. It is one pure
// function, table-tested; the batch runner only carries out its decisions.
//
// In auto mode a URL starts on the static tier (or on the render tier when
// its host is known to need JavaScript). Pages that need JavaScript, and
// blocked pages, go to the render tier; pages still blocked after rendering,
// and renders that keep failing with a retryable error, go to Decodo. A
// not-found, a complete page and any non-retryable failure are final: a 404
// is an answer, not a reason to pay for Decodo.
package policy

import (
	"fmt"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
)

// Attempts allowed per tier for one URL. Render retries go to other nodes
// (a node crash fails only its in-flight renders); Decodo retries happen
// inside the decodo-proxy, so the gateway calls it once.
const (
	MaxStaticAttempts = 2
	MaxRenderAttempts = 3
	MaxDecodoAttempts = 1
)

// Attempt is what the policy needs to know of one finished attempt.
type Attempt struct {
	Tier      gatewayv1.Tier
	Verdict   commonv1.Verdict
	Error     *commonv1.Error // set when Verdict is failed
	Retryable bool
}

// Input is everything the decision depends on.
type Input struct {
	Mode     gatewayv1.Mode
	Attempts []Attempt // oldest first
	// Render and Decodo say whether those tiers can take the URL now; a
	// non-nil error is the reason they cannot (not configured, down, budget
	// exhausted), reported if the URL needed that tier.
	Render *commonv1.Error
	Decodo *commonv1.Error
	// PreferRender: the URL's host rendered fine where static fetches said
	// "needs JavaScript", so auto mode starts on the render tier.
	PreferRender bool
}

// Decision is the next step. Next is TIER_UNSPECIFIED when the URL is final,
// with Outcome, and Error when the outcome is not OK.
type Decision struct {
	Next    gatewayv1.Tier
	Outcome gatewayv1.Outcome
	Error   *commonv1.Error
	Reason  string
}

func next(t gatewayv1.Tier, reason string) Decision { return Decision{Next: t, Reason: reason} }

func final(o gatewayv1.Outcome, err *commonv1.Error, reason string) Decision {
	return Decision{Outcome: o, Error: err, Reason: reason}
}

// Next decides what happens to a URL after in.Attempts.
func Next(in Input) Decision {
	mode := in.Mode
	if mode == gatewayv1.Mode_MODE_UNSPECIFIED {
		mode = gatewayv1.Mode_MODE_AUTO
	}
	if len(in.Attempts) == 0 {
		return start(mode, in)
	}
	last := in.Attempts[len(in.Attempts)-1]
	switch last.Verdict {
	case commonv1.Verdict_VERDICT_COMPLETE:
		return final(gatewayv1.Outcome_OUTCOME_OK, nil, "complete page")
	case commonv1.Verdict_VERDICT_NOT_FOUND:
		return final(gatewayv1.Outcome_OUTCOME_NOT_FOUND, &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, Message: "the site answered not found"}, "not found is final")
	case commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT:
		return afterNeedsJS(mode, last, in)
	case commonv1.Verdict_VERDICT_BLOCKED:
		return afterBlocked(mode, last, in)
	default:
		return afterFailure(mode, last, in)
	}
}

func start(mode gatewayv1.Mode, in Input) Decision {
	switch mode {
	case gatewayv1.Mode_MODE_STATIC_ONLY:
		return next(gatewayv1.Tier_TIER_STATIC, "static only")
	case gatewayv1.Mode_MODE_FORCE_RENDER:
		return want(gatewayv1.Tier_TIER_RENDER, in, gatewayv1.Outcome_OUTCOME_FAILED, "force render")
	case gatewayv1.Mode_MODE_FORCE_DECODO:
		return want(gatewayv1.Tier_TIER_DECODO, in, gatewayv1.Outcome_OUTCOME_FAILED, "force Decodo")
	}
	if in.PreferRender && in.Render == nil {
		return next(gatewayv1.Tier_TIER_RENDER, "host known to need JavaScript")
	}
	return next(gatewayv1.Tier_TIER_STATIC, "cheapest tier first")
}

// want goes to tier if it can take the URL, else ends with outcome and the
// tier's reason.
func want(tier gatewayv1.Tier, in Input, otherwise gatewayv1.Outcome, reason string) Decision {
	unavailable := in.Render
	if tier == gatewayv1.Tier_TIER_DECODO {
		unavailable = in.Decodo
	}
	if unavailable != nil {
		return final(otherwise, unavailable, fmt.Sprintf("%s: %s", reason, unavailable.GetMessage()))
	}
	return next(tier, reason)
}

func count(in Input, tier gatewayv1.Tier) int {
	n := 0
	for _, a := range in.Attempts {
		if a.Tier == tier {
			n++
		}
	}
	return n
}

func afterNeedsJS(mode gatewayv1.Mode, last Attempt, in Input) Decision {
	if mode == gatewayv1.Mode_MODE_STATIC_ONLY {
		return final(gatewayv1.Outcome_OUTCOME_OK, nil, "static only: app shell returned as fetched")
	}
	if last.Tier == gatewayv1.Tier_TIER_STATIC {
		return want(gatewayv1.Tier_TIER_RENDER, in, gatewayv1.Outcome_OUTCOME_FAILED, "needs JavaScript")
	}
	// A render or Decodo answer that still looks like a shell is what the
	// site serves: return it.
	return final(gatewayv1.Outcome_OUTCOME_OK, nil, "rendered page has little text")
}

func afterBlocked(mode gatewayv1.Mode, last Attempt, in Input) Decision {
	blocked := gatewayv1.Outcome_OUTCOME_BLOCKED
	switch {
	case mode == gatewayv1.Mode_MODE_STATIC_ONLY || mode == gatewayv1.Mode_MODE_FORCE_DECODO:
		return final(blocked, blockedErr(last), "blocked; mode allows no other tier")
	case last.Tier == gatewayv1.Tier_TIER_STATIC:
		return want(gatewayv1.Tier_TIER_RENDER, in, blocked, "blocked to static fetch")
	case last.Tier == gatewayv1.Tier_TIER_RENDER:
		d := want(gatewayv1.Tier_TIER_DECODO, in, blocked, "blocked after rendering")
		if d.Next == gatewayv1.Tier_TIER_UNSPECIFIED && d.Error.GetKind() == commonv1.ErrorKind_ERROR_KIND_UNSPECIFIED {
			d.Error = blockedErr(last)
		}
		return d
	}
	return final(blocked, blockedErr(last), "blocked by every tier tried")
}

func blockedErr(last Attempt) *commonv1.Error {
	return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, Message: "the site blocked the " + TierName(last.Tier) + " tier"}
}

// TierName is a tier's short name, for messages and span names.
func TierName(t gatewayv1.Tier) string {
	switch t {
	case gatewayv1.Tier_TIER_STATIC:
		return "static"
	case gatewayv1.Tier_TIER_RENDER:
		return "render"
	case gatewayv1.Tier_TIER_DECODO:
		return "decodo"
	}
	return "none"
}

func afterFailure(mode gatewayv1.Mode, last Attempt, in Input) Decision {
	failed := gatewayv1.Outcome_OUTCOME_FAILED
	if last.Tier == gatewayv1.Tier_TIER_DECODO && blockedBefore(in) {
		// Decodo was the way past a block and it failed: still blocked.
		failed = gatewayv1.Outcome_OUTCOME_BLOCKED
	}
	err := last.Error
	if err == nil {
		err = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_INTERNAL, Message: "attempt failed without an error"}
	}
	if err.GetKind() == commonv1.ErrorKind_ERROR_KIND_INVALID_URL {
		return final(gatewayv1.Outcome_OUTCOME_INVALID, err, "invalid URL")
	}
	if last.Tier == gatewayv1.Tier_TIER_DECODO && unavailable(err) {
		// Decodo could not even be asked: the earlier tier's answer says
		// more about the URL than "Decodo unavailable".
		if prev := previousError(in); prev != nil {
			err = &commonv1.Error{Kind: prev.GetKind(), Message: prev.GetMessage() + "; Decodo tier: " + err.GetMessage(), Retryable: prev.GetRetryable()}
		}
	}
	if !last.Retryable {
		return final(failed, err, "failure is not retryable")
	}
	limits := map[gatewayv1.Tier]int{
		gatewayv1.Tier_TIER_STATIC: MaxStaticAttempts,
		gatewayv1.Tier_TIER_RENDER: MaxRenderAttempts,
		gatewayv1.Tier_TIER_DECODO: MaxDecodoAttempts,
	}
	// Render retries are for node trouble (a crash, a timeout); a site that
	// answered a browser with 5xx is not rendered again.
	renderedStatus := last.Tier == gatewayv1.Tier_TIER_RENDER && err.GetKind() == commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS
	if !renderedStatus && count(in, last.Tier) < limits[last.Tier] {
		return next(last.Tier, "retry after a retryable failure")
	}
	switch {
	case mode == gatewayv1.Mode_MODE_AUTO && last.Tier == gatewayv1.Tier_TIER_STATIC && escalatesFromStatic(err):
		// A 5xx to plain clients (or a static tier that is down) may still
		// render; a network failure would fail in Chrome too.
		if d := want(gatewayv1.Tier_TIER_RENDER, in, failed, "static tier kept failing"); d.Next != gatewayv1.Tier_TIER_UNSPECIFIED {
			return d
		}
	case (mode == gatewayv1.Mode_MODE_AUTO || mode == gatewayv1.Mode_MODE_FORCE_RENDER) && last.Tier == gatewayv1.Tier_TIER_RENDER &&
		err.GetKind() != commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED:
		if d := want(gatewayv1.Tier_TIER_DECODO, in, failed, "render tier kept failing"); d.Next != gatewayv1.Tier_TIER_UNSPECIFIED {
			return d
		}
	}
	return final(failed, err, "retries exhausted")
}

func escalatesFromStatic(err *commonv1.Error) bool {
	switch err.GetKind() {
	case commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS, commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE:
		return true
	}
	return false
}

func blockedBefore(in Input) bool {
	for _, a := range in.Attempts {
		if a.Verdict == commonv1.Verdict_VERDICT_BLOCKED {
			return true
		}
	}
	return false
}

func unavailable(err *commonv1.Error) bool {
	switch err.GetKind() {
	case commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, commonv1.ErrorKind_ERROR_KIND_NOT_CONFIGURED:
		return true
	}
	return false
}

// previousError is the error (or block) of the attempt before the last.
func previousError(in Input) *commonv1.Error {
	if len(in.Attempts) < 2 {
		return nil
	}
	prev := in.Attempts[len(in.Attempts)-2]
	if prev.Verdict == commonv1.Verdict_VERDICT_BLOCKED {
		return blockedErr(prev)
	}
	return prev.Error
}
