package httpapi

import (
	"context"
	"time"
)

// StatsSource is what /stats reads: a live database check and the post count.
type StatsSource interface {
	Ping(ctx context.Context) error
	Count(ctx context.Context) (int64, error)
}

// statsTimeout keeps /stats well inside the load balancer's 2 s fan-out
// timeout even when the database is stuck.
const statsTimeout = 500 * time.Millisecond

// Stats returns the blog-service fields of /stats: "posts" (the count, null
// when it cannot be read) and "database": {"status": "ONLINE"|"OFFLINE"},
// checked live on every call. The count is one row kept by triggers, so
// this is cheap enough for every fan-out.
func Stats(src StatsSource) func(ctx context.Context) map[string]any {
	return func(ctx context.Context) map[string]any {
		ctx, cancel := context.WithTimeout(ctx, statsTimeout)
		defer cancel()
		db := map[string]any{"status": "ONLINE"}
		var posts any
		if err := src.Ping(ctx); err != nil {
			db = map[string]any{"status": "OFFLINE", "error": "database unreachable"}
		} else if n, err := src.Count(ctx); err == nil {
			posts = n
		}
		return map[string]any{"posts": posts, "database": db}
	}
}
