package throttle

import (
	"strconv"
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	l := New(60, 3, 100) // 1 per second after a burst of 3
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Take("a", now); !ok {
			t.Fatalf("take %d of the burst: refused", i+1)
		}
	}
	ok, wait := l.Take("a", now)
	if ok {
		t.Fatal("4th take within the burst: allowed, want refused")
	}
	if wait <= 0 || wait > time.Second {
		t.Errorf("retry after: got %v, want (0, 1s]", wait)
	}
	if ok, _ := l.Take("b", now); !ok {
		t.Error("another key is limited by a's bucket")
	}
	if ok, _ := l.Take("a", now.Add(wait)); !ok {
		t.Errorf("after the advertised %v: still refused", wait)
	}
	if ok, _ := l.Take("a", now.Add(wait)); ok {
		t.Error("second take after one refill: allowed")
	}
}

func TestRefund(t *testing.T) {
	l := New(1, 2, 100)
	now := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		if ok, _ := l.Take("a", now); !ok {
			t.Fatalf("take %d with refunds: refused", i)
		}
		l.Refund("a", now)
	}
	l.Refund("a", now) // refunds never exceed the burst
	l.Take("a", now)
	l.Take("a", now)
	if ok, _ := l.Take("a", now); ok {
		t.Error("refund above burst: third take allowed")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	const maxKeys = 1000
	l := New(60, 5, maxKeys)
	now := time.Unix(1000, 0)
	for i := 0; i < 50*maxKeys; i++ {
		l.Take(strconv.Itoa(i), now)
		if n := l.Len(); n > maxKeys {
			t.Fatalf("after %d keys: tracking %d, want <= %d", i+1, n, maxKeys)
		}
	}
	// Refilled buckets are swept on the next pass.
	later := now.Add(time.Hour)
	l.Take("fresh", later)
	if n := l.Len(); n != 1 {
		t.Errorf("after a sweep of refilled buckets: %d keys, want 1", n)
	}
}

func TestThrottledKeySurvivesSweeps(t *testing.T) {
	l := New(1, 2, 100) // one per minute, burst 2
	now := time.Unix(1000, 0)
	l.Take("attacker", now)
	l.Take("attacker", now)
	later := now.Add(sweepEvery + time.Second)
	l.Take("x", later) // triggers a sweep; attacker has refilled one token of two
	if ok, _ := l.Take("attacker", later); !ok {
		t.Fatal("one token refilled: refused")
	}
	if ok, _ := l.Take("attacker", later); ok {
		t.Error("sweep forgot a key that was not fully refilled")
	}
}
