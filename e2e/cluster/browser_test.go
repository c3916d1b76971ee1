package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"titanium/devstack/chromium"
)

// TestDashboardShowsEveryPod opens the dashboard in headless Chromium through
// the NodePort, as a user of the kind docs would, and waits until its
// services table has an ONLINE row for every pod of every service, and its
// load-balancer fact counts both load balancers online.
func TestDashboardShowsEveryPod(t *testing.T) {
	waitStatsMatch(t, 60*time.Second) // the pods are settled first
	pods := runningPods(t)
	want := map[string][]string{}
	total := 0
	for _, svc := range statsServices {
		want[svc] = podNames(pods[svc])
		total += len(want[svc])
	}
	wantJSON, _ := json.Marshal(want)
	lbs := len(pods["load-balancer"])

	p := chromium.New(t)
	p.Do(t, 30*time.Second, chromedp.Navigate(lb+"/?poll=500"))
	took := p.Wait(t, 30*time.Second, fmt.Sprintf("an ONLINE row for each of %d pods, %d load balancers online", total, lbs), fmt.Sprintf(`(() => {
		const want = %s;
		const rows = document.querySelectorAll('#services-table tr.inst');
		if (rows.length !== %d) return false;
		for (const [svc, names] of Object.entries(want)) {
			for (const name of names) {
				const row = document.querySelector('#services-table tr.inst[data-service="' + svc + '"][data-instance="' + name + '"]');
				if (!row || row.dataset.status !== 'ONLINE') return false;
			}
		}
		return document.getElementById('kpi-status').textContent === 'HEALTHY' &&
			document.getElementById('fact-lbs').textContent === '%d/%d online';
	})()`, wantJSON, total, lbs, lbs))
	t.Logf("dashboard showed all %d pod rows and %d load balancers after %v", total, lbs, took.Round(10*time.Millisecond))
	p.Screenshot(t, "cluster-dashboard", 1440, 900)
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors: %v", errs)
	}
}
