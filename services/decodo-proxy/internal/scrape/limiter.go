package scrape

import (
	"context"
	"sync"
	"time"
)

// Limiter is the account-wide limit: at most Rate calls a second (with a
// burst of one second's worth) and MaxConcurrent calls in flight. Callers
// wait in one queue per batch, served round-robin, so one big batch cannot
// starve the others.
type Limiter struct {
	rate     float64
	max      int
	mu       sync.Mutex
	tokens   float64
	last     time.Time
	inflight int
	queues   map[string][]chan struct{}
	ring     []string
	next     int
	kick     chan struct{}
}

// NewLimiter starts a limiter; it runs until ctx ends.
func NewLimiter(ctx context.Context, ratePerSec float64, maxConcurrent int) *Limiter {
	l := &Limiter{rate: ratePerSec, max: maxConcurrent, tokens: ratePerSec, last: time.Now(),
		queues: map[string][]chan struct{}{}, kick: make(chan struct{}, 1)}
	go l.run(ctx)
	return l
}

// Acquire waits for a call permit; call the returned func when the call ends.
func (l *Limiter) Acquire(ctx context.Context, batch string) (func(), error) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	if _, ok := l.queues[batch]; !ok {
		l.ring = append(l.ring, batch)
	}
	l.queues[batch] = append(l.queues[batch], ch)
	l.mu.Unlock()
	l.poke()
	select {
	case <-ch:
		return l.release, nil
	case <-ctx.Done():
		l.mu.Lock()
		granted := l.remove(batch, ch)
		l.mu.Unlock()
		if granted {
			l.release()
		}
		return nil, ctx.Err()
	}
}

// remove drops a waiter; it reports whether the permit was already granted.
func (l *Limiter) remove(batch string, ch chan struct{}) bool {
	q := l.queues[batch]
	for i, c := range q {
		if c == ch {
			l.queues[batch] = append(q[:i:i], q[i+1:]...)
			if len(l.queues[batch]) == 0 {
				l.dropBatch(batch)
			}
			return false
		}
	}
	return true
}

func (l *Limiter) dropBatch(batch string) {
	delete(l.queues, batch)
	for i, b := range l.ring {
		if b == batch {
			l.ring = append(l.ring[:i], l.ring[i+1:]...)
			if l.next > i {
				l.next--
			}
			break
		}
	}
}

func (l *Limiter) release() {
	l.mu.Lock()
	l.inflight--
	l.mu.Unlock()
	l.poke()
}

func (l *Limiter) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Limiter) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := l.grant()
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-timer.C:
		}
	}
}

// grant hands out every permit it can; it returns how long until the next
// token when a caller waits only for one.
func (l *Limiter) grant() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	for len(l.ring) > 0 && l.inflight < l.max {
		if l.tokens < 1 {
			return time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		}
		if l.next >= len(l.ring) {
			l.next = 0
		}
		batch := l.ring[l.next]
		q := l.queues[batch]
		ch := q[0]
		l.queues[batch] = q[1:]
		if len(l.queues[batch]) == 0 {
			l.dropBatch(batch)
		} else {
			l.next++
		}
		l.tokens--
		l.inflight++
		ch <- struct{}{}
	}
	return 0
}
