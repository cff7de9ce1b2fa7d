package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
)

// progress draws one status line with a bar and counts per outcome. All
// methods are no-ops on a nil *progress, so callers need no checks.
type progress struct {
	w        io.Writer
	total    int
	finished int
	counts   map[gatewayv1.Outcome]int
	start    time.Time
	last     time.Time
	inline   bool // results are written to the same terminal
}

func newProgress(w io.Writer, total int, inline bool) *progress {
	return &progress{w: w, total: total, counts: map[gatewayv1.Outcome]int{}, start: time.Now(), inline: inline}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) add(o gatewayv1.Outcome) {
	if p == nil {
		return
	}
	p.finished++
	p.counts[o]++
}

func (p *progress) clear() {
	if p == nil {
		return
	}
	fmt.Fprint(p.w, "\r\033[K")
}

func (p *progress) draw() {
	if p == nil {
		return
	}
	// Redraw at most 20 times a second unless results are interleaved.
	if !p.inline && time.Since(p.last) < 50*time.Millisecond && p.finished < p.total {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width * p.finished / max(p.total, 1)
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %d/%d  ok %d  not found %d  blocked %d  failed %d  invalid %d  %.1fs",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.finished, p.total,
		p.counts[gatewayv1.Outcome_OUTCOME_OK], p.counts[gatewayv1.Outcome_OUTCOME_NOT_FOUND],
		p.counts[gatewayv1.Outcome_OUTCOME_BLOCKED], p.counts[gatewayv1.Outcome_OUTCOME_FAILED],
		p.counts[gatewayv1.Outcome_OUTCOME_INVALID], time.Since(p.start).Seconds())
}

func (p *progress) done() {
	if p == nil {
		return
	}
	p.last = time.Time{}
	p.draw()
	fmt.Fprintln(p.w)
}
