package reliability_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"titanium/devstack"
	"titanium/e2e/httpc"
)

var userSeq atomic.Int64

// uniqueName returns a username no other test in this run uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1_000_000, userSeq.Add(1))
}

// registerAndLogin creates a user through base (the LB) and returns its
// id and a bearer token.
func registerAndLogin(t testing.TB, base, username string) (int64, string) {
	t.Helper()
	password := "correct-horse-" + username
	r := httpc.Do(t, http.MethodPost, base+"/api/users", map[string]string{
		"username": username, "email": username + "@example.test", "password": password,
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: got %d %s", username, r.Status, r.Body)
	}
	var u struct {
		ID int64 `json:"id"`
	}
	r.JSON(t, &u)
	return u.ID, login(t, base, username, password)
}

func login(t testing.TB, base, username, password string) string {
	t.Helper()
	r := httpc.Do(t, http.MethodPost, base+"/api/auth/login", map[string]string{"username": username, "password": password})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: got %d %s", username, r.Status, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &tok)
	return tok.AccessToken
}

// lbStats fetches the load balancer's /stats.
func lbStats(t testing.TB, s *devstack.Stack) map[string]any {
	t.Helper()
	r := httpc.Do(t, http.MethodGet, s.LB()+"/stats", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/stats: got %d %s", r.Status, r.Body)
	}
	return r.Map(t)
}

// serviceStatus returns a service's status in the LB's /stats.
func serviceStatus(stats map[string]any, name string) string {
	list, _ := stats["services"].([]any)
	for _, item := range list {
		m, _ := item.(map[string]any)
		if m["name"] == name {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// nested reads a string at a dotted path of a JSON object.
func nested(m map[string]any, path string) string {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[k]
	}
	s, _ := cur.(string)
	return s
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procRSS is a process's resident set size in KiB, from /proc.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	return -1
}

// procFDs counts a process's open file descriptors.
func procFDs(pid int) int {
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return -1
	}
	return len(entries)
}

// goroutines reads a service's goroutine count from its own /stats.
func goroutines(t testing.TB, p *devstack.Proc) int {
	t.Helper()
	var st struct {
		Goroutines int `json:"goroutines"`
	}
	httpc.Do(t, http.MethodGet, p.URL+"/stats", nil).JSON(t, &st)
	return st.Goroutines
}

func restart(t testing.TB, p *devstack.Proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatalf("restart %s: %v", p.Name, err)
	}
}
