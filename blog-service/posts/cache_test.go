package posts

import (
	"bytes"
	"testing"
)

func page(before int64, limit int) cacheKey { return cacheKey{list: true, id: before, limit: limit} }
func post(id int64) cacheKey                { return cacheKey{id: id} }

// put adds body under k in the current generation, in an array of exactly
// its length.
func put(c *Cache, k cacheKey, body string) {
	_, gen, _ := c.lookup(k)
	b := make([]byte, len(body))
	copy(b, body)
	c.add(k, gen, b)
}

func has(c *Cache, k cacheKey) bool {
	_, _, ok := c.lookup(k)
	return ok
}

func TestCacheBoundedByEntries(t *testing.T) {
	c := NewCache(3, 1<<20)
	for id := int64(1); id <= 3; id++ {
		put(c, post(id), "x")
	}
	has(c, post(1)) // 1 is now the most recently used; 2 the least
	put(c, post(4), "x")
	if n, _ := c.Len(); n != 3 {
		t.Fatalf("entries: got %d, want 3", n)
	}
	if has(c, post(2)) || !has(c, post(1)) || !has(c, post(3)) || !has(c, post(4)) {
		t.Error("the least recently used entry (2) should have gone, and only it")
	}
}

func TestCacheBoundedByBytes(t *testing.T) {
	body := string(bytes.Repeat([]byte("b"), 1000))
	per := len(body) + entryOverhead
	c := NewCache(1000, 3*per)
	for id := int64(1); id <= 10; id++ {
		put(c, post(id), body)
		if n, size := c.Len(); size > 3*per || n > 3 {
			t.Fatalf("after %d adds: %d entries, %d bytes, want at most 3 and %d", id, n, size, 3*per)
		}
	}
	if n, size := c.Len(); n != 3 || size != 3*per {
		t.Errorf("got %d entries of %d bytes, want 3 of %d", n, size, 3*per)
	}
	// A body over the whole bound is not kept, and evicts nothing.
	put(c, post(99), string(bytes.Repeat([]byte("b"), 3*per)))
	if has(c, post(99)) || !has(c, post(10)) {
		t.Error("an oversized body was kept or evicted the others")
	}
	// A body's spare capacity is memory too.
	_, gen, _ := c.lookup(post(50))
	c.add(post(50), gen, make([]byte, 10, len(body)))
	if n, size := c.Len(); n != 3 || size != 3*per {
		t.Errorf("after a 10-byte body of capacity %d: %d entries, %d bytes, want 3 and %d", len(body), n, size, 3*per)
	}
	// Replacing an entry counts it once.
	put(c, post(10), "short")
	if _, size := c.Len(); size != 2*per+len("short")+entryOverhead {
		t.Errorf("after replacing an entry: %d bytes, want %d", size, 2*per+len("short")+entryOverhead)
	}
}

func TestCacheDisabled(t *testing.T) {
	for _, bounds := range [][2]int{{0, 1 << 20}, {100, 0}, {-1, -1}} {
		if c := NewCache(bounds[0], bounds[1]); c != nil {
			t.Errorf("NewCache(%d, %d): got a cache, want nil (disabled)", bounds[0], bounds[1])
		}
	}
	var c *Cache // every method of the nil cache is a no-op
	put(c, post(1), "x")
	c.changed(1)
	if has(c, post(1)) {
		t.Error("the nil cache returned an entry")
	}
	if n, size := c.Len(); n != 0 || size != 0 {
		t.Errorf("nil cache Len: %d, %d", n, size)
	}
}

// TestCacheChangedDropsWhatAWriteChanges: a write at id changes that post
// and the pages that start above it, nothing else.
func TestCacheChangedDropsWhatAWriteChanges(t *testing.T) {
	c := NewCache(100, 1<<20)
	keys := []cacheKey{page(0, 20), page(0, 5), page(51, 20), page(21, 20), page(20, 20), page(10, 20), post(20), post(5), post(50)}
	for _, k := range keys {
		put(c, k, "x")
	}
	c.changed(20)
	want := map[cacheKey]bool{page(20, 20): true, page(10, 20): true, post(5): true, post(50): true}
	for _, k := range keys {
		if got := has(c, k); got != want[k] {
			t.Errorf("%+v after a write at 20: cached %v, want %v", k, got, want[k])
		}
	}
	c.changed(0) // a create whose id is unknown: every page goes
	if has(c, page(10, 20)) || has(c, page(20, 20)) || !has(c, post(5)) {
		t.Error("changed(0) should drop every page and no post")
	}
}

// TestCacheStaleReadNotKept: what a reader read before a write is not kept
// when it arrives after the write's invalidation, even for a key the write
// did not drop.
func TestCacheStaleReadNotKept(t *testing.T) {
	c := NewCache(100, 1<<20)
	_, gen, ok := c.lookup(post(7))
	if ok {
		t.Fatal("empty cache hit")
	}
	c.changed(7)
	c.add(post(7), gen, []byte("old"))
	if has(c, post(7)) {
		t.Fatal("a read from before the write was cached after it")
	}
	_, gen, _ = c.lookup(page(0, 20))
	c.changed(1000)
	c.add(page(0, 20), gen, []byte("old page"))
	if has(c, page(0, 20)) {
		t.Fatal("a page read before a create was cached after it")
	}
	// A read that began after the write is kept.
	_, gen, _ = c.lookup(post(7))
	c.add(post(7), gen, []byte("new"))
	if body, _, ok := c.lookup(post(7)); !ok || string(body) != "new" {
		t.Errorf("a read after the write: got %q %v, want it cached", body, ok)
	}
}
