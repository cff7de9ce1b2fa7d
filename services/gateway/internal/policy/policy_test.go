package policy_test

import (
	"testing"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/policy"
)

const (
	auto       = gatewayv1.Mode_MODE_AUTO
	staticOnly = gatewayv1.Mode_MODE_STATIC_ONLY
	forceRend  = gatewayv1.Mode_MODE_FORCE_RENDER
	forceDec   = gatewayv1.Mode_MODE_FORCE_DECODO

	none   = gatewayv1.Tier_TIER_UNSPECIFIED
	static = gatewayv1.Tier_TIER_STATIC
	render = gatewayv1.Tier_TIER_RENDER
	decodo = gatewayv1.Tier_TIER_DECODO

	complete = commonv1.Verdict_VERDICT_COMPLETE
	needsJS  = commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT
	blocked  = commonv1.Verdict_VERDICT_BLOCKED
	notFound = commonv1.Verdict_VERDICT_NOT_FOUND
	failed   = commonv1.Verdict_VERDICT_FAILED

	ok        = gatewayv1.Outcome_OUTCOME_OK
	oNotFound = gatewayv1.Outcome_OUTCOME_NOT_FOUND
	oBlocked  = gatewayv1.Outcome_OUTCOME_BLOCKED
	oFailed   = gatewayv1.Outcome_OUTCOME_FAILED
	oInvalid  = gatewayv1.Outcome_OUTCOME_INVALID
	pending   = gatewayv1.Outcome_OUTCOME_UNSPECIFIED
)

func a(t gatewayv1.Tier, v commonv1.Verdict) policy.Attempt {
	return policy.Attempt{Tier: t, Verdict: v}
}

func fail(t gatewayv1.Tier, kind commonv1.ErrorKind, retryable bool) policy.Attempt {
	return policy.Attempt{Tier: t, Verdict: failed, Error: &commonv1.Error{Kind: kind, Message: kind.String()}, Retryable: retryable}
}

var (
	unavailable = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE, Message: "render tier unavailable"}
	noBudget    = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED, Message: "budget exhausted"}
	notConf     = &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_NOT_CONFIGURED, Message: "Decodo not configured"}

	timeout  = commonv1.ErrorKind_ERROR_KIND_TIMEOUT
	status   = commonv1.ErrorKind_ERROR_KIND_HTTP_STATUS
	crashed  = commonv1.ErrorKind_ERROR_KIND_RENDER_CRASHED
	ssrf     = commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS
	invalid  = commonv1.ErrorKind_ERROR_KIND_INVALID_URL
	tierDown = commonv1.ErrorKind_ERROR_KIND_TIER_UNAVAILABLE
)

