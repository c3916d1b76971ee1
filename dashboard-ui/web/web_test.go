package web

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var client = &http.Client{Timeout: 5 * time.Second}

func newServer(t *testing.T) (*Site, *httptest.Server) {
	t.Helper()
	site, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	return site, srv
}

func get(t *testing.T, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp, body
}

var (
	htmlRef = regexp.MustCompile(`(?:src|href)="([^"#?]+)"`)
	// Static imports of relative modules: `import x from './a.js'` and `import './a.js'`.
	jsImport = regexp.MustCompile(`(?m)^\s*import\s+(?:[^'";]*?\s+from\s+)?['"](\.{1,2}/[^'"]+)['"]`)
)

// TestEveryReferencedFileIsServed follows index.html's src/href attributes
// and the modules' relative imports, and fetches every file they name: a
// renamed module or a Chart.js that was never vendored fails here, not in a
// user's browser.
func TestEveryReferencedFileIsServed(t *testing.T) {
	_, srv := newServer(t)
	wantType := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	seen := map[string]bool{}
	queue := []string{"index.html"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		resp, body := get(t, srv.URL+"/"+name)
		if resp.StatusCode != http.StatusOK {
			if name == ChartJSPath {
				t.Errorf("GET /%s: got %d, want 200: Chart.js is not vendored; run `make deps` (npm ci in dashboard-ui, then dashboard-ui/scripts/vendor.sh)", name, resp.StatusCode)
			} else {
				t.Errorf("GET /%s: got %d, want 200", name, resp.StatusCode)
			}
			continue
		}
		if got, want := resp.Header.Get("Content-Type"), wantType[path.Ext(name)]; got != want {
			t.Errorf("GET /%s: Content-Type %q, want %q", name, got, want)
		}
		var refs [][]string
		switch path.Ext(name) {
		case ".html":
			refs = htmlRef.FindAllStringSubmatch(string(body), -1)
		case ".js":
			refs = jsImport.FindAllStringSubmatch(string(body), -1)
		}
		for _, m := range refs {
			ref := m[1]
			if strings.Contains(ref, "://") || strings.HasPrefix(ref, "//") {
				t.Errorf("%s references %q: the dashboard must not load anything from elsewhere", name, ref)
				continue
			}
			target := path.Clean(path.Join(path.Dir(name), ref))
			if target == "." { // href="./": the page itself
				continue
			}
			queue = append(queue, target)
		}
	}
	for _, must := range []string{"script.js", "style.css", ChartJSPath, "api.js", "charts.js", "heartbeat.js", "alarms.js", "services.js"} {
		if !seen[must] {
			t.Errorf("%s is not reached from index.html", must)
		}
	}
	if !strings.Contains(string(mustGet(t, srv.URL+"/"+ChartJSPath)), "Chart.js v") {
		t.Errorf("/%s does not look like Chart.js; run `make deps`", ChartJSPath)
	}
}

func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	_, body := get(t, url)
	return body
}

// TestPageHasTheContractIDs keeps the ids the browser test and the seed rely on.
func TestPageHasTheContractIDs(t *testing.T) {
	_, srv := newServer(t)
	page := string(mustGet(t, srv.URL+"/"))
	for _, id := range []string{"toggle-ws-heartbeat-btn", "ws-state", "kpi-status", "kpi-active", "kpi-rps",
		"kpi-latency", "kpi-p95", "idle-badge", "alarm-list", "services-table", "db-status", "cache-status",
		"lb-unreachable", "chart-rps", "chart-latency"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("index.html has no #%s", id)
		}
	}
	script := string(mustGet(t, srv.URL+"/script.js"))
	for _, want := range []string{"export const config", "heartbeat: { enabled: false", "pollMs: 2000"} {
		if !strings.Contains(script, want) {
			t.Errorf("script.js lacks %q", want)
		}
	}
}

func TestCachingAndCompression(t *testing.T) {
	_, srv := newServer(t)
	tests := []struct {
		path      string
		wantCache string
	}{
		{"/", "no-cache"},
		{"/index.html", "no-cache"},
		{"/script.js", "public, max-age=300"},
		{"/style.css", "public, max-age=300"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := get(t, srv.URL+tt.path)
			if got := resp.Header.Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("Cache-Control %q, want %q", got, tt.wantCache)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			again, body := get(t, srv.URL+tt.path, "If-None-Match", etag)
			if again.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("revalidation: got %d with %d bytes, want 304 and no body", again.StatusCode, len(body))
			}
		})
	}
	if got := mustHeader(t, srv.URL+"/", "Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
		t.Errorf("page CSP %q does not restrict scripts to 'self'", got)
	}

	// gzip: decoded body equals the plain one; its ETag differs.
	// (Setting Accept-Encoding ourselves turns off the transport's transparent decoding.)
	plainResp, plain := get(t, srv.URL+"/style.css", "Accept-Encoding", "identity")
	gzResp, gz := get(t, srv.URL+"/style.css", "Accept-Encoding", "br, gzip")
	if gzResp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", gzResp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(gz)))
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(decoded) != string(plain) || len(gz) >= len(plain) {
		t.Errorf("gzip body: %d bytes decoding to %d, plain %d; want smaller and equal", len(gz), len(decoded), len(plain))
	}
	if plainResp.Header.Get("ETag") == gzResp.Header.Get("ETag") {
		t.Error("gzip and identity share an ETag")
	}
	if !strings.Contains(gzResp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary %q lacks Accept-Encoding", gzResp.Header.Get("Vary"))
	}
	refused, _ := get(t, srv.URL+"/style.css", "Accept-Encoding", "gzip;q=0")
	if refused.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent though refused with q=0")
	}
}

func mustHeader(t *testing.T, url, name string) string {
	t.Helper()
	resp, _ := get(t, url)
	return resp.Header.Get(name)
}

func TestUnknownPathsAndMethods(t *testing.T) {
	_, srv := newServer(t)
	for _, p := range []string{"/nope.js", "/../../etc/passwd", "/vendor/", "/static/index.html"} {
		resp, body := get(t, srv.URL+p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", p, resp.StatusCode)
			continue
		}
		var e struct{ Code string }
		if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
			t.Errorf("GET %s: body %q is not a JSON error", p, body)
		}
	}
	resp, err := client.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: got %d Allow=%q, want 405 GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestNewRejectsBadTrees(t *testing.T) {
	if _, err := newSite(fstest.MapFS{"script.js": {Data: []byte("x")}}); err == nil {
		t.Error("a tree without index.html was accepted")
	}
	if _, err := newSite(fstest.MapFS{"index.html": {Data: []byte("x")}, "a.exe": {Data: []byte("x")}}); err == nil {
		t.Error("a file with no known content type was accepted")
	}
}
