package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"titanium/platform/apierr"
	"titanium/platform/memo"
	"titanium/platform/upstream"
)

// statsTimeout bounds every fan-out request (the seed's 2 s): a slow or
// hung service is reported OFFLINE and never delays the answer past it.
const statsTimeout = 2 * time.Second

// aggregator builds the load balancer's /stats: a parallel fan-out to every
// instance of every service and to the peer replicas (fanOut), merged into
// one view (merge).
type aggregator struct {
	instance string
	services []*upstream.Pool // one per service, in display order
	peers    *upstream.Pool   // other load-balancer replicas; may be empty
	traffic  *traffic
	client   *http.Client
	logger   *slog.Logger

	// body is the last answer, shared by concurrent callers and served
	// again for the cache time; collect runs under it, one at a time.
	body    *memo.Value[[]byte]
	fanouts atomic.Uint64
	seen    map[string]seenInstance // by stats URL; only collect touches it
}

type seenInstance struct {
	name string
	at   time.Time
}

func newAggregator(instance string, services []*upstream.Pool, peers *upstream.Pool, t *traffic, cacheFor time.Duration, logger *slog.Logger) *aggregator {
	a := &aggregator{
		instance: instance, services: services, peers: peers, traffic: t, logger: logger,
		client: &http.Client{
			Timeout: statsTimeout,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		seen: map[string]seenInstance{},
	}
	a.body = memo.New(cacheFor, func() ([]byte, error) { return a.collect(), nil })
	return a
}

// statsBody is the /stats answer; its field names are the public contract
// the dashboard and the README document.
type statsBody struct {
	Service           string          `json:"service"`
	Instance          string          `json:"instance"`
	Status            string          `json:"status"`
	Timestamp         string          `json:"timestamp"`
	WindowSeconds     int             `json:"window_seconds"`
	RequestsPerSecond float64         `json:"requests_per_second"`
	AvgResponseTimeMs float64         `json:"avg_response_time_ms"`
	P50ResponseTimeMs float64         `json:"p50_response_time_ms"`
	P95ResponseTimeMs float64         `json:"p95_response_time_ms"`
	P99ResponseTimeMs float64         `json:"p99_response_time_ms"`
	SuccessRate       float64         `json:"success_rate"`
	TotalRequests     uint64          `json:"total_requests"`
	HasRealTraffic    bool            `json:"has_real_traffic"`
	WS                wsStats         `json:"ws"`
	ActiveServices    int             `json:"active_services"`
	TotalServices     int             `json:"total_services"`
	Services          []serviceRow    `json:"services"`
	Database          json.RawMessage `json:"database"`
	Cache             json.RawMessage `json:"cache"`
	LoadBalancers     []lbRow         `json:"load_balancers"`
}

type wsStats struct {
	Clients    int64  `json:"clients"`
	Heartbeats uint64 `json:"heartbeats"`
}

type serviceRow struct {
	Name            string        `json:"name"`
	Status          string        `json:"status"`
	OnlineInstances int           `json:"online_instances"`
	TotalInstances  int           `json:"total_instances"`
	LatencyMs       float64       `json:"latency_ms"`
	Instances       []instanceRow `json:"instances"`
}

type instanceRow struct {
	Instance  string  `json:"instance"`
	URL       string  `json:"url"`
	Status    string  `json:"status"`
	LatencyMs float64 `json:"latency_ms"`
	LastSeen  *string `json:"last_seen"`
	Error     string  `json:"error,omitempty"`
}

type lbRow struct {
	Instance string `json:"instance"`
	Status   string `json:"status"`
	URL      string `json:"url,omitempty"`
}

const (
	online  = "ONLINE"
	offline = "OFFLINE"
)

var offlineStatus = json.RawMessage(`{"status":"OFFLINE"}`)

// instanceStats is what we read from a service's own /stats.
type instanceStats struct {
	Instance string          `json:"instance"`
	Status   string          `json:"status"`
	Database json.RawMessage `json:"database"`
	Cache    json.RawMessage `json:"cache"`
}

// fetched is one instance's answer to the fan-out.
type fetched struct {
	svc     int // index in aggregator.services
	url     string
	stats   instanceStats
	latency time.Duration
	err     error
}

// peerFetched is one peer replica's answer to the fan-out.
type peerFetched struct {
	url    string
	totals replicaTotals
	err    error
}

// fanout is what one /stats fan-out gathered.
type fanout struct {
	instances []fetched // every instance of every service, in pool order
	peers     []peerFetched
	self      replicaTotals // this replica's traffic
	now       time.Time     // when the answers were all in
}

// ServeHTTP answers GET /stats. Concurrent callers share one fan-out, and
// an answer younger than the cache time is served again.
func (a *aggregator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		apierr.WriteCode(w, apierr.CodeMethodNotAllowed, "use GET")
		return
	}
	body, _ := a.body.Get()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// collect runs one fan-out and encodes its merge. It is detached from any
// caller's context: the callers that share it must not lose it because the
// first one left.
func (a *aggregator) collect() []byte {
	names := make([]string, len(a.services))
	for i, p := range a.services {
		names[i] = p.Name()
	}
	body := merge(a.instance, names, a.fanOut(), a.seen)
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with these types; keep the endpoint alive anyway
		a.logger.Error("encode /stats", "err", err)
		return []byte(`{"status":"DOWN"}`)
	}
	return append(b, '\n')
}

