package memo

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestValueCachesForTTL(t *testing.T) {
	var calls atomic.Int64
	fail := errors.New("down")
	v := New(50*time.Millisecond, func() (int64, error) {
		n := calls.Add(1)
		if n == 2 {
			return n, fail
		}
		return n, nil
	})
	if got, err := v.Get(); got != 1 || err != nil {
		t.Fatalf("first Get: %d %v, want 1 <nil>", got, err)
	}
	if got, err := v.Get(); got != 1 || err != nil || calls.Load() != 1 {
		t.Fatalf("Get within the TTL: %d %v after %d computations, want the cached 1 <nil>", got, err, calls.Load())
	}
	// Past the TTL the value is computed again; the second computation fails.
	deadline := time.Now().Add(5 * time.Second)
	got := int64(1)
	var err error
	for got == 1 && time.Now().Before(deadline) {
		got, err = v.Get()
	}
	if got != 2 || !errors.Is(err, fail) {
		t.Fatalf("after the TTL: %d %v, want 2 and the error", got, err)
	}
	// The error is cached too: a failing dependency is not asked again at once.
	if got, err := v.Get(); got != 2 || !errors.Is(err, fail) || calls.Load() != 2 {
		t.Fatalf("Get right after a failure: %d %v after %d computations, want the cached failure", got, err, calls.Load())
	}
}

// TestValueSharesOneComputation: callers that arrive while a computation
// runs wait for it and take its answer, even with a TTL of zero.
func TestValueSharesOneComputation(t *testing.T) {
	var calls atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	v := New(0, func() (int64, error) {
		n := calls.Add(1)
		if n == 1 {
			close(started)
			<-release
		}
		return n, nil
	})
	var wg sync.WaitGroup
	const callers = 20
	answers := make(chan int64, callers+1)
	wg.Go(func() { n, _ := v.Get(); answers <- n })
	<-started
	for range callers {
		wg.Go(func() { n, _ := v.Get(); answers <- n })
	}
	// Every caller has entered Get (and taken its arrival time) before the
	// computation in progress is let finish.
	deadline := time.Now().Add(5 * time.Second)
	for v.waiting.Load() < callers+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d callers entered Get", v.waiting.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(answers)
	for n := range answers {
		if n != 1 {
			t.Errorf("a caller got %d: it ran its own computation instead of sharing the one in progress", n)
		}
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("%d computations for %d concurrent callers, want 1", c, callers+1)
	}
	// A caller that comes after the shared answer, with a TTL of zero, gets
	// a fresh one.
	if n, _ := v.Get(); n != 2 {
		t.Errorf("a later Get with TTL 0: got %d, want a new computation (2)", n)
	}
}
