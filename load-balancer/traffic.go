package main

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"titanium/platform/service"
	"titanium/platform/window"
)

// windowSeconds is the span of the traffic window the dashboard shows.
const windowSeconds = 10

// traffic is the accounting of real traffic: counted API requests and
// WebSocket heartbeat activity over the last windowSeconds.
type traffic struct {
	requests   *window.Window // counted /api/* requests
	heartbeats *window.Window // WebSocket "hb" messages
	wsClients  atomic.Int64
	lastWS     atomic.Int64 // unix nanos of the last WebSocket activity
}

func newTraffic() *traffic {
	return &traffic{requests: window.New(windowSeconds), heartbeats: window.New(windowSeconds)}
}

// statusRecorders are pooled so that counting a request allocates nothing.
var statusRecorders = sync.Pool{New: func() any { return new(service.StatusRecorder) }}

// counted reports whether r is real traffic: HEAD requests and explicit
// heartbeats (X-Heartbeat: true) are not. The handler it wraps is mounted on
// /api/ only, so other paths never get here.
func counted(r *http.Request) bool {
	var hb string
	if v := r.Header["X-Heartbeat"]; len(v) > 0 {
		hb = v[0]
	}
	return realTraffic(r.Method == http.MethodHead, hb)
}

// realTraffic is the rule both serving paths count by: HEAD requests and
// explicit heartbeats (X-Heartbeat: true) are not real traffic.
func realTraffic(head bool, heartbeat string) bool {
	return !head && !strings.EqualFold(strings.TrimSpace(heartbeat), "true")
}

// middleware records every counted request's latency and outcome in the
// window: O(1) work and no allocation per request. A request fails when its
// status is 5xx (the README's success-rate definition).
func (t *traffic) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !counted(r) {
			next.ServeHTTP(w, r)
			return
		}
		rec := statusRecorders.Get().(*service.StatusRecorder)
		rec.Reset(w)
		start := time.Now()
		next.ServeHTTP(rec, r)
		end := time.Now()
		status := rec.Status()
		rec.Reset(nil)
		statusRecorders.Put(rec)
		t.requests.Record(end, end.Sub(start), status >= 500)
	})
}

// wsActivity marks WebSocket activity (a heartbeat or a pong).
func (t *traffic) wsActivity(now time.Time) { t.lastWS.Store(now.UnixNano()) }

// heartbeat counts one "hb" message.
func (t *traffic) heartbeat(now time.Time) {
	t.heartbeats.Record(now, 0, false)
	t.wsActivity(now)
}

// replicaTotals is this replica's raw traffic state, mergeable across
// replicas (what GET /stats/local serves).
type replicaTotals struct {
	Instance       string        `json:"instance"`
	Totals         window.Totals `json:"totals"`
	WSClients      int64         `json:"ws_clients"`
	WSHeartbeats   uint64        `json:"ws_heartbeats"`
	HasRealTraffic bool          `json:"has_real_traffic"`
	// Fanouts counts the /stats fan-outs this replica has run.
	Fanouts uint64 `json:"fanouts"`
}

// snapshot is the traffic state at now.
func (t *traffic) snapshot(now time.Time) replicaTotals {
	tot := t.requests.Totals(now)
	hb := t.heartbeats.Totals(now).Requests
	last := t.lastWS.Load()
	active := tot.Requests > 0 || hb > 0 || (last != 0 && now.Sub(time.Unix(0, last)) < windowSeconds*time.Second)
	return replicaTotals{Totals: tot, WSClients: t.wsClients.Load(), WSHeartbeats: hb, HasRealTraffic: active}
}
