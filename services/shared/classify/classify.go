// Package classify judges a fetched response: is it the real page, an app
// shell that needs JavaScript, a bot challenge, a not-found, or a failure?
// It does no I/O; the static, render and Decodo tiers all call it, so a
// challenge page is "blocked" whichever tier fetched it.
//
// The rules, in order:
//  1. 404 and 410 are not found.
//  2. A challenge marker (a bot-protection script, a challenge title) on a
//     short page, or any 403/429, is blocked; so is a 503 that carries a
//     challenge marker.
//  3. Other 5xx fail and may be retried; other 4xx fail for good.
//  4. An HTML page with almost no visible text once scripts, styles and
//     noscript are stripped needs JavaScript when it also has scripts, an
//     empty mount node (#root, #app, #__next, ...), a noscript asking to
//     enable JavaScript, or framework markers.
//  5. Everything else is complete.
package classify

import (
	"fmt"
	"strings"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
)

// Thresholds on visible text, in characters (whitespace collapsed).
const (
	// A page with scripts and less visible text than this is an app shell.
	shellTextWithScripts = 200
	// An empty mount node with less visible text than this is an app shell.
	shellTextWithMount = 500
	// A noscript asking for JavaScript with less text than this.
	shellTextWithNoscript = 1000
	// Challenge pages are short: markers only count below this much text
	// (or with a 403, 429 or 503 status).
	challengeMaxText = 3000
)

// Input is one response to classify.
type Input struct {
	// StatusCode is the final HTTP status (after redirects).
	StatusCode int
	// ContentType is the media type, lowercased, without parameters.
	ContentType string
	// Body is the body decoded to UTF-8; empty for binary bodies.
	Body string
}

// Result is the verdict with its reason.
type Result struct {
	Verdict commonv1.Verdict
	// Reason is a short explanation for logs and results.
	Reason string
	// Retryable is true for failed verdicts a retry may fix (5xx).
	Retryable bool
	// Title is the HTML <title>, whitespace collapsed ("" if none).
	Title string
}

// IsHTML reports whether a media type (or, when empty, the body) is HTML.
func IsHTML(contentType string, body string) bool {
	switch contentType {
	case "text/html", "application/xhtml+xml":
		return true
	case "":
		head := strings.ToLower(strings.TrimSpace(body[:min(len(body), 512)]))
		return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html")
	}
	return false
}

// Classify returns the verdict for in.
func Classify(in Input) Result {
	var doc document
	html := IsHTML(in.ContentType, in.Body)
	if html {
		doc = analyze(in.Body)
	}
	r := Result{Title: doc.title}
	status := in.StatusCode
	switch {
	case status == 404 || status == 410:
		r.Verdict, r.Reason = commonv1.Verdict_VERDICT_NOT_FOUND, fmt.Sprintf("status %d", status)
		return r
	}
	// Challenge pages are short; long pages are not searched (and an article
	// that mentions "captcha" is not taken for one).
	if doc.textLen < challengeMaxText || status == 403 || status == 429 || status == 503 {
		if marker := challengeMarker(in.Body, doc, html); marker != "" {
			r.Verdict, r.Reason = commonv1.Verdict_VERDICT_BLOCKED, "challenge marker: "+marker
			return r
		}
	}
	switch {
	case status == 403 || status == 429:
		r.Verdict, r.Reason = commonv1.Verdict_VERDICT_BLOCKED, fmt.Sprintf("status %d", status)
		return r
	case status >= 500:
		r.Verdict, r.Reason, r.Retryable = commonv1.Verdict_VERDICT_FAILED, fmt.Sprintf("status %d", status), true
		return r
	case status >= 400:
		r.Verdict, r.Reason = commonv1.Verdict_VERDICT_FAILED, fmt.Sprintf("status %d", status)
		return r
	}
	if html {
		if reason := shellReason(doc); reason != "" {
			r.Verdict, r.Reason = commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT, reason
			return r
		}
	}
	r.Verdict = commonv1.Verdict_VERDICT_COMPLETE
	if html {
		r.Reason = fmt.Sprintf("%d chars of visible text", doc.textLen)
	} else {
		r.Reason = "non-HTML body"
	}
	return r
}

func shellReason(doc document) string {
	switch {
	case doc.emptyMount != "" && doc.textLen < shellTextWithMount:
		return fmt.Sprintf("empty mount node #%s, %d chars of visible text", doc.emptyMount, doc.textLen)
	case doc.noscriptAsksJS && doc.textLen < shellTextWithNoscript:
		return fmt.Sprintf("noscript asks to enable JavaScript, %d chars of visible text", doc.textLen)
	case doc.scripts > 0 && doc.textLen < shellTextWithScripts:
		reason := fmt.Sprintf("%d chars of visible text with %d scripts", doc.textLen, doc.scripts)
		if doc.framework != "" {
			reason += ", framework " + doc.framework
		}
		return reason
	}
	return ""
}

// Markers of bot-protection pages, searched in the lowercased HTML.
var challengeBodyMarkers = []string{
	"/cdn-cgi/challenge-platform/",
	"cf-chl-",
	"_cf_chl_opt",
	"px-captcha",
	"_incapsula_resource",
	"captcha-delivery.com",
	"ddos-guard",
	"g-recaptcha",
	"h-captcha",
	"cf-turnstile",
}

// Markers of bot-protection pages, searched in the lowercased title.
var challengeTitleMarkers = []string{
	"just a moment",
	"attention required",
	"access denied",
	"are you a robot",
	"security check",
	"pardon our interruption",
	"verify you are human",
	"checking your browser",
	"request unsuccessful",
}

func challengeMarker(body string, doc document, html bool) string {
	title := strings.ToLower(doc.title)
	for _, m := range challengeTitleMarkers {
		if strings.Contains(title, m) {
			return "title " + m
		}
	}
	if !html {
		return ""
	}
	lower := strings.ToLower(body)
	for _, m := range challengeBodyMarkers {
		if strings.Contains(lower, m) {
			return m
		}
	}
	return ""
}
