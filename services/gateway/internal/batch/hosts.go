package batch

import (
	"sync"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/gateway/internal/policy"
)

// recheckEvery: one in this many URLs of a host learned to need rendering
// still tries the static tier, so a host that stops needing JavaScript is
// noticed.
const recheckEvery = 10

// A host is learned once minShells of its pages rendered fine where the
// static fetch said "needs JavaScript", and at least shellShare of its
// static answers were such shells: a site that mixes articles and app
// shells keeps its static fetches.
const (
	minShells  = 3
	shellShare = 0.9
)

// hostMemory learns, within one batch, which hosts serve app shells, so
// that later URLs of such a host skip the static fetch. It never learns
// from failed or blocked attempts.
type hostMemory struct {
	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	shells   int // static said "needs JavaScript" and the render was complete
	complete int // static said complete
	uses     int
}

func (st *hostState) needsRender() bool {
	return st.shells >= minShells && float64(st.shells) >= shellShare*float64(st.shells+st.complete)
}

func newHostMemory() *hostMemory { return &hostMemory{hosts: map[string]*hostState{}} }

func (h *hostMemory) preferRender(host string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.hosts[host]
	if st == nil || !st.needsRender() {
		return false
	}
	st.uses++
	return st.uses%recheckEvery != 0
}

func (h *hostMemory) learn(host string, attempts []policy.Attempt) {
	shell, rendered, staticComplete := false, false, false
	for _, a := range attempts {
		switch {
		case a.Tier == gatewayv1.Tier_TIER_STATIC && a.Verdict == commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT:
			shell = true
		case a.Tier == gatewayv1.Tier_TIER_STATIC && a.Verdict == commonv1.Verdict_VERDICT_COMPLETE:
			staticComplete = true
		case a.Tier == gatewayv1.Tier_TIER_RENDER && a.Verdict == commonv1.Verdict_VERDICT_COMPLETE:
			rendered = true
		}
	}
	if !(shell && rendered) && !staticComplete {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.hosts[host]
	if st == nil {
		st = &hostState{}
		h.hosts[host] = st
	}
	switch {
	case staticComplete:
		st.complete++
	case shell && rendered:
		st.shells++
	}
}
