// Package throttle is a token-bucket rate limiter keyed by string (a client
// address, an account name), with bounded memory: a bucket that has refilled
// completely is the same as no bucket and is swept away, and when the table
// is full anyway, arbitrary entries are evicted.
package throttle

import (
	"math"
	"sync"
	"time"
)

// Limiter allows each key burst events at once and rate events per second
// after that.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// sweepEvery bounds how stale the table may grow between sweeps.
const sweepEvery = time.Minute

// New returns a limiter. perMinute is the sustained rate, burst the bucket
// size, maxKeys the most keys tracked at once.
func New(perMinute, burst, maxKeys int) *Limiter {
	return &Limiter{
		rate:    float64(perMinute) / 60,
		burst:   float64(max(1, burst)),
		maxKeys: max(16, maxKeys),
		buckets: map[string]*bucket{},
	}
}

// refill brings b up to now.
func (l *Limiter) refill(b *bucket, now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
}

// Take takes a token for key. When there is none, it returns false and how
// long until there is one.
func (l *Limiter) Take(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		l.makeRoom(now)
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate <= 0 {
		return false, time.Hour
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, max(wait, time.Second/100)
}

// Refund gives back a token taken by Take, e.g. when the attempt turned out
// not to count (a successful login does not count against its account).
func (l *Limiter) Refund(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[key]; ok {
		l.refill(b, now)
		b.tokens = math.Min(l.burst, b.tokens+1)
	}
}

// Len is the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// makeRoom keeps the table bounded: every sweepEvery, and whenever it is
// full, full buckets (indistinguishable from new ones) are dropped; if it is
// still full, arbitrary entries go until it is at 90%. Evicting a throttled
// key forgives it early; a client would need maxKeys other keys in play to
// force that, and the per-address limit makes that expensive.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.maxKeys && now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	target := l.maxKeys * 9 / 10
	for k := range l.buckets {
		if len(l.buckets) <= target {
			break
		}
		delete(l.buckets, k)
	}
}
