// Package render defines what a render node asks of a browser: one job in,
// one classified result out. The real browser (package browser) and the
// simulated one (package sim) both implement Renderer.
package render

import (
	"context"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
)

// Job is one page to render.
type Job struct {
	URL     string
	Options *commonv1.RenderOptions
	Headers []*commonv1.Header
	MaxBody int64
	Timeout time.Duration // the whole render, tab included
	// Batch is the batch the page belongs to: pages of one batch share a
	// browser context (cookies, storage, cache), other batches never do.
	// Empty: a context for this page alone.
	Batch string
}

// Result is a rendered, classified page or a typed failure.
type Result struct {
	Verdict commonv1.Verdict
	Reason  string
	Page    *commonv1.Page
	Error   *commonv1.Error
	Timings *commonv1.Timings
	// BrowserDied is set when the browser itself failed during the render:
	// the node restarts it.
	BrowserDied bool
}

// Renderer renders pages. Render must return by job.Timeout and close
// everything it opened for the job.
type Renderer interface {
	Render(ctx context.Context, job Job) Result
	// Healthy fails when the browser cannot answer within timeout.
	Healthy(timeout time.Duration) error
	// Restart replaces the browser; renders in flight fail.
	Restart() error
	// MemoryBytes is the browser's process-tree PSS (0 if unknown).
	MemoryBytes() int64
	Close()
}

// Failure builds a failed result.
func Failure(kind commonv1.ErrorKind, msg string, retryable bool) Result {
	return Result{Verdict: commonv1.Verdict_VERDICT_FAILED, Reason: msg, Error: &commonv1.Error{Kind: kind, Message: msg, Retryable: retryable}}
}
