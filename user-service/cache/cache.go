// Package cache is user-service's Redis cache (go-redis v9), used
// cache-aside. Redis is optional: every operation has a short deadline, a
// circuit breaker skips Redis entirely for a growing back-off after a
// failure (so a dead Redis costs one timeout, not one per request), and any
// failure is a miss. Entries are versioned so that a value read from the
// database before a change is never written to the cache after that
// change's invalidation; invalidations that could not reach Redis are kept
// and replayed, and the cache is bypassed until they are.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"titanium/platform/memo"
	"titanium/user-service/users"
)

// Config is the cache's configuration.
type Config struct {
	Addr     string
	Password string
	// TTL bounds how long an entry lives even if an invalidation is lost.
	TTL time.Duration
	// OpTimeout bounds every Redis command: a cache slower than this is no cache.
	OpTimeout time.Duration
}

// DefaultOpTimeout is well above a healthy Redis round trip on loopback or in
// a cluster (< 1 ms) and well below what a user notices.
const DefaultOpTimeout = 150 * time.Millisecond

const (
	// versionTTL must outlive any read-then-fill; an hour is far beyond one.
	versionTTL = time.Hour
	// maxPending bounds the invalidations kept while Redis is unreachable;
	// past it, every user entry is purged on recovery instead.
	maxPending = 10000
	// statusTTL: /stats may be polled every second by several load balancers;
	// the live ping is shared for this long.
	statusTTL = time.Second
	// The value key space, purged on pending overflow. Version keys live
	// apart ("ver:" prefix) and survive purges: deleting one could let an
	// in-flight fill that saw no version write a stale value.
	valuePattern = "user:*"
)

// notSet is the version given to a reader when Redis did not answer: no
// version key ever has it, so the following SetIfVersion is a no-op.
const notSet = "\x00unavailable"

