package pool

import (
	"container/heap"
	"time"
)

// deadlineKind says what a deadline guards.
type deadlineKind int

const (
	nodeHeartbeat deadlineKind = iota // a node must report by then
	leaseOrphan                       // a lease's gateway must reconnect by then
	coolingEnd                        // a node's slots become grantable again
)

type deadline struct {
	at   time.Time
	kind deadlineKind
	node *node
	l    *lease
}

// deadlineHeap is a timer heap the coordinator owns (lease expiry is a
// sweep instead: a heap entry per grant would grow without bound at tens of
// thousands of grants a second); a deadline that was
// moved or no longer applies is checked and skipped when it pops (so
// re-arming is one push, never a search).
type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

func (h *deadlineHeap) add(d deadline) { heap.Push(h, d) }

// due pops every deadline at or before now.
func (h *deadlineHeap) due(now time.Time) []deadline {
	var out []deadline
	for h.Len() > 0 && !(*h)[0].at.After(now) {
		out = append(out, heap.Pop(h).(deadline))
	}
	return out
}
