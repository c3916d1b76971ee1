// Package users_test runs user-service and auth-service as real processes,
// with a real redis-server and SQLite files, and checks the user journey,
// a Redis outage and a kill -9 in the middle of writes.
package users_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

type user struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

func register(t *testing.T, base, name string) user {
	t.Helper()
	r := httpc.Do(t, "POST", base+"/api/users", map[string]string{
		"username": name, "email": name + "@example.com", "password": "password-" + name,
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", name, r.Status, r.Body)
	}
	var u user
	r.JSON(t, &u)
	return u
}

func login(t *testing.T, auth, name string) string {
	t.Helper()
	r := httpc.Do(t, "POST", auth+"/api/auth/login", map[string]string{"username": name, "password": "password-" + name})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", name, r.Status, r.Body)
	}
	var lr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	r.JSON(t, &lr)
	if lr.AccessToken == "" || lr.TokenType != "Bearer" || lr.ExpiresIn <= 0 {
		t.Fatalf("login answer: %s", r.Body)
	}
	return lr.AccessToken
}

// getUser reads user id as its owner (token): only the owner sees the e-mail.
func getUser(t *testing.T, base string, id int64, token string) user {
	t.Helper()
	start := time.Now()
	r := httpc.Do(t, "GET", fmt.Sprintf("%s/api/users/%d", base, id), nil, "Authorization", "Bearer "+token)
	if r.Status != http.StatusOK {
		t.Fatalf("GET user %d: %d %s", id, r.Status, r.Body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("GET user %d took %v, want < 1s", id, d)
	}
	var u user
	r.JSON(t, &u)
	return u
}

type stats struct {
	Database struct {
		Status string `json:"status"`
		Users  int64  `json:"users"`
	} `json:"database"`
	Cache struct {
		Status string `json:"status"`
		Hits   int64  `json:"hits"`
		Misses int64  `json:"misses"`
	} `json:"cache"`
}

func userStats(t *testing.T, base string) stats {
	t.Helper()
	var st stats
	httpc.Do(t, "GET", base+"/stats", nil).JSON(t, &st)
	return st
}

// waitCache polls /stats until cache.status is want.
func waitCache(t *testing.T, base, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := userStats(t, base)
		if st.Cache.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache.status stayed %q for %v, want %q", st.Cache.Status, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func patchEmail(t *testing.T, base string, id int64, token, email string) {
	t.Helper()
	r := httpc.Do(t, "PATCH", fmt.Sprintf("%s/api/users/%d", base, id), map[string]string{"email": email}, "Authorization", "Bearer "+token)
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH email: %d %s", r.Status, r.Body)
	}
}

