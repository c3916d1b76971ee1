package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker back-off bounds: the first failure skips Redis for minBackoff,
// each further failed probe doubles it up to maxBackoff.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// breaker is a circuit breaker: closed (calls go through), open (calls are
// skipped until openUntil), then half-open (one probe call; its result
// closes or reopens the circuit).
type breaker struct {
	open atomic.Bool // fast path: closed circuits take no lock

	mu        sync.Mutex
	openUntil time.Time
	backoff   time.Duration
	probing   bool
}

// allow reports whether a call may go to Redis now.
func (b *breaker) allow(now time.Time) bool {
	if !b.open.Load() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) success() {
	if !b.open.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open.Store(false)
	b.backoff = 0
	b.probing = false
}

// failure opens the circuit; it reports whether it was closed before.
func (b *breaker) failure(now time.Time) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	opened = !b.open.Load()
	switch {
	case b.backoff == 0:
		b.backoff = minBackoff
	case b.probing || opened:
		b.backoff = min(2*b.backoff, maxBackoff)
	}
	b.openUntil = now.Add(b.backoff)
	b.probing = false
	b.open.Store(true)
	return opened
}

func (b *breaker) currentBackoff() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backoff
}

// release gives back a probe slot taken by allow without a Redis call.
func (b *breaker) release() {
	if !b.open.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}
