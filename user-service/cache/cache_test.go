package cache

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"titanium/user-service/internal/redistest"
)

func newCache(t *testing.T, addr string) *Cache {
	t.Helper()
	c := New(Config{Addr: addr, TTL: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCacheAside(t *testing.T) {
	r := redistest.Start(t)
	c := newCache(t, r.Addr)
	ctx := context.Background()

	_, version, hit := c.Get(ctx, "user:id:1")
	if hit {
		t.Fatal("empty cache: got a hit")
	}
	c.SetIfVersion(ctx, "user:id:1", []byte(`v1`), version)
	val, _, hit := c.Get(ctx, "user:id:1")
	if !hit || string(val) != "v1" {
		t.Fatalf("after set: got %q hit=%v, want v1 hit", val, hit)
	}
	if ttl, err := r.Do("PTTL", "user:id:1"); err != nil || ttl == ":-1\r\n" {
		t.Errorf("entry has no TTL: %q %v", ttl, err)
	}
	c.Invalidate(ctx, "user:id:1")
	if _, _, hit := c.Get(ctx, "user:id:1"); hit {
		t.Error("after invalidate: got a hit")
	}
	st := c.Stats(ctx)
	if st["status"] != "ONLINE" || st["hits"] != int64(1) || st["misses"] != int64(2) {
		t.Errorf("stats: got %v, want ONLINE hits=1 misses=2", st)
	}
}

// TestStaleSetRace is the cache-aside race: a reader misses, reads the old
// row, a writer commits and invalidates, then the reader fills the cache.
// The fill must be refused, or the old row is served until the TTL.
func TestStaleSetRace(t *testing.T) {
	r := redistest.Start(t)
	c := newCache(t, r.Addr)
	ctx := context.Background()

	_, version, _ := c.Get(ctx, "user:id:7") // reader: miss, reads old row from the DB
	c.Invalidate(ctx, "user:id:7")           // writer: commit, then invalidate
	c.SetIfVersion(ctx, "user:id:7", []byte("old"), version)
	if val, _, hit := c.Get(ctx, "user:id:7"); hit {
		t.Fatalf("stale fill was cached: %q", val)
	}
	// A reader that starts after the invalidation fills normally.
	_, version, _ = c.Get(ctx, "user:id:7")
	c.SetIfVersion(ctx, "user:id:7", []byte("new"), version)
	if val, _, hit := c.Get(ctx, "user:id:7"); !hit || string(val) != "new" {
		t.Fatalf("fresh fill: got %q hit=%v, want new", val, hit)
	}
}

// TestRedisDown: killed, the cache misses at once and says OFFLINE; an
// invalidation made meanwhile is replayed before the cache is used again,
// even if Redis comes back with the old value still in it.
func TestRedisDown(t *testing.T) {
	r := redistest.Start(t)
	c := newCache(t, r.Addr)
	ctx := context.Background()

	_, v, _ := c.Get(ctx, "user:id:1")
	c.SetIfVersion(ctx, "user:id:1", []byte("old"), v)

	r.Kill()
	if _, _, hit := c.Get(ctx, "user:id:1"); hit {
		t.Fatal("redis dead: got a hit")
	}
	c.Invalidate(ctx, "user:id:1") // an update committed while Redis is down
	if n := c.Stats(ctx)["pending_invalidations"]; n != int64(1) {
		t.Fatalf("pending invalidations: got %v, want 1", n)
	}
	if !redistest.WaitFor(ctx, 3*time.Second, func() bool { return c.Stats(ctx)["status"] == "OFFLINE" }) {
		t.Fatal("cache status never OFFLINE with redis dead")
	}

	// Redis comes back still holding the old value (a network blip rather
	// than a restart): simulate by restarting and writing it back.
	r.Restart()
	if _, err := r.Do("SET", "user:id:1", "old"); err != nil {
		t.Fatal(err)
	}
	if !redistest.WaitFor(ctx, 10*time.Second, func() bool { return c.Stats(ctx)["status"] == "ONLINE" }) {
		t.Fatal("cache status never ONLINE after restart")
	}
	if val, _, hit := c.Get(ctx, "user:id:1"); hit {
		t.Fatalf("stale value served after recovery: %q", val)
	}
	if n := c.Stats(ctx)["pending_invalidations"]; n != int64(0) {
		t.Errorf("pending invalidations after recovery: got %v, want 0", n)
	}
	_, v, _ = c.Get(ctx, "user:id:1")
	c.SetIfVersion(ctx, "user:id:1", []byte("new"), v)
	if val, _, hit := c.Get(ctx, "user:id:1"); !hit || string(val) != "new" {
		t.Errorf("after recovery: got %q hit=%v, want new hit", val, hit)
	}
}

// TestHungRedisIsSkipped: a Redis that accepts but never answers (SIGSTOP)
// costs one timeout, then the breaker skips it; 200 reads must not each
// wait for the 150 ms timeout (that would be 30 s).
func TestHungRedisIsSkipped(t *testing.T) {
	r := redistest.Start(t)
	c := newCache(t, r.Addr)
	ctx := context.Background()
	c.Get(ctx, "warm") // open pooled connections

	r.Pause()
	defer r.Resume()
	start := time.Now()
	for i := 0; i < 200; i++ {
		if _, _, hit := c.Get(ctx, "user:id:1"); hit {
			t.Fatal("hung redis: got a hit")
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200 reads against a hung redis took %v, want well under 5s (breaker)", d)
	}
	r.Resume()
	if !redistest.WaitFor(ctx, 10*time.Second, func() bool { return c.Stats(ctx)["status"] == "ONLINE" }) {
		t.Fatal("never ONLINE after resume")
	}
	_, v, _ := c.Get(ctx, "user:id:2")
	c.SetIfVersion(ctx, "user:id:2", []byte("x"), v)
	if _, _, hit := c.Get(ctx, "user:id:2"); !hit {
		t.Error("after resume: cache not used again")
	}
}

func TestPendingOverflowPurges(t *testing.T) {
	r := redistest.Start(t)
	c := newCache(t, r.Addr)
	ctx := context.Background()
	_, v, _ := c.Get(ctx, "user:id:1")
	c.SetIfVersion(ctx, "user:id:1", []byte("old"), v)

	r.Kill()
	keys := make([]string, maxPending+1)
	for i := range keys {
		keys[i] = "user:name:u" + string(rune('a'+i%26)) + time.Duration(i).String()
	}
	c.Invalidate(ctx, keys...)
	r.Restart()
	if _, err := r.Do("SET", "user:id:1", "old"); err != nil {
		t.Fatal(err)
	}
	if !redistest.WaitFor(ctx, 10*time.Second, func() bool { return c.Stats(ctx)["status"] == "ONLINE" }) {
		t.Fatal("never ONLINE after restart")
	}
	if _, _, hit := c.Get(ctx, "user:id:1"); hit {
		t.Error("overflowed invalidations did not purge the cache")
	}
}
