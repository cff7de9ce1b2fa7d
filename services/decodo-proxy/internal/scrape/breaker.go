package scrape

import (
	"sync"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
)

// Breaker stops calling Decodo for a while after a run of failures (5xx,
// network, timeouts), and after Decodo rejects the credentials, so a broken
// provider or account is not hammered. Results say why.
type Breaker struct {
	threshold int
	cooldown  time.Duration
	mu        sync.Mutex
	failures  int
	openUntil time.Time
	authUntil time.Time
}

// NewBreaker opens after threshold consecutive failures, for cooldown.
func NewBreaker(threshold int, cooldown time.Duration) *Breaker {
	return &Breaker{threshold: threshold, cooldown: cooldown}
}

// Allow returns the error to report instead of calling, or nil.
func (b *Breaker) Allow() *commonv1.Error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	switch {
	case now.Before(b.authUntil):
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_CREDENTIALS_REJECTED, Message: "Decodo credentials rejected (not retried until " + b.authUntil.Format(time.RFC3339) + ")"}
	case now.Before(b.openUntil):
		return &commonv1.Error{Kind: commonv1.ErrorKind_ERROR_KIND_CIRCUIT_OPEN, Message: "calls to Decodo are paused after repeated failures (until " + b.openUntil.Format(time.RFC3339) + ")", Retryable: true}
	}
	return nil
}

// Open reports whether calls are paused now.
func (b *Breaker) Open() bool { return b.Allow() != nil }

// Success closes the breaker.
func (b *Breaker) Success() {
	b.mu.Lock()
	b.failures = 0
	b.mu.Unlock()
}

// Failure counts a failure; at the threshold the breaker opens.
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.failures >= b.threshold {
		b.openUntil = time.Now().Add(b.cooldown)
	}
}

// AuthFailure stops calls for the cooldown: new credentials need a restart
// or a new secret anyway.
func (b *Breaker) AuthFailure() {
	b.mu.Lock()
	b.authUntil = time.Now().Add(b.cooldown)
	b.mu.Unlock()
}
