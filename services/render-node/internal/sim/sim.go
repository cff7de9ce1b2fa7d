// Package sim is a simulated browser for scale tests: each render waits a
// configured time and returns a fixed page. It is used only by the
// render-node-sim command, never by the real render-node, so one machine
// can run hundreds of "nodes" speaking the real protocols.
package sim

import (
	"context"
	"fmt"
	"html"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/render"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Renderer pretends to render.
type Renderer struct {
	// RenderTime is how long each render takes.
	RenderTime time.Duration
}

// Render waits RenderTime (or until ctx ends) and returns a fixed page.
func (s *Renderer) Render(ctx context.Context, job render.Job) render.Result {
	start := time.Now()
	select {
	case <-ctx.Done():
		kind := commonv1.ErrorKind_ERROR_KIND_CANCELED
		if ctx.Err() == context.DeadlineExceeded {
			kind = commonv1.ErrorKind_ERROR_KIND_TIMEOUT
		}
		return render.Failure(kind, "simulated render ended early", kind == commonv1.ErrorKind_ERROR_KIND_TIMEOUT)
	case <-time.After(s.RenderTime):
	}
	body := fmt.Sprintf("<!DOCTYPE html><html><head><title>Simulated page</title></head><body><h1>Simulated page</h1><p>A simulated render of %s.</p></body></html>", html.EscapeString(job.URL))
	return render.Result{
		Verdict: commonv1.Verdict_VERDICT_COMPLETE,
		Reason:  "simulated render",
		Page:    &commonv1.Page{StatusCode: 200, FinalUrl: job.URL, ContentType: "text/html", Charset: "utf-8", Title: "Simulated page", Body: &commonv1.Page_Text{Text: body}, BodyBytes: int64(len(body))},
		Timings: &commonv1.Timings{Total: durationpb.New(time.Since(start))},
	}
}

// Healthy always answers.
func (s *Renderer) Healthy(time.Duration) error { return nil }

// Restart does nothing.
func (s *Renderer) Restart() error { return nil }

// MemoryBytes is unknown.
func (s *Renderer) MemoryBytes() int64 { return 0 }

// Close does nothing.
func (s *Renderer) Close() {}