// setIfVersion writes KEYS[1] only when KEYS[2] (its version) is still the
// version the reader saw, atomically inside Redis.
var setIfVersion = redis.NewScript(`
local v = redis.call('GET', KEYS[2])
if v == false then v = '' end
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// Cache is a Redis-backed users.Cache.
type Cache struct {
	rdb     *redis.Client
	cfg     Config
	logger  *slog.Logger
	breaker breaker

	hits, misses, failures atomic.Int64

	pendingMu sync.Mutex
	pending   map[string]struct{}
	purgeAll  bool
	pendingN  atomic.Int64 // len(pending) + purgeAll, read without the lock
	flushMu   sync.Mutex

	status *memo.Value[ping]
}

var _ users.Cache = (*Cache)(nil)

// New returns a cache for cfg. It does not connect: Redis may come later.
func New(cfg Config, logger *slog.Logger) *Cache {
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:     cfg.Addr,
		Password: cfg.Password,
		Protocol: 2, // RESP2: no HELLO round trip, works with every Redis
		// One dial attempt, short: retries are the breaker's job.
		DialTimeout:     cfg.OpTimeout,
		DialerRetries:   1,
		ReadTimeout:     cfg.OpTimeout,
		WriteTimeout:    cfg.OpTimeout,
		PoolTimeout:     cfg.OpTimeout,
		MaxRetries:      -1,
		PoolSize:        32,
		MinIdleConns:    2,
		ConnMaxIdleTime: 5 * time.Minute,
		// Request deadlines apply to commands.
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	c := &Cache{rdb: rdb, cfg: cfg, logger: logger, pending: map[string]struct{}{}}
	c.status = memo.New(statusTTL, c.ping)
	return c
}

// Close closes the connection pool.
func (c *Cache) Close() error { return c.rdb.Close() }

func versionKey(key string) string { return "ver:" + key }

// usable reports whether Redis may be tried now: the breaker allows it and
// no invalidation is waiting to be replayed (then the cache could be stale).
func (c *Cache) usable(ctx context.Context) bool {
	if !c.breaker.allow(time.Now()) {
		return false
	}
	if c.pendingN.Load() > 0 {
		done, ran := c.flush(ctx)
		if !ran {
			// Another goroutine is flushing: hand back a probe we may hold.
			c.breaker.release()
		}
		return done
	}
	return true
}

// result records the outcome of a Redis call in the breaker.
func (c *Cache) result(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		c.breaker.success()
		return
	}
	c.failures.Add(1)
	if opened := c.breaker.failure(time.Now()); opened {
		c.logger.Warn("redis unavailable: cache bypassed", "err", err, "retry_in", c.breaker.currentBackoff().String())
	}
}

// Get implements users.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, string, bool) {
	if !c.usable(ctx) {
		c.misses.Add(1)
		return nil, notSet, false
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	vals, err := c.rdb.MGet(ctx, key, versionKey(key)).Result()
	c.result(err)
	if err != nil || len(vals) != 2 {
		c.misses.Add(1)
		return nil, notSet, false
	}
	version, _ := vals[1].(string)
	val, ok := vals[0].(string)
	if !ok {
		c.misses.Add(1)
		return nil, version, false
	}
	c.hits.Add(1)
	return []byte(val), version, true
}

// SetIfVersion implements users.Cache.
func (c *Cache) SetIfVersion(ctx context.Context, key string, val []byte, version string) {
	if version == notSet || !c.usable(ctx) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	err := setIfVersion.Run(ctx, c.rdb, []string{key, versionKey(key)},
		version, val, c.cfg.TTL.Milliseconds()).Err()
	c.result(err)
}

// Invalidate implements users.Cache. When Redis cannot be reached the keys
// are remembered and the cache bypassed until they are invalidated.
func (c *Cache) Invalidate(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	// Record first: a reader that slips in between must already bypass.
	c.addPending(keys)
	if c.breaker.allow(time.Now()) {
		if _, ran := c.flush(ctx); !ran {
			c.breaker.release()
		}
	}
}

func (c *Cache) addPending(keys []string) {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	for _, k := range keys {
		if len(c.pending) >= maxPending {
			c.purgeAll = true
			clear(c.pending)
			break
		}
		c.pending[k] = struct{}{}
	}
	c.updatePendingN()
}

func (c *Cache) updatePendingN() {
	n := int64(len(c.pending))
	if c.purgeAll {
		n++
	}
	c.pendingN.Store(n)
}

// flush replays the pending invalidations and reports whether none remain
// (done) and whether it talked to Redis (ran). One flusher at a time; the
// others bypass the cache meanwhile. The caller has checked the breaker.
func (c *Cache) flush(ctx context.Context) (done, ran bool) {
	if !c.flushMu.TryLock() {
		return false, false
	}
	defer c.flushMu.Unlock()
	c.pendingMu.Lock()
	keys := make([]string, 0, len(c.pending))
	for k := range c.pending {
		keys = append(keys, k)
	}
	purge := c.purgeAll
	c.pendingMu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flushTimeout(len(keys), purge))
	defer cancel()
	var err error
	if purge {
		err = c.purge(ctx)
	}
	if err == nil && len(keys) > 0 {
		_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Incr(ctx, versionKey(k))
				p.PExpire(ctx, versionKey(k), versionTTL)
				p.Del(ctx, k)
			}
			return nil
		})
	}
	c.result(err)
	if err != nil {
		return false, true
	}
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	for _, k := range keys {
		delete(c.pending, k)
	}
	if purge {
		c.purgeAll = false
	}
	c.updatePendingN()
	return c.pendingN.Load() == 0, true
}

func (c *Cache) flushTimeout(keys int, purge bool) time.Duration {
	if purge || keys > 100 {
		return 5 * time.Second
	}
	return c.cfg.OpTimeout
}

// purge deletes every cached user value (not the version keys).
func (c *Cache) purge(ctx context.Context) error {
	iter := c.rdb.Scan(ctx, 0, valuePattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := c.rdb.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.rdb.Del(ctx, batch...).Err()
	}
	return nil
}

// ping is one live check of Redis.
type ping struct {
	online  bool
	lastErr string
}

// Online pings Redis, at most once per second whatever the number of
// callers, and reports whether it answered. A successful ping also closes
// the breaker, so the cache recovers as soon as Redis does. The ping is
// shared among callers, so it runs apart from any caller's context.
func (c *Cache) Online() (bool, string) {
	p, _ := c.status.Get()
	return p.online, p.lastErr
}

func (c *Cache) ping() (ping, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.cfg.OpTimeout)
	defer cancel()
	err := c.rdb.Ping(ctx).Err()
	c.result(err)
	p := ping{online: err == nil}
	if err != nil {
		p.lastErr = "unreachable"
	}
	if p.online && c.pendingN.Load() > 0 {
		c.flush(ctx)
	}
	return p, nil
}

// Stats is the /stats "cache" object.
func (c *Cache) Stats(context.Context) map[string]any {
	online, _ := c.Online()
	status := "OFFLINE"
	if online {
		status = "ONLINE"
	}
	hits, misses := c.hits.Load(), c.misses.Load()
	ratio := 0.0
	if hits+misses > 0 {
		ratio = float64(hits) / float64(hits+misses)
	}
	return map[string]any{
		"status":                status,
		"hits":                  hits,
		"misses":                misses,
		"hit_ratio":             ratio,
		"errors":                c.failures.Load(),
		"pending_invalidations": c.pendingN.Load(),
		"ttl_seconds":           c.cfg.TTL.Seconds(),
	}
}

// RouteLibraryLogs sends go-redis' own log lines (a process-wide setting of
// that library) to logger at debug level: with Redis down it would otherwise
// print a line per failed dial on stderr, outside our JSON logs. The breaker
// logs the outage once, at warn.
func RouteLibraryLogs(logger *slog.Logger) { redis.SetLogger(libraryLogger{logger}) }

type libraryLogger struct{ logger *slog.Logger }

func (l libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