// fanOut asks every instance of every service for its /stats and every
// peer for its /stats/local, all at once, within statsTimeout.
func (a *aggregator) fanOut() fanout {
	a.fanouts.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	var f fanout
	for i, p := range a.services {
		for _, h := range p.Hosts() {
			f.instances = append(f.instances, fetched{svc: i, url: h.URL().String() + "/stats"})
		}
	}
	if a.peers != nil {
		for _, h := range a.peers.Hosts() {
			f.peers = append(f.peers, peerFetched{url: h.URL().String()})
		}
	}
	var wg sync.WaitGroup
	for i := range f.instances {
		wg.Go(func() { a.fetchInstance(ctx, &f.instances[i]) })
	}
	for i := range f.peers {
		wg.Go(func() { a.fetchPeer(ctx, &f.peers[i]) })
	}
	f.self = a.traffic.snapshot(time.Now())
	wg.Wait()
	f.now = time.Now()
	return f
}

// merge builds the /stats answer of replica instance from one fan-out.
// services names the services in display order. seen holds, by stats URL,
// the instances seen online before: merge records the ones online now and
// forgets those no longer in any pool.
func merge(instance string, services []string, f fanout, seen map[string]seenInstance) statsBody {
	body := statsBody{
		Service:       "load-balancer",
		Instance:      instance,
		Timestamp:     f.now.UTC().Format(time.RFC3339Nano),
		WindowSeconds: windowSeconds,
		Database:      offlineStatus,
		Cache:         offlineStatus,
		Services:      make([]serviceRow, len(services)),
		TotalServices: len(services),
	}
	for i, name := range services {
		body.Services[i] = serviceRow{Name: name, Status: offline, Instances: []instanceRow{}}
	}
	latencySum := make([]time.Duration, len(services))
	for _, res := range f.instances {
		row := &body.Services[res.svc]
		inst := instanceRow{URL: res.url, Status: offline, LatencyMs: ms(res.latency)}
		if res.err == nil {
			inst.Status = online
			inst.Instance = res.stats.Instance
			seen[res.url] = seenInstance{name: res.stats.Instance, at: f.now}
			row.OnlineInstances++
			latencySum[res.svc] += res.latency
			if row.Name == "user-service" && string(body.Database) == string(offlineStatus) {
				if len(res.stats.Database) > 0 {
					body.Database = res.stats.Database
				}
				if len(res.stats.Cache) > 0 {
					body.Cache = res.stats.Cache
				}
			}
		} else {
			inst.Error = res.err.Error()
		}
		if s, ok := seen[res.url]; ok {
			ts := s.at.UTC().Format(time.RFC3339Nano)
			inst.LastSeen = &ts
			if inst.Instance == "" {
				inst.Instance = s.name
			}
		}
		if inst.Instance == "" {
			inst.Instance = res.url
		}
		row.TotalInstances++
		row.Instances = append(row.Instances, inst)
	}
	// An instance no longer in any pool (a pod gone from DNS) is not shown
	// again: forget it, or the map grows with every pod ever scheduled.
	if len(seen) > len(f.instances) {
		current := make(map[string]bool, len(f.instances))
		for _, res := range f.instances {
			current[res.url] = true
		}
		for url := range seen {
			if !current[url] {
				delete(seen, url)
			}
		}
	}
	for i := range body.Services {
		row := &body.Services[i]
		if row.OnlineInstances > 0 {
			row.Status = online
			row.LatencyMs = ms(latencySum[i] / time.Duration(row.OnlineInstances))
			body.ActiveServices++
		}
	}
	switch {
	case body.ActiveServices == body.TotalServices:
		body.Status = "HEALTHY"
	case body.ActiveServices == 0:
		body.Status = "DOWN"
	default:
		body.Status = "DEGRADED"
	}

	// This replica's window plus every peer's: any replica describes the
	// whole system.
	totals := f.self.Totals
	body.WS = wsStats{Clients: f.self.WSClients, Heartbeats: f.self.WSHeartbeats}
	body.HasRealTraffic = f.self.HasRealTraffic
	body.LoadBalancers = []lbRow{{Instance: instance, Status: online}}
	for _, pr := range f.peers {
		if pr.err == nil && pr.totals.Instance == instance {
			continue // ourselves, reached through the peers' DNS name
		}
		row := lbRow{Instance: pr.totals.Instance, Status: online, URL: pr.url}
		if pr.err != nil {
			row.Status, row.Instance = offline, pr.url
		} else {
			totals.Add(pr.totals.Totals)
			body.WS.Clients += pr.totals.WSClients
			body.WS.Heartbeats += pr.totals.WSHeartbeats
			body.HasRealTraffic = body.HasRealTraffic || pr.totals.HasRealTraffic
		}
		body.LoadBalancers = append(body.LoadBalancers, row)
	}
	sum := totals.Summary(windowSeconds)
	body.RequestsPerSecond = sum.RequestsPerSecond
	body.AvgResponseTimeMs = sum.AvgResponseTimeMs
	body.P50ResponseTimeMs = sum.P50ResponseTimeMs
	body.P95ResponseTimeMs = sum.P95ResponseTimeMs
	body.P99ResponseTimeMs = sum.P99ResponseTimeMs
	body.SuccessRate = sum.SuccessRatePercent
	body.TotalRequests = sum.Requests
	return body
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func (a *aggregator) get(ctx context.Context, url string, v any) (time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return time.Since(start), err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return time.Since(start), fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return time.Since(start), fmt.Errorf("decode: %w", err)
	}
	return time.Since(start), nil
}