func TestNext(t *testing.T) {
	cases := []struct {
		name    string
		in      policy.Input
		next    gatewayv1.Tier
		outcome gatewayv1.Outcome
		errKind commonv1.ErrorKind
	}{
		// Where a URL starts.
		{"auto starts static", policy.Input{Mode: auto}, static, pending, 0},
		{"unspecified mode is auto", policy.Input{}, static, pending, 0},
		{"learned host starts on render", policy.Input{Mode: auto, PreferRender: true}, render, pending, 0},
		{"learned host, render down: static", policy.Input{Mode: auto, PreferRender: true, Render: unavailable}, static, pending, 0},
		{"static only starts static", policy.Input{Mode: staticOnly}, static, pending, 0},
		{"force render starts render", policy.Input{Mode: forceRend}, render, pending, 0},
		{"force render without render tier", policy.Input{Mode: forceRend, Render: unavailable}, none, oFailed, tierDown},
		{"force decodo starts decodo", policy.Input{Mode: forceDec}, decodo, pending, 0},
		{"force decodo not configured", policy.Input{Mode: forceDec, Decodo: notConf}, none, oFailed, commonv1.ErrorKind_ERROR_KIND_NOT_CONFIGURED},

		// Final answers.
		{"complete is final", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, complete)}}, none, ok, 0},
		{"404 is final, never Decodo", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, notFound)}}, none, oNotFound, status},
		{"404 after render is final", policy.Input{Mode: forceRend, Attempts: []policy.Attempt{a(render, notFound)}}, none, oNotFound, status},
		{"invalid URL is final", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, invalid, false)}}, none, oInvalid, invalid},
		{"SSRF refusal is final", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, ssrf, false)}}, none, oFailed, ssrf},

		// Needs JavaScript.
		{"app shell goes to render", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, needsJS)}}, render, pending, 0},
		{"app shell, render down: tier unavailable", policy.Input{Mode: auto, Render: unavailable, Attempts: []policy.Attempt{a(static, needsJS)}}, none, oFailed, tierDown},
		{"static only returns the shell", policy.Input{Mode: staticOnly, Attempts: []policy.Attempt{a(static, needsJS)}}, none, ok, 0},
		{"rendered shell is what the site serves", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, needsJS), a(render, needsJS)}}, none, ok, 0},

		// Blocked.
		{"blocked static goes to render", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked)}}, render, pending, 0},
		{"blocked static, render down", policy.Input{Mode: auto, Render: unavailable, Attempts: []policy.Attempt{a(static, blocked)}}, none, oBlocked, tierDown},
		{"blocked render goes to decodo", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked), a(render, blocked)}}, decodo, pending, 0},
		{"blocked render, budget exhausted", policy.Input{Mode: auto, Decodo: noBudget, Attempts: []policy.Attempt{a(static, blocked), a(render, blocked)}}, none, oBlocked, commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED},
		{"force render blocked goes to decodo", policy.Input{Mode: forceRend, Attempts: []policy.Attempt{a(render, blocked)}}, decodo, pending, 0},
		{"blocked by decodo too", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked), a(render, blocked), a(decodo, blocked)}}, none, oBlocked, status},
		{"static only blocked is final", policy.Input{Mode: staticOnly, Attempts: []policy.Attempt{a(static, blocked)}}, none, oBlocked, status},
		{"force decodo blocked is final", policy.Input{Mode: forceDec, Attempts: []policy.Attempt{a(decodo, blocked)}}, none, oBlocked, status},

		// Failures and retries.
		{"static timeout retried once", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, timeout, true)}}, static, pending, 0},
		{"static timeout twice is final", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, timeout, true), fail(static, timeout, true)}}, none, oFailed, timeout},
		{"static 5xx twice goes to render", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, status, true), fail(static, status, true)}}, render, pending, 0},
		{"static tier down goes to render", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, tierDown, true), fail(static, tierDown, true)}}, render, pending, 0},
		{"static 5xx twice, static only", policy.Input{Mode: staticOnly, Attempts: []policy.Attempt{fail(static, status, true), fail(static, status, true)}}, none, oFailed, status},
		{"static 5xx twice, render down", policy.Input{Mode: auto, Render: unavailable, Attempts: []policy.Attempt{fail(static, status, true), fail(static, status, true)}}, none, oFailed, status},
		{"static 4xx is final", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, status, false)}}, none, oFailed, status},
		{"render crash retried on another node", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, needsJS), fail(render, crashed, true)}}, render, pending, 0},
		{"render crash three times is a typed error", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, needsJS), fail(render, crashed, true), fail(render, crashed, true), fail(render, crashed, true)}}, none, oFailed, crashed},
		{"render timeouts go to decodo", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked), fail(render, timeout, true), fail(render, timeout, true), fail(render, timeout, true)}}, decodo, pending, 0},
		{"decodo failure after a block stays blocked", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked), a(render, blocked), fail(decodo, commonv1.ErrorKind_ERROR_KIND_UPSTREAM, true)}}, none, oBlocked, commonv1.ErrorKind_ERROR_KIND_UPSTREAM},
		{"decodo credentials rejected after a block", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked), a(render, blocked), fail(decodo, commonv1.ErrorKind_ERROR_KIND_CREDENTIALS_REJECTED, false)}}, none, oBlocked, commonv1.ErrorKind_ERROR_KIND_CREDENTIALS_REJECTED},
		{"render 5xx is not rendered again: decodo", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, status, true), fail(static, status, true), fail(render, status, true)}}, decodo, pending, 0},
		{"render 5xx, decodo not configured: the site's error", policy.Input{Mode: auto, Decodo: notConf, Attempts: []policy.Attempt{fail(static, status, true), fail(static, status, true), fail(render, status, true)}}, none, oFailed, status},
		{"decodo down after render 5xx keeps the site's error", policy.Input{Mode: auto, Attempts: []policy.Attempt{fail(static, status, true), fail(static, status, true), fail(render, status, true), fail(decodo, tierDown, false)}}, none, oFailed, status},
		{"decodo down after a block: blocked, with the block's error", policy.Input{Mode: auto, Attempts: []policy.Attempt{a(static, blocked), a(render, blocked), fail(decodo, tierDown, false)}}, none, oBlocked, status},
		{"force decodo failure", policy.Input{Mode: forceDec, Attempts: []policy.Attempt{fail(decodo, commonv1.ErrorKind_ERROR_KIND_UPSTREAM, true)}}, none, oFailed, commonv1.ErrorKind_ERROR_KIND_UPSTREAM},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := policy.Next(c.in)
			if d.Next != c.next || d.Outcome != c.outcome || d.Error.GetKind() != c.errKind {
				t.Errorf("got next=%v outcome=%v err=%v (%s); want next=%v outcome=%v err=%v", d.Next, d.Outcome, d.Error.GetKind(), d.Reason, c.next, c.outcome, c.errKind)
			}
			if d.Reason == "" {
				t.Error("no reason")
			}
			if d.Next == none && d.Outcome != ok && d.Error.GetMessage() == "" {
				t.Error("a final non-OK decision without an error message")
			}
		})
	}
}
