// Package memo shares one expensive answer among many callers: a value and
// its error are computed by one caller at a time and served again for a
// time to live. Callers that arrive while a computation runs wait for it and
// take its answer, so a burst of callers costs one computation however many
// there are.
package memo

import (
	"sync"
	"sync/atomic"
	"time"
)

// Value is a computed T cached for a TTL. The zero Value is not usable;
// make one with New. It is safe for concurrent use.
type Value[T any] struct {
	ttl     time.Duration
	compute func() (T, error)

	waiting atomic.Int32 // callers inside Get, for tests

	mu  sync.Mutex
	at  time.Time // when the cached answer was made; zero before the first
	val T
	err error
}

// New returns a Value that calls compute at most once per ttl. compute must
// bound its own run time (it holds up every caller waiting for it) and must
// not depend on any one caller's context: its answer is shared.
func New[T any](ttl time.Duration, compute func() (T, error)) *Value[T] {
	return &Value[T]{ttl: ttl, compute: compute}
}

// Get returns the cached answer while it is younger than the TTL, or one
// made after this call began (by a computation it waited for); otherwise it
// computes a new one.
func (v *Value[T]) Get() (T, error) {
	arrived := time.Now()
	v.waiting.Add(1)
	defer v.waiting.Add(-1)
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.at.IsZero() && (v.at.After(arrived) || time.Since(v.at) < v.ttl) {
		return v.val, v.err
	}
	v.val, v.err = v.compute()
	v.at = time.Now()
	return v.val, v.err
}
