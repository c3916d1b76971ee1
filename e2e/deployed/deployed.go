// Package deployed holds the checks that prove a deployed Titanium, whatever
// runs it (docker-compose, a Kubernetes cluster): each one talks to the load
// balancer's public URL only, as a user or the load scripts would.
package deployed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"titanium/devstack/chromium"
	"titanium/e2e/httpc"
)

// Password is the password of every user these checks register.
const Password = "Deployed-check-pw-1234"

// Stats is the part of the load balancer's /stats the checks read.
type Stats struct {
	Status            string  `json:"status"`
	WindowSeconds     int     `json:"window_seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	SuccessRate       float64 `json:"success_rate"`
	TotalRequests     uint64  `json:"total_requests"`
	ActiveServices    int     `json:"active_services"`
	TotalServices     int     `json:"total_services"`
	HasRealTraffic    bool    `json:"has_real_traffic"`
	Database          struct {
		Status string `json:"status"`
	} `json:"database"`
	Cache struct {
		Status string `json:"status"`
	} `json:"cache"`
	WS struct {
		Clients    int64  `json:"clients"`
		Heartbeats uint64 `json:"heartbeats"`
	} `json:"ws"`
	Services []struct {
		Name            string `json:"name"`
		Status          string `json:"status"`
		OnlineInstances int    `json:"online_instances"`
		TotalInstances  int    `json:"total_instances"`
		Instances       []struct {
			Instance string `json:"instance"`
			Status   string `json:"status"`
			Error    string `json:"error"`
		} `json:"instances"`
	} `json:"services"`
	LoadBalancers []struct {
		Instance string `json:"instance"`
		Status   string `json:"status"`
	} `json:"load_balancers"`
}

// Service is one service's status and instance counts ("" when s does not
// list it).
func (s Stats) Service(name string) (status string, online, total int) {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv.Status, sv.OnlineInstances, sv.TotalInstances
		}
	}
	return "", 0, 0
}

// Healthy says whether s shows the whole system up: HEALTHY, every service
// online, database and cache ONLINE; otherwise why not.
func (s Stats) Healthy() (bool, string) {
	switch {
	case s.Status != "HEALTHY":
		return false, "status " + s.Status
	case s.TotalServices != 5 || s.ActiveServices != s.TotalServices:
		return false, fmt.Sprintf("%d/%d services active, want 5/5", s.ActiveServices, s.TotalServices)
	case s.Database.Status != "ONLINE" || s.Cache.Status != "ONLINE":
		return false, fmt.Sprintf("database %s, cache %s", s.Database.Status, s.Cache.Status)
	}
	return true, ""
}

// GetStats reads /stats once.
func GetStats(base string) (Stats, error) {
	var s Stats
	r, err := httpc.Try(http.MethodGet, base+"/stats", nil)
	if err != nil {
		return s, err
	}
	if r.Status != http.StatusOK {
		return s, fmt.Errorf("GET /stats: %d %s", r.Status, r.Body)
	}
	return s, json.Unmarshal(r.Body, &s)
}

// WaitStats polls /stats until ok accepts it, failing the test after timeout
// with the last reason.
func WaitStats(t testing.TB, base string, timeout time.Duration, what string, ok func(Stats) (bool, string)) Stats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	why := "no answer yet"
	for {
		s, err := GetStats(base)
		if err == nil {
			var good bool
			if good, why = ok(s); good {
				return s
			}
		} else {
			why = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// User is a registered user and its bearer token.
type User struct {
	ID       int64
	Username string
	Auth     string // "Bearer <token>"
}

// Register creates a user; it returns the HTTP status and, on 201, the id.
func Register(base, username string) (id int64, status int, err error) {
	r, err := httpc.Try(http.MethodPost, base+"/api/users", map[string]string{
		"username": username, "email": username + "@example.com", "password": Password})
	if err != nil {
		return 0, 0, err
	}
	if r.Status == http.StatusCreated {
		var u struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(r.Body, &u); err != nil || u.ID == 0 {
			return 0, r.Status, fmt.Errorf("201 without an id: %s", r.Body)
		}
		return u.ID, r.Status, nil
	}
	return 0, r.Status, nil
}

// NewUser registers and logs in a user whose name starts with prefix.
func NewUser(t testing.TB, base, prefix string) User {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e12)
	id, status, err := Register(base, name)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("register %s: %d %v", name, status, err)
	}
	r := httpc.Do(t, http.MethodPost, base+"/api/auth/login", map[string]string{"username": name, "password": Password})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: got %d %s, want 200", name, r.Status, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &tok)
	return User{ID: id, Username: name, Auth: "Bearer " + tok.AccessToken}
}

// UserExists says whether GET /api/users/{id} finds the user.
func UserExists(base string, id int64) (bool, error) {
	r, err := httpc.Try(http.MethodGet, fmt.Sprintf("%s/api/users/%d", base, id), nil)
	if err != nil {
		return false, err
	}
	switch r.Status {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET /api/users/%d: %d %s", id, r.Status, r.Body)
}

// Journey is the users' path: register, log in, create, edit and delete a
// post, and list. It returns the user and the id of a post it keeps.
func Journey(t testing.TB, base string) (User, int64) {
	t.Helper()
	u := NewUser(t, base, "journey")
	create := func(title string) int64 {
		r := httpc.Do(t, http.MethodPost, base+"/api/posts", map[string]string{"title": title, "content": "written by the deployment check"}, "Authorization", u.Auth)
		if r.Status != http.StatusCreated {
			t.Fatalf("create post: got %d %s, want 201", r.Status, r.Body)
		}
		var p struct {
			ID int64 `json:"id"`
		}
		r.JSON(t, &p)
		return p.ID
	}
	kept, gone := create("kept by "+u.Username), create("deleted by "+u.Username)
	url := fmt.Sprintf("%s/api/posts/%d", base, kept)
	if r := httpc.Do(t, http.MethodPatch, url, map[string]string{"title": "edited by " + u.Username}, "Authorization", u.Auth); r.Status != http.StatusOK {
		t.Fatalf("edit post: got %d %s, want 200", r.Status, r.Body)
	}
	var p struct {
		Title string `json:"title"`
	}
	httpc.Do(t, http.MethodGet, url, nil).JSON(t, &p)
	if p.Title != "edited by "+u.Username {
		t.Errorf("after edit: title %q", p.Title)
	}
	goneURL := fmt.Sprintf("%s/api/posts/%d", base, gone)
	if r := httpc.Do(t, http.MethodDelete, goneURL, nil, "Authorization", u.Auth); r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("delete post: got %d %s, want 204", r.Status, r.Body)
	}
	if r := httpc.Do(t, http.MethodGet, goneURL, nil); r.Status != http.StatusNotFound {
		t.Errorf("deleted post: got %d, want 404", r.Status)
	}
	var page struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	r := httpc.Do(t, http.MethodGet, base+"/api/posts?limit=50", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list posts: got %d %s", r.Status, r.Body)
	}
	r.JSON(t, &page)
	found := false
	for _, q := range page.Items {
		found = found || q.ID == kept
	}
	if !found {
		t.Errorf("the new post %d is not on the first page of the list", kept)
	}
	return u, kept
}

// PostExists says whether GET /api/posts/{id} finds the post.
func PostExists(t testing.TB, base string, id int64) bool {
	t.Helper()
	return httpc.Do(t, http.MethodGet, fmt.Sprintf("%s/api/posts/%d", base, id), nil).Status == http.StatusOK
}

// Pages checks the dashboard page and the blog SPA are served.
func Pages(t testing.TB, base string) {
	t.Helper()
	for _, p := range []struct{ path, want string }{
		{"/", `id="toggle-ws-heartbeat-btn"`},
		{"/blog/", "<html"},
	} {
		r := httpc.Do(t, http.MethodGet, base+p.path, nil)
		if r.Status != http.StatusOK || !strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(p.want)) {
			t.Errorf("GET %s: %d, body without %q", p.path, r.Status, p.want)
		}
	}
}

// Dashboard opens the dashboard in headless Chromium and waits until it shows
// HEALTHY, 5/5 services, database and cache ONLINE, and at least minRows
// instance rows. It returns the instance rows' names.
func Dashboard(t testing.TB, base string, minRows int) []string {
	t.Helper()
	p := chromium.New(t)
	p.Do(t, 30*time.Second, chromedp.Navigate(base+"/?poll=1000"))
	p.Wait(t, 30*time.Second, "dashboard HEALTHY, 5/5, database and cache ONLINE", fmt.Sprintf(`(() => {
		const n = id => document.getElementById(id).textContent;
		return n('kpi-status') === 'HEALTHY' && n('kpi-active') === '5/5' &&
			n('db-status') === 'ONLINE' && n('cache-status') === 'ONLINE' &&
			document.querySelectorAll('#services-table tr.inst').length >= %d;
	})()`, minRows))
	rows := p.Text(t, `Array.from(document.querySelectorAll('#services-table tr.inst')).map(r => r.textContent.trim().split(/\s+/)[0]).join('\n')`)
	p.Screenshot(t, "deployed-dashboard", 1280, 900)
	return strings.Split(rows, "\n")
}

// HeartbeatClearsIdle waits for the window to go IDLE (no API traffic for
// 10 s), then opens the WebSocket heartbeat with the given Origin, sends
// "hb", and waits for /stats to count real traffic again.
func HeartbeatClearsIdle(t testing.TB, base, origin string) {
	t.Helper()
	WaitStats(t, base, 30*time.Second, "IDLE before the heartbeat", func(s Stats) (bool, string) {
		return !s.HasRealTraffic, "has_real_traffic still true"
	})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/ws-heartbeat", http.Header{"Origin": {origin}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket dial (Origin %s): %v (HTTP %d)", origin, err, status)
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("hb")); err != nil {
		t.Fatalf("send hb: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil {
		t.Fatalf("no answer to hb: %v", err)
	} else {
		t.Logf("heartbeat answer: %s", msg)
	}
	WaitStats(t, base, 10*time.Second, "heartbeat clears IDLE", func(s Stats) (bool, string) {
		return s.HasRealTraffic && s.WS.Clients >= 1, fmt.Sprintf("has_real_traffic=%v ws.clients=%d", s.HasRealTraffic, s.WS.Clients)
	})
}

// LoadResult is the total row of a load script's summary.
type LoadResult struct {
	Sent, Failed int
	FailurePct   float64
	Output       string
}

var totalRE = regexp.MustCompile(`(?m)^total\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s`)

// LoadScript runs load-tests/<script> with sh with the given flags, with
// TMPDIR tmp (where the scripts keep their id state file; "" means a fresh
// one), bounded by limit, and returns the summary's total row. It fails the
// test unless the script exits 0.
func LoadScript(t testing.TB, root, tmp, script string, limit time.Duration, args ...string) LoadResult {
	t.Helper()
	if tmp == "" {
		tmp = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{filepath.Join(root, "load-tests", script)}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	res := LoadResult{Output: out.String()}
	if ctx.Err() != nil {
		t.Fatalf("%s %v: not done within %v\n%s", script, args, limit, out.String())
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out.String())
	}
	if m := totalRE.FindStringSubmatch(res.Output); m != nil {
		res.Sent, _ = strconv.Atoi(m[1])
		res.Failed, _ = strconv.Atoi(m[3])
		res.FailurePct, _ = strconv.ParseFloat(m[4], 64)
	}
	return res
}

// MixedLoad runs the seed's mixed_load.sh at the seed's rates (list 64,
// detail 12, create 4 per second) for d, with TMPDIR tmp as LoadScript, and
// fails unless under 2 % failed.
func MixedLoad(t testing.TB, root, tmp, base string, d time.Duration) LoadResult {
	t.Helper()
	res := LoadScript(t, root, tmp, "mixed_load.sh", d+3*time.Minute, "--url", base, "--duration", fmt.Sprintf("%ds", int(d.Seconds())),
		"--rate-list", "64", "--rate-detail", "12", "--rate-create", "4")
	want := int(d.Seconds()) * 80
	if res.Sent < want*9/10 || res.FailurePct >= 2 {
		t.Errorf("mixed_load.sh: sent %d (want about %d), failed %d (%.2f%%, want < 2%%)\n%s", res.Sent, want, res.Failed, res.FailurePct, res.Output)
	}
	return res
}
