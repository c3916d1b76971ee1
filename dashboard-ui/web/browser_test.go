package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"titanium/devstack/chromium"
)

// These tests drive the real page in headless Chromium against a scripted
// /stats: states the real stack cannot be asked for on cue (hostile
// strings, a flapping service, malformed answers) are checked here. The
// whole-stack test is e2e/browser.

// fakeLB serves the dashboard and a /stats whose answer the test sets.
type fakeLB struct {
	mu     sync.Mutex
	status int
	body   map[string]any
	polls  int
}

func (f *fakeLB) set(status int, body map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeLB) pollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls
}

func (f *fakeLB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	status, body := f.status, f.body
	f.polls++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// stats builds a /stats answer in the load balancer's contract. offline
// names the services to report down.
func stats(rps float64, traffic bool, offline ...string) map[string]any {
	down := map[string]bool{}
	for _, s := range offline {
		down[s] = true
	}
	now := time.Now().UTC()
	var services []map[string]any
	active := 0
	for i, name := range []string{"api-gateway", "auth-service", "user-service", "blog-service", "dashboard-ui"} {
		replicas := 1
		if name == "api-gateway" || name == "auth-service" {
			replicas = 2
		}
		var instances []map[string]any
		online := 0
		for r := 1; r <= replicas; r++ {
			inst := map[string]any{
				"instance":   fmt.Sprintf("%s-%d", name, r),
				"url":        fmt.Sprintf("http://127.0.0.1:%d", 8000+i*10+r),
				"status":     "ONLINE",
				"latency_ms": 0.8 + float64(i)*0.35 + float64(r)*0.1,
				"last_seen":  now.Format(time.RFC3339Nano),
			}
			if down[name] {
				inst["status"] = "OFFLINE"
				inst["latency_ms"] = 0
				inst["last_seen"] = now.Add(-7 * time.Second).Format(time.RFC3339Nano)
				inst["error"] = "dial tcp 127.0.0.1: connect: connection refused"
			} else {
				online++
			}
			instances = append(instances, inst)
		}
		status := "ONLINE"
		if online == 0 {
			status = "OFFLINE"
		} else {
			active++
		}
		services = append(services, map[string]any{
			"name": name, "status": status, "online_instances": online, "total_instances": replicas,
			"latency_ms": 1.1 + float64(i)*0.4, "instances": instances,
		})
	}
	overall := "HEALTHY"
	if active == 0 {
		overall = "DOWN"
	} else if active < 5 {
		overall = "DEGRADED"
	}
	store := func() map[string]any {
		if down["user-service"] {
			return map[string]any{"status": "OFFLINE"}
		}
		return map[string]any{"status": "ONLINE"}
	}
	total := int(rps * 10)
	return map[string]any{
		"status": overall, "timestamp": now.Format(time.RFC3339Nano), "window_seconds": 10,
		"requests_per_second": rps, "avg_response_time_ms": 3.4, "p50_response_time_ms": 2.1,
		"p95_response_time_ms": 9.8, "p99_response_time_ms": 24.5, "success_rate": 99.6,
		"total_requests": total, "has_real_traffic": traffic,
		"ws":              map[string]any{"clients": 1, "heartbeats": 2},
		"active_services": active, "total_services": 5, "services": services,
		"database": store(), "cache": store(),
		"load_balancers": []map[string]any{{"instance": "load-balancer-1", "status": "ONLINE"}, {"instance": "load-balancer-2", "status": "ONLINE"}},
	}
}

func startFake(t *testing.T) (*fakeLB, *httptest.Server) {
	t.Helper()
	site, err := New()
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeLB{status: http.StatusOK, body: stats(42.5, true)}
	mux := http.NewServeMux()
	mux.Handle("GET /stats", fake)
	mux.Handle("GET /", site)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return fake, srv
}

// TestDashboardAgainstScriptedStats walks the page through healthy, idle,
// degraded, hostile and unreachable answers.
func TestDashboardAgainstScriptedStats(t *testing.T) {
	fake, srv := startFake(t)
	tab := chromium.New(t)
	const wait = 10 * time.Second

	tab.Do(t, 20*time.Second, chromedp.Navigate(srv.URL+"/?poll=250"))
	tab.Wait(t, wait, "KPIs filled", `document.querySelector('#kpi-rps').textContent === '42.5' &&
		document.querySelector('#kpi-active').textContent === '5/5' &&
		document.querySelector('#kpi-status').textContent === 'HEALTHY'`)
	if got := tab.Text(t, `document.querySelector('#kpi-latency').textContent + ' ' + document.querySelector('#kpi-p95').textContent`); got != "3.4 9.8" {
		t.Errorf("latency KPIs %q, want \"3.4 9.8\"", got)
	}
	tab.Wait(t, wait, "7 instance rows and data stores ONLINE", `document.querySelectorAll('#services-table tr.inst').length === 7 &&
		document.querySelector('#db-status').textContent === 'ONLINE' && document.querySelector('#cache-status').textContent === 'ONLINE'`)
	tab.Wait(t, wait, "IDLE hidden with traffic", `document.querySelector('#idle-badge').hidden`)
	tab.Wait(t, wait, "Chart.js loaded", `typeof window.Chart === 'function' && document.querySelector('#chartjs-missing').hidden`)
	tab.Wait(t, wait, "no alarm while healthy", `document.querySelectorAll('#alarm-list li').length === 0`)
	tab.Screenshot(t, "dashboard-fake-healthy-1440", 1440, 900)

	fake.set(http.StatusOK, stats(0, false))
	tab.Wait(t, wait, "IDLE shown", `!document.querySelector('#idle-badge').hidden && document.querySelector('#kpi-rps').textContent === '0.0'`)

	// A service goes down, stays down for several polls, comes back: two alarms, no repeats.
	fake.set(http.StatusOK, stats(12, true, "blog-service"))
	tab.Wait(t, wait, "offline alarm", `[...document.querySelectorAll('#alarm-list li')].some(li =>
		li.dataset.key === 'service:blog-service' && li.dataset.state === 'OFFLINE' && li.textContent.includes('blog-service went OFFLINE'))`)
	tab.Wait(t, wait, "blog-service row offline", `document.querySelector('#services-table tr.svc[data-service="blog-service"]').dataset.status === 'OFFLINE' &&
		document.querySelector('#kpi-status').textContent === 'DEGRADED' && document.querySelector('#kpi-active').textContent === '4/5'`)
	before := fake.pollCount()
	tab.Wait(t, wait, "more polls", fmt.Sprintf(`(async () => { await new Promise(r => setTimeout(r, 1200)); return true })()`))
	if fake.pollCount()-before < 3 {
		t.Fatalf("only %d polls in 1.2 s at ?poll=250", fake.pollCount()-before)
	}
	if n := tab.Text(t, `String(document.querySelectorAll('#alarm-list li').length)`); n != "1" {
		t.Errorf("alarms after repeated OFFLINE answers: %s, want 1 (deduplicated)", n)
	}
	tab.Screenshot(t, "dashboard-fake-degraded-1440", 1440, 900)
	fake.set(http.StatusOK, stats(12, true))
	tab.Wait(t, wait, "back-online alarm on top", `(() => { const li = document.querySelector('#alarm-list li');
		return li && li.dataset.state === 'ONLINE' && li.textContent.includes('blog-service is back ONLINE') })()`)

	// One replica of two down: the service stays ONLINE and an instance warning is raised.
	partial := stats(12, true)
	gw := partial["services"].([]map[string]any)[0]
	gw["online_instances"] = 1
	gw["instances"].([]map[string]any)[1]["status"] = "OFFLINE"
	fake.set(http.StatusOK, partial)
	tab.Wait(t, wait, "instance warning", `[...document.querySelectorAll('#alarm-list li[data-level="warn"]')].some(li => li.textContent.includes('api-gateway-2'))`)

	// Hostile strings are shown as text, never as markup.
	hostile := stats(1, true)
	hostileSvc := hostile["services"].([]map[string]any)[3]
	hostileSvc["name"] = `<img src=x onerror="window.__xss=1">`
	hostileSvc["status"] = "OFFLINE"
	hostileSvc["instances"].([]map[string]any)[0]["error"] = `<script>window.__xss=2</script>`
	fake.set(http.StatusOK, hostile)
	tab.Wait(t, wait, "hostile name rendered as text", `[...document.querySelectorAll('#services-table th')].some(th => th.textContent.includes('<img src=x'))`)
	if got := tab.Text(t, `String(window.__xss) + ' ' + document.querySelectorAll('main img, main script').length`); got != "undefined 0" {
		t.Errorf("hostile data was interpreted: window.__xss and injected elements = %q", got)
	}

	// Garbage and failures: the banner shows, the page keeps polling and recovers.
	fake.set(http.StatusServiceUnavailable, map[string]any{"error": "down"})
	tab.Wait(t, wait, "unreachable banner", `!document.querySelector('#lb-unreachable').hidden &&
		document.querySelector('#lb-unreachable').textContent.includes('503')`)
	tab.Wait(t, wait, "unreachable alarm", `document.querySelector('#alarm-list li').dataset.key === 'lb'`)
	tab.Screenshot(t, "dashboard-fake-unreachable-390", 390, 844)
	fake.set(http.StatusOK, map[string]any{"status": 7, "services": "nope", "requests_per_second": "x"})
	tab.Wait(t, wait, "malformed answer tolerated", `document.querySelector('#lb-unreachable').hidden && document.querySelector('#kpi-rps').textContent === '—'`)
	fake.set(http.StatusOK, stats(42.5, true))
	tab.Wait(t, wait, "recovered", `document.querySelector('#kpi-rps').textContent === '42.5' && document.querySelector('#kpi-status').textContent === 'HEALTHY'`)

	// Theme: dark by default, light after a click, remembered after a reload.
	if got := tab.Text(t, `document.documentElement.dataset.theme`); got != "dark" {
		t.Errorf("default theme %q, want dark", got)
	}
	tab.Do(t, wait, chromedp.Click(chromedp.ID("theme-toggle")))
	tab.Wait(t, wait, "light theme", `document.documentElement.dataset.theme === 'light'`)
	tab.Screenshot(t, "dashboard-fake-light-1440", 1440, 900)
	tab.Screenshot(t, "dashboard-fake-light-390", 390, 844)
	tab.Do(t, 20*time.Second, chromedp.Reload())
	tab.Wait(t, wait, "light theme after reload", `document.documentElement.dataset.theme === 'light'`)

	if p := tab.Errors(); len(p) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestChartJSMissingIsExplained serves the page without Chart.js: the
// charts say how to fix it and the figures still update.
func TestChartJSMissingIsExplained(t *testing.T) {
	site, err := New()
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeLB{status: http.StatusOK, body: stats(3, true)}
	mux := http.NewServeMux()
	mux.Handle("GET /stats", fake)
	mux.Handle("GET /"+ChartJSPath, http.NotFoundHandler())
	mux.Handle("GET /", site)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tab := chromium.New(t)
	tab.Do(t, 20*time.Second, chromedp.Navigate(srv.URL+"/?poll=250"))
	tab.Wait(t, 10*time.Second, "missing Chart.js explained", `!document.querySelector('#chartjs-missing').hidden &&
		document.querySelector('#chartjs-missing').textContent.includes('make deps') &&
		document.querySelectorAll('.chart-missing').length === 2`)
	tab.Wait(t, 10*time.Second, "KPIs still fill", `document.querySelector('#kpi-rps').textContent === '3.0'`)
}
