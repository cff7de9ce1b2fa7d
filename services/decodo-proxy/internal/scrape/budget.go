package scrape

import (
	"sync"
	"time"
)

// Budget is the operator-wide daily cap on Decodo calls (UTC days).
type Budget struct {
	cap    int64 // 0: no cap
	mu     sync.Mutex
	day    string
	calls  int64
	billed int64
}

// NewBudget allows cap calls a day (0: no cap).
func NewBudget(cap int64) *Budget { return &Budget{cap: cap} }

func (b *Budget) roll() {
	if d := time.Now().UTC().Format(time.DateOnly); d != b.day {
		b.day, b.calls, b.billed = d, 0, 0
	}
}

// Take counts one call; false when today's cap is used up.
func (b *Budget) Take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	if b.cap > 0 && b.calls >= b.cap {
		return false
	}
	b.calls++
	return true
}

// Billed counts a call Decodo bills.
func (b *Budget) Billed() {
	b.mu.Lock()
	b.roll()
	b.billed++
	b.mu.Unlock()
}

// Today returns today's calls, billed calls and the cap.
func (b *Budget) Today() (calls, billed, cap int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	return b.calls, b.billed, b.cap
}
