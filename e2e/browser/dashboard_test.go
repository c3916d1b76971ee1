package browser_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"titanium/devstack/chromium"
	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// lbStats is the part of the load balancer's /stats this test reads.
type lbStats struct {
	HasRealTraffic bool `json:"has_real_traffic"`
	WS             struct {
		Clients    int64  `json:"clients"`
		Heartbeats uint64 `json:"heartbeats"`
	} `json:"ws"`
}

// TestDashboardInRealBrowser opens the dashboard through the load balancer
// of a real stack and checks, as a user would see it: the KPIs fill, API
// traffic clears IDLE and idleness brings it back, the WebSocket heartbeat
// connects, is counted by the server and clears IDLE, a killed service
// raises an alarm and recovers, and a dead load balancer shows a banner
// while the page keeps retrying and the heartbeat reconnects.
func TestDashboardInRealBrowser(t *testing.T) {
	s := stacktest.Start(t)
	lb := s.LB()
	p := chromium.New(t)
	start := time.Now()

	p.Do(t, 20*time.Second, chromedp.Navigate(lb+"/?poll=500"))

	// 1. The KPIs fill with numbers.
	p.Wait(t, 10*time.Second, "KPIs filled with numbers", `(() => {
		const n = id => document.getElementById(id).textContent;
		return n('kpi-status') === 'HEALTHY' && /^\d+\/\d+$/.test(n('kpi-active')) && n('kpi-active') === '5/5' &&
			['kpi-rps', 'kpi-latency', 'kpi-p95'].every(id => Number.isFinite(parseFloat(n(id).replace(/,/g, ''))));
	})()`)
	p.Wait(t, 5*time.Second, "database and cache ONLINE, one row per service", `
		document.getElementById('db-status').textContent === 'ONLINE' &&
		document.getElementById('cache-status').textContent === 'ONLINE' &&
		document.querySelectorAll('#services-table tr.svc').length === 5 &&
		document.querySelectorAll('#services-table tr.inst').length >= 5`)
	p.Wait(t, 15*time.Second, "IDLE before any API traffic", `!document.getElementById('idle-badge').hidden`)

	// 2. API traffic: RPS above zero and IDLE gone.
	stop := generateTraffic(t, lb+"/api/health", 600, 20*time.Second)
	took := p.Wait(t, 10*time.Second, "RPS > 0 and IDLE gone under traffic", `
		parseFloat(document.getElementById('kpi-rps').textContent) > 0 &&
		document.getElementById('idle-badge').hidden`)
	t.Logf("RPS > 0 and IDLE cleared %v after traffic began", took.Round(10*time.Millisecond))
	p.Wait(t, 5*time.Second, "a latency figure", `parseFloat(document.getElementById('kpi-latency').textContent) > 0`)
	p.Screenshot(t, "dashboard-traffic-1440", 1440, 900)
	stop()

	// 3. Idleness: 10 s without API requests brings IDLE back.
	took = p.Wait(t, 16*time.Second, "IDLE after the traffic stopped", `!document.getElementById('idle-badge').hidden`)
	t.Logf("IDLE shown %v after the traffic stopped", took.Round(10*time.Millisecond))

	// 4. The WebSocket heartbeat: ON, counted by the server, IDLE cleared.
	if got := p.Text(t, `document.getElementById('ws-state').textContent`); got != "OFF" {
		t.Fatalf("heartbeat state before the click: %q, want OFF", got)
	}
	p.Do(t, 5*time.Second, chromedp.Click(chromedp.ID("toggle-ws-heartbeat-btn")))
	p.Wait(t, 5*time.Second, "WS heartbeat ON", `document.getElementById('ws-state').textContent === 'ON' &&
		document.getElementById('toggle-ws-heartbeat-btn').getAttribute('aria-pressed') === 'true'`)
	waitStats(t, lb, 5*time.Second, "the server counts the heartbeat client", func(st lbStats) bool {
		return st.WS.Clients >= 1 && st.WS.Heartbeats > 0 && st.HasRealTraffic
	})
	p.Wait(t, 5*time.Second, "IDLE cleared by the heartbeat", `document.getElementById('idle-badge').hidden`)

	// 5. A service dies: an offline alarm and the service marked offline; then it recovers.
	blog := s.Proc("blog-service")
	blog.Kill()
	took = p.Wait(t, 10*time.Second, "blog-service offline alarm and row", `(() => {
		const row = document.querySelector('#services-table tr.svc[data-service="blog-service"]');
		const alarm = document.querySelector('#alarm-list li[data-key="service:blog-service"]');
		return row && row.dataset.status === 'OFFLINE' && alarm && alarm.dataset.state === 'OFFLINE' &&
			alarm.textContent.includes('blog-service went OFFLINE') &&
			document.getElementById('kpi-status').textContent === 'DEGRADED' &&
			document.getElementById('kpi-active').textContent === '4/5';
	})()`)
	t.Logf("offline alarm shown %v after the kill", took.Round(10*time.Millisecond))
	p.Screenshot(t, "dashboard-degraded-1440", 1440, 900)
	p.Screenshot(t, "dashboard-degraded-390", 390, 844)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := blog.Restart(ctx); err != nil {
		t.Fatalf("restart blog-service: %v", err)
	}
	p.Wait(t, 10*time.Second, "blog-service back online", `(() => {
		const row = document.querySelector('#services-table tr.svc[data-service="blog-service"]');
		const top = document.querySelector('#alarm-list li[data-key="service:blog-service"]');
		return row && row.dataset.status === 'ONLINE' && top && top.dataset.state === 'ONLINE' &&
			top.textContent.includes('blog-service is back ONLINE') &&
			document.getElementById('kpi-status').textContent === 'HEALTHY';
	})()`)
	if got := p.Text(t, `String(document.querySelectorAll('#alarm-list li[data-key="service:blog-service"]').length)`); got != "2" {
		t.Errorf("blog-service alarms: %s, want 2 (went offline, back online; no repeats)", got)
	}

	// 6. The load balancer itself dies: the page says so, keeps polling,
	// and the heartbeat reconnects 2 s after it comes back.
	lbProc := s.Proc("load-balancer")
	lbProc.Kill()
	p.Wait(t, 5*time.Second, "unreachable banner and heartbeat reconnecting", `
		!document.getElementById('lb-unreachable').hidden &&
		document.getElementById('lb-unreachable').textContent.includes('unreachable') &&
		document.getElementById('ws-state').textContent === 'CONNECTING'`)
	p.Screenshot(t, "dashboard-unreachable-390", 390, 844)
	if err := lbProc.Restart(ctx); err != nil {
		t.Fatalf("restart load-balancer: %v", err)
	}
	p.Wait(t, 10*time.Second, "banner gone and heartbeat ON again", `
		document.getElementById('lb-unreachable').hidden &&
		document.getElementById('ws-state').textContent === 'ON' &&
		document.getElementById('kpi-status').textContent === 'HEALTHY'`)
	waitStats(t, lb, 8*time.Second, "the reconnected heartbeat is counted", func(st lbStats) bool {
		return st.WS.Clients >= 1 && st.WS.Heartbeats > 0
	})

	// 7. OFF closes the socket: the server sees no client.
	p.Do(t, 5*time.Second, chromedp.Click(chromedp.ID("toggle-ws-heartbeat-btn")))
	p.Wait(t, 3*time.Second, "WS heartbeat OFF", `document.getElementById('ws-state').textContent === 'OFF'`)
	waitStats(t, lb, 5*time.Second, "no heartbeat client after OFF", func(st lbStats) bool { return st.WS.Clients == 0 })

	// The final look, with history in the charts and alarms in the list.
	p.Screenshot(t, "dashboard-1440", 1440, 900)
	p.Screenshot(t, "dashboard-390", 390, 844)
	p.Do(t, 5*time.Second, chromedp.Click(chromedp.ID("theme-toggle")))
	p.Wait(t, 3*time.Second, "light theme", `document.documentElement.dataset.theme === 'light'`)
	p.Screenshot(t, "dashboard-light-1440", 1440, 900)

	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("browser scenario took %v", time.Since(start).Round(100*time.Millisecond))
}

// generateTraffic sends GET url in a loop (at most max requests, for at
// most d) until the returned stop is called.
func generateTraffic(t *testing.T, url string, max int, d time.Duration) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, failed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.After(d)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < max; i++ {
			select {
			case <-done:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
			r, err := httpc.Try(http.MethodGet, url, nil)
			mu.Lock()
			sent++
			if err != nil || r.Status != http.StatusOK {
				failed++
			}
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			t.Logf("traffic: %d requests to %s, %d failed", sent, url, failed)
			if failed > 0 {
				t.Errorf("%d of %d API requests failed", failed, sent)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitStats polls the load balancer's /stats until cond holds.
func waitStats(t *testing.T, lb string, timeout time.Duration, what string, cond func(lbStats) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last lbStats
	var lastErr error
	for time.Now().Before(deadline) {
		r, err := httpc.Try(http.MethodGet, lb+"/stats", nil)
		lastErr = err
		if err == nil && r.Status == http.StatusOK {
			var st lbStats
			r.JSON(t, &st)
			if last = st; cond(st) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last /stats %+v, error %v", timeout, what, last, lastErr)
}
