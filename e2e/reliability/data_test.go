package reliability_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"titanium/bench/loadgen"
	"titanium/devstack"
	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// registerOp registers a fresh user per call and records acknowledged ids.
func registerOp(base string, weight int, ack *acked, locked *atomic.Int64) loadgen.Op {
	hdr := http.Header{"Content-Type": {"application/json"}}
	return loadgen.Op{Name: "register", Weight: weight,
		Target: func(t *loadgen.Target) {
			name := uniqueName("w")
			body, _ := json.Marshal(map[string]string{"username": name, "email": name + "@example.test", "password": "password-" + name})
			t.Method, t.URL, t.Body, t.Header = http.MethodPost, base+"/api/users", body, hdr
		},
		Answer: func(status int, data []byte) {
			if status == http.StatusCreated {
				var u struct {
					ID int64 `json:"id"`
				}
				if json.Unmarshal(data, &u) == nil {
					ack.add(u.ID)
				}
			}
			countLocked(locked, data)
		}}
}

// countLocked counts an answer that says the database was locked.
func countLocked(locked *atomic.Int64, data []byte) {
	if locked != nil && bytes.Contains(bytes.ToLower(data), []byte("locked")) {
		locked.Add(1)
	}
}

// buildTool builds a command of the repository into a temp dir.
func buildTool(t testing.TB, pkg string) string {
	t.Helper()
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// checkIDs opens a SQLite file read-only, runs integrity_check, and returns
// the ids of table as a set plus whether they form the gap-free prefix 1..max.
func checkIDs(t testing.TB, path, table string) (ids map[int64]bool, maxID int64, gapFree bool) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ic string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ic); err != nil || ic != "ok" {
		t.Errorf("%s: integrity_check %q %v", filepath.Base(path), ic, err)
	}
	rows, err := db.Query("SELECT id FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	defer rows.Close()
	ids = map[int64]bool{}
	gapFree = true
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
		if id != maxID+1 {
			gapFree = false
		}
		maxID = id
	}
	return ids, maxID, gapFree
}

func r5Backup(t *testing.T, p profile, rep *report) {
	backupBin := buildTool(t, "./user-service/cmd/users-backup")
	s := stacktest.Start(t)
	base := s.LB()
	// Users to update: registration is bcrypt-bound, so most writes are updates.
	type user struct {
		id    int64
		token string
	}
	var users []user
	for i := 0; i < 10; i++ {
		id, tok := registerAndLogin(t, base, uniqueName("bk"))
		users = append(users, user{id, tok})
	}
	var locked atomic.Int64
	ack := &acked{}
	update := loadgen.Op{Name: "update", Weight: 19,
		Target: func(t *loadgen.Target) {
			u := users[rand.IntN(len(users))]
			body, _ := json.Marshal(map[string]string{"email": uniqueName("e") + "@example.test"})
			t.Method, t.URL, t.Body = http.MethodPatch, fmt.Sprintf("%s/api/users/%d", base, u.id), body
			t.Header = http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + u.token}}
		},
		Answer: func(_ int, data []byte) { countLocked(&locked, data) }}
	const rate = 200
	done := runLoad(context.Background(), loadgen.Spec{Rate: rate, Duration: p.r5Load}, update, registerOp(base, 1, ack, &locked))

	backupDir := t.TempDir()
	src := filepath.Join(s.DataDir(), "users.db")
	var backups int
	deadline := time.Now().Add(p.r5Load - time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command(backupBin, "-source", src, "-dir", backupDir, "-keep", "1000").CombinedOutput()
		if err != nil {
			t.Fatalf("users-backup: %v\n%s", err, out)
		}
		backups++
		// Backup names have one-second resolution.
		time.Sleep(1100 * time.Millisecond)
	}
	res := <-done
	files, _ := filepath.Glob(filepath.Join(backupDir, "users.db.*"))
	if len(files) != backups {
		t.Errorf("backups: %d runs, %d files %v", backups, len(files), files)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("temporary file left behind: %s", f)
			continue
		}
		if _, maxID, gapFree := checkIDs(t, f, "users"); !gapFree {
			t.Errorf("%s: user ids are not a gap-free prefix 1..%d", filepath.Base(f), maxID)
		}
	}
	sent, _, failed := res.Totals()
	if failed > 0 || locked.Load() > 0 {
		t.Errorf("writes during backups: %d failed, %d 'database is locked' answers, want 0\n%s", failed, locked.Load(), res)
	}
	// Every acknowledged registration is in the live database.
	live, _, _ := checkIDs(t, src, "users")
	var lost int64
	for _, id := range ack.list() {
		if !live[id] {
			lost++
		}
	}
	rep.add(t, row{Scenario: "R5 backup under writes", Load: fmt.Sprintf("%d writes/s (19:1 update:register), %s", rate, p.r5Load),
		Fault: fmt.Sprintf("%d online backups", backups), Sent: sent, Failures: failed + locked.Load(), Lost: lost,
		Detail: fmt.Sprintf("%d backups, each integrity_check ok with gap-free ids; 0 'locked' errors", len(files))})
}

func r6KillWriters(t *testing.T, p profile, rep *report) {
	s := stacktest.Start(t)
	f := newFixture(t, s)
	users, posts := &acked{}, &acked{}
	create := f.createOp(posts)
	create.Weight = 10
	done := runLoad(context.Background(), loadgen.Spec{Rate: 110, Duration: p.r6Load}, registerOp(f.base, 1, users, nil), create)
	time.Sleep(p.r6Load / 2)
	us, bs := s.Proc("user-service"), s.Proc("blog-service")
	us.Kill()
	bs.Kill()
	// Back as fast as a supervisor would bring them; the load goes on.
	restart(t, us)
	restart(t, bs)
	res := <-done

	var lost int64
	for _, id := range users.list() {
		if r := httpc.Do(t, http.MethodGet, fmt.Sprintf("%s/api/users/%d", f.base, id), nil); r.Status != http.StatusOK {
			lost++
			t.Errorf("acknowledged user %d: got %d after restart", id, r.Status)
		}
	}
	for _, id := range posts.list() {
		if r := httpc.Do(t, http.MethodGet, fmt.Sprintf("%s/api/posts/%d", f.base, id), nil); r.Status != http.StatusOK {
			lost++
			t.Errorf("acknowledged post %d: got %d after restart", id, r.Status)
		}
	}
	checkIDs(t, filepath.Join(s.DataDir(), "users.db"), "users")
	checkIDs(t, filepath.Join(s.DataDir(), "posts.db"), "posts")
	sent, _, failed := res.Totals()
	rep.add(t, row{Scenario: "R6 kill -9 writers", Load: fmt.Sprintf("110 writes/s (1:10 register:post), %s", p.r6Load),
		Fault: "kill -9 user-service and blog-service", Sent: sent, Failures: failed, Lost: lost,
		Detail: fmt.Sprintf("%d users and %d posts acknowledged, all present after restart; integrity_check ok; the failures are the requests that met the two dead processes before they restarted", len(users.list()), len(posts.list()))})
}