// fetchInstance fills f (its url set) with the instance's /stats.
func (a *aggregator) fetchInstance(ctx context.Context, f *fetched) {
	f.latency, f.err = a.get(ctx, f.url, &f.stats)
	if f.err == nil && f.stats.Status != "" && f.stats.Status != online {
		f.err = fmt.Errorf("reports %s", f.stats.Status)
	}
	f.err = shortErr(f.err)
}

// fetchPeer fills p (its url set) with the peer's /stats/local.
func (a *aggregator) fetchPeer(ctx context.Context, p *peerFetched) {
	_, p.err = a.get(ctx, p.url+"/stats/local", &p.totals)
}

// shortErr names the failure class without the URL the row already shows.
func shortErr(err error) error {
	switch {
	case err == nil:
		return nil
	case isTimeoutErr(err):
		return fmt.Errorf("timeout after %s", statsTimeout)
	case isRefused(err):
		return fmt.Errorf("connection refused")
	}
	return err
}

// serveLocal answers GET /stats/local: this replica's raw, mergeable totals.
func (a *aggregator) serveLocal(w http.ResponseWriter, _ *http.Request) {
	l := a.traffic.snapshot(time.Now())
	l.Instance = a.instance
	l.Fanouts = a.fanouts.Load()
	w.Header().Set("Cache-Control", "no-store")
	apierr.Respond(w, http.StatusOK, l)
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