// TestUserJourneyAndRedisOutage: register → login → verify → update, the
// error answers, then Redis killed and restarted under reads and updates.
func TestUserJourneyAndRedisOutage(t *testing.T) {
	s := stacktest.Start(t)
	us, auth := s.URL("user-service"), s.URL("auth-service")

	alice := register(t, us, "alice")
	token := login(t, auth, "alice")
	for _, v := range []struct {
		method string
		body   any
		hdr    []string
	}{
		{"GET", nil, []string{"Authorization", "Bearer " + token}},
		{"POST", map[string]string{"token": token}, nil},
	} {
		r := httpc.Do(t, v.method, auth+"/api/auth/verify", v.body, v.hdr...)
		m := r.Map(t)
		if r.Status != 200 || m["valid"] != true || m["sub"] != "alice" {
			t.Errorf("verify %s: %d %s", v.method, r.Status, r.Body)
		}
	}
	if r := httpc.Do(t, "GET", auth+"/api/auth/verify", nil, "Authorization", "Bearer "+token+"x"); r.Status != 401 {
		t.Errorf("verify a tampered token: got %d, want 401", r.Status)
	}

	errorCases := []struct {
		name, url string
		body      any
		hdr       []string
		status    int
	}{
		{"duplicate username", us + "/api/users", map[string]string{"username": "alice", "email": "a2@example.com", "password": "password-x"}, nil, 409},
		{"duplicate email", us + "/api/users", map[string]string{"username": "alice2", "email": "alice@example.com", "password": "password-x"}, nil, 409},
		{"missing fields", us + "/api/users", map[string]string{"username": "carol"}, nil, 400},
		{"bad JSON", us + "/api/users", `{"username":`, []string{"Content-Type", "application/json"}, 400},
		{"oversized body", us + "/api/users", `{"username":"` + strings.Repeat("a", 1<<20+1) + `"}`, []string{"Content-Type", "application/json"}, 413},
		{"login bad JSON", auth + "/api/auth/login", `{`, []string{"Content-Type", "application/json"}, 400},
		{"login missing password", auth + "/api/auth/login", map[string]string{"username": "alice"}, nil, 400},
		{"login oversized", auth + "/api/auth/login", `{"username":"` + strings.Repeat("a", 1<<20+1) + `"}`, []string{"Content-Type", "application/json"}, 413},
		{"login wrong password", auth + "/api/auth/login", map[string]string{"username": "alice", "password": "wrong-password"}, nil, 401},
	}
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			r := httpc.Do(t, "POST", c.url, c.body, c.hdr...)
			m := r.Map(t)
			if r.Status != c.status || m["code"] == nil || m["error"] == nil {
				t.Errorf("got %d %s, want %d with a JSON error", r.Status, r.Body, c.status)
			}
		})
	}

	// Warm the cache.
	getUser(t, us, alice.ID, token)
	getUser(t, us, alice.ID, token)
	if st := userStats(t, us); st.Cache.Status != "ONLINE" || st.Cache.Hits < 1 || st.Database.Status != "ONLINE" || st.Database.Users != 1 {
		t.Fatalf("stats with redis up: %+v", st)
	}

	// Redis killed: reads still answer, from SQLite, and /stats says so.
	s.Redis.Kill()
	for i := 0; i < 20; i++ {
		if u := getUser(t, us, alice.ID, token); u.Email != "alice@example.com" {
			t.Fatalf("read with redis down: %+v", u)
		}
	}
	waitCache(t, us, "OFFLINE", 5*time.Second)
	if r := httpc.Do(t, "GET", us+"/readyz", nil); r.Status != 200 {
		t.Errorf("readyz with redis down: %d, want 200 (redis is optional)", r.Status)
	}
	patchEmail(t, us, alice.ID, token, "alice-2@example.com")
	if u := getUser(t, us, alice.ID, token); u.Email != "alice-2@example.com" {
		t.Errorf("read after update with redis down: %q", u.Email)
	}

	// Redis back: ONLINE again, and never a stale read.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Redis.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitCache(t, us, "ONLINE", 15*time.Second)
	for i := 0; i < 3; i++ {
		if u := getUser(t, us, alice.ID, token); u.Email != "alice-2@example.com" {
			t.Fatalf("read %d after redis restart: %q, want alice-2@example.com", i, u.Email)
		}
	}
	patchEmail(t, us, alice.ID, token, "alice-3@example.com")
	for i := 0; i < 3; i++ {
		if u := getUser(t, us, alice.ID, token); u.Email != "alice-3@example.com" {
			t.Fatalf("read %d after update: %q, want alice-3@example.com (stale cache)", i, u.Email)
		}
	}
	r := httpc.Do(t, "GET", us+"/api/users/by-username/ALICE", nil, "Authorization", "Bearer "+token)
	var byName user
	r.JSON(t, &byName)
	if r.Status != 200 || byName.Email != "alice-3@example.com" {
		t.Errorf("by username after update: %d %s", r.Status, r.Body)
	}
	if st := userStats(t, us); st.Cache.Hits < 2 {
		t.Errorf("cache not used after recovery: %+v", st.Cache)
	}
}

// TestKill9KeepsAcknowledgedUsers: concurrent registrations, user-service
// SIGKILLed in the middle; after a restart every user that got a 201 exists.
func TestKill9KeepsAcknowledgedUsers(t *testing.T) {
	s := stacktest.Start(t)
	us := s.URL("user-service")

	const workers, perWorker = 8, 200
	var (
		mu    sync.Mutex
		acked = map[string]int64{}
		count atomic.Int64
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < perWorker; i++ {
				name := fmt.Sprintf("w%d-user%d", w, i)
				r, err := httpc.Try("POST", us+"/api/users", map[string]string{
					"username": name, "email": name + "@example.com", "password": "password-" + name,
				})
				if err != nil {
					return // the process is gone
				}
				if r.Status == http.StatusCreated {
					var u user
					_ = json.Unmarshal(r.Body, &u) // a zero id is checked by name only
					mu.Lock()
					acked[name] = u.ID
					mu.Unlock()
					count.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for count.Load() < 40 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.Proc("user-service").Kill()
	wg.Wait()
	if len(acked) < 20 {
		t.Fatalf("only %d registrations acknowledged before the kill; the test needs more", len(acked))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Proc("user-service").Restart(ctx); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for name, id := range acked {
		r := httpc.Do(t, "GET", us+"/api/users/by-username/"+name, nil)
		var u user
		if r.Status == 200 {
			r.JSON(t, &u)
		}
		if r.Status != 200 || (id != 0 && u.ID != id) {
			missing++
			t.Errorf("acknowledged user %s (id %d): got %d %s", name, id, r.Status, r.Body)
		}
	}
	t.Logf("%d registrations acknowledged before kill -9, %d missing after restart", len(acked), missing)
	if st := userStats(t, us); st.Database.Users < int64(len(acked)) {
		t.Errorf("database.users %d < %d acknowledged", st.Database.Users, len(acked))
	}
	// The stack still works end to end after the restart.
	var one string
	for name := range acked {
		one = name
		break
	}
	login(t, s.URL("auth-service"), one)
}
