package posts

import (
	"container/list"
	"sync"
)

// Cache keeps encoded read results of this process: pages of the list and
// single posts, as the bytes the HTTP layer sends. blog-service is the only
// writer of its database, and every write goes through Service, which drops
// the entries a write can change once the store has committed it; so the
// cache is exactly coherent without a time to live.
//
// A read that began before a write must not put what it read into the cache
// after that write's invalidation: every write bumps a generation counter,
// a reader notes the generation before it reads the store, and its result is
// kept only if the generation is still the same (checked under the lock).
//
// Its memory is bounded by a number of entries and of bytes, the least
// recently used entries going first. A nil *Cache caches nothing. It is
// safe for concurrent use.
type Cache struct {
	maxEntries int
	maxBytes   int

	mu      sync.Mutex
	gen     uint64
	bytes   int
	entries map[cacheKey]*list.Element // → *cacheEntry
	pages   map[cacheKey]*list.Element // the list pages among entries
	lru     list.List                  // front: most recently used
}

// cacheKey names a read: one post (list false, id) or one page of the list
// (list true, the page's "before" cursor and its limit).
type cacheKey struct {
	list  bool
	id    int64 // the post, or the page's before (0: from the newest)
	limit int
}

type cacheEntry struct {
	key  cacheKey
	body []byte
}

// entryOverhead is what an entry costs besides its bytes (map slot, list
// element, entry), counted against the byte bound.
const entryOverhead = 128

// NewCache returns a cache of at most maxEntries entries and maxBytes bytes,
// or nil (no caching) when either is 0 or less.
func NewCache(maxEntries, maxBytes int) *Cache {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil
	}
	return &Cache{maxEntries: maxEntries, maxBytes: maxBytes, entries: make(map[cacheKey]*list.Element), pages: make(map[cacheKey]*list.Element)}
}

// Len reports the entries and the bytes (with overheads) held.
func (c *Cache) Len() (entries, bytes int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}

// lookup returns the cached body of k, or the generation a reader must give
// add with what it then reads.
func (c *Cache) lookup(k cacheKey) (body []byte, gen uint64, ok bool) {
	if c == nil {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, hit := c.entries[k]; hit {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).body, c.gen, true
	}
	return nil, c.gen, false
}

// get returns the body of k from the cache, or from load (a read of the
// store), whose result is kept unless a write happened since get began.
// Errors are not kept.
func (c *Cache) get(k cacheKey, load func() ([]byte, error)) ([]byte, error) {
	body, gen, ok := c.lookup(k)
	if ok {
		return body, nil
	}
	body, err := load()
	if err != nil {
		return nil, err
	}
	c.add(k, gen, body)
	return body, nil
}

// add keeps body for k if no write has happened since lookup returned gen.
// body must not be changed afterwards. Its capacity counts against the byte
// bound; a body over the whole bound is not kept.
func (c *Cache) add(k cacheKey, gen uint64, body []byte) {
	if c == nil {
		return
	}
	size := cap(body) + entryOverhead // the whole array stays alive
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // a write came in between: what was read may be stale
	}
	if el, hit := c.entries[k]; hit {
		c.remove(el) // another reader of this generation was first
	}
	el := c.lru.PushFront(&cacheEntry{key: k, body: body})
	c.entries[k] = el
	if k.list {
		c.pages[k] = el
	}
	c.bytes += size
	for c.lru.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

// changed drops what a write at post id can have changed: that post, and
// every page of the list that covers ids below a point above id (a page
// from the newest, or from a cursor above id). Pages from cursors at or
// below id hold only older posts and are unchanged whether id was created,
// updated or deleted. id 0 drops every page. It also starts a new
// generation, so reads that began before it are not kept.
func (c *Cache) changed(id int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, hit := c.entries[cacheKey{id: id}]; hit {
		c.remove(el)
	}
	for k, el := range c.pages {
		if k.id <= 0 || k.id > id {
			c.remove(el)
		}
	}
}

// remove drops el; c.mu is held.
func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	delete(c.pages, e.key)
	c.bytes -= cap(e.body) + entryOverhead
}
