// Package loadtests runs the seed's load-test scripts (load-tests/*.sh) with
// dash against the real stack, at the seed's rates, and checks what they
// report and what they leave behind.
package loadtests

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"titanium/devstack"
	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

// post is the part of a blog post the checks need.
type post struct {
	ID     int64  `json:"id"`
	Title  string `json:"title"`
	Author string `json:"author"`
}

// TestLoadScripts runs mixed_load.sh, then mixed_load_plus.sh, then
// mixed_load_plus.sh --cleanup against one stack, each for 10 s at the
// seed's rates, and checks the reports, the failure rate, and that each
// cleanup removed exactly the posts it owns.
func TestLoadScripts(t *testing.T) {
	for _, tool := range []string{"dash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install %s); the load scripts need it", tool, tool)
		}
	}
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t)
	lb := s.LB()
	state := t.TempDir() // the scripts' TMPDIR: their id state file lives there

	// A bystander: its post must survive every cleanup.
	otherAuth := registerAndLogin(t, lb, fmt.Sprintf("bystander%d", time.Now().UnixNano()%1e9))
	r := httpc.Do(t, http.MethodPost, lb+"/api/posts", map[string]string{"title": "seed-bystander", "content": "not the load test's"}, "Authorization", otherAuth)
	if r.Status != http.StatusCreated {
		t.Fatalf("create bystander post: got %d %s, want 201", r.Status, r.Body)
	}
	var bystander post
	r.JSON(t, &bystander)

	var mixedUser string
	t.Run("mixed_load", func(t *testing.T) {
		out := runScript(t, root, state, "mixed_load.sh", 0,
			"--url", lb, "--duration", "10s", "--rate-list", "64", "--rate-detail", "12", "--rate-create", "4")
		checkSummary(t, out, map[string]int{"list": 640, "detail": 120, "create": 40})
		mixedUser = testUser(t, out)
		posts := allPosts(t, lb)
		if got, want := countBy(posts, mixedUser), 5+40; got != want {
			t.Errorf("posts by %s after mixed_load.sh: got %d, want %d (5 seed + 40 created; it keeps them)", mixedUser, got, want)
		}
		ids := readStateIDs(t, state)
		if len(ids) != 45 {
			t.Errorf("state file holds %d ids, want 45", len(ids))
		}
	})

	t.Run("mixed_load_plus", func(t *testing.T) {
		before := allPosts(t, lb)
		out := runScript(t, root, state, "mixed_load_plus.sh", 0,
			"--url", lb, "--duration", "10s", "--rate-list", "40", "--rate-detail", "15",
			"--rate-create", "8", "--rate-update", "4", "--rate-delete", "3")
		checkSummary(t, out, map[string]int{"list": 400, "detail": 150, "create": 80, "update": 40, "delete": 30})
		if !regexp.MustCompile(`(?m)^cleanup: deleted=\d+ already_gone=0 failed=0$`).MatchString(out) {
			t.Errorf("no clean cleanup line in output:\n%s", out)
		}
		user := testUser(t, out)
		after := allPosts(t, lb)
		if n := countBy(after, user); n != 0 {
			t.Errorf("%d posts by the run's user %s remain after its cleanup, want 0", n, user)
		}
		// Everything else is untouched: exactly the posts that existed before.
		if missing, extra := diffIDs(before, after); len(missing) > 0 || len(extra) > 0 {
			t.Errorf("posts not of this run changed: missing %v, extra %v", missing, extra)
		}
		// Its ids are no longer in the state file; mixed_load.sh's still are.
		if ids := readStateIDs(t, state); len(ids) != 45 {
			t.Errorf("state file holds %d ids after the plus run, want mixed_load.sh's 45", len(ids))
		}
	})

	t.Run("cleanup_only", func(t *testing.T) {
		before := allPosts(t, lb)
		out := runScript(t, root, state, "mixed_load_plus.sh", 0, "--url", lb, "--cleanup")
		if !strings.Contains(out, "cleanup: deleted=45 already_gone=0 failed=0") {
			t.Errorf("cleanup output: want deleted=45 already_gone=0 failed=0, got:\n%s", out)
		}
		after := allPosts(t, lb)
		if mixedUser != "" && countBy(after, mixedUser) != 0 {
			t.Errorf("posts by %s remain after --cleanup", mixedUser)
		}
		if got, want := len(after), len(before)-countBy(before, mixedUser); got != want {
			t.Errorf("posts after --cleanup: got %d, want %d", got, want)
		}
		found := false
		for _, p := range after {
			found = found || p.ID == bystander.ID
		}
		if !found {
			t.Errorf("the bystander's post %d was deleted", bystander.ID)
		}
		if ids := readStateIDs(t, state); len(ids) != 0 {
			t.Errorf("state file still holds %d ids after --cleanup", len(ids))
		}
	})

	t.Run("bad_usage", func(t *testing.T) {
		for _, tc := range []struct {
			script string
			args   []string
			want   string
		}{
			{"mixed_load.sh", []string{"--rate-list", "ten"}, "not a whole number"},
			{"mixed_load.sh", []string{"--rate-update", "3"}, "unknown flag --rate-update"},
			{"mixed_load.sh", []string{"--duration", "soon"}, "not a duration"},
			{"mixed_load_plus.sh", []string{"--bogus"}, "unknown flag"},
			{"mixed_load_plus.sh", []string{"--url", closedURL(t), "--duration", "1s"}, "cannot reach"},
		} {
			out := runScript(t, root, state, tc.script, 2, tc.args...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s %v: want %q in output, got:\n%s", tc.script, tc.args, tc.want, out)
			}
		}
		if out := runScript(t, root, state, "mixed_load_plus.sh", 0, "--help"); !strings.Contains(out, "--rate-delete") {
			t.Errorf("--help does not list --rate-delete:\n%s", out)
		}
	})
}

// runScript runs a load-tests script with dash (bounded to 2 minutes) and
// returns its combined output, failing unless it exits wantCode.
func runScript(t *testing.T, root, tmp, script string, wantCode int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dash", append([]string{filepath.Join(root, "load-tests", script)}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out\n%s", script, args, out.String())
	}
	if code != wantCode {
		t.Fatalf("%s %v: exit %d (%v), want %d\n%s", script, args, code, err, wantCode, out.String())
	}
	t.Logf("%s %v:\n%s", script, args, out.String())
	return out.String()
}

var rowRE = regexp.MustCompile(`(?m)^(list|detail|create|update|delete|total)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s`)

// checkSummary checks the per-operation table (each op sent exactly its
// scheduled count, failures < 2 %) and the /stats section.
func checkSummary(t *testing.T, out string, wantSent map[string]int) {
	t.Helper()
	rows := map[string][]string{}
	for _, m := range rowRE.FindAllStringSubmatch(out, -1) {
		rows[m[1]] = m
	}
	total := 0
	for op, want := range wantSent {
		row, ok := rows[op]
		if !ok {
			t.Errorf("no summary row for %s in:\n%s", op, out)
			continue
		}
		if got, _ := strconv.Atoi(row[2]); got != want {
			t.Errorf("%s sent: got %d, want %d (rate x 10 s)", op, got, want)
		}
		total += want
	}
	tot, ok := rows["total"]
	if !ok {
		t.Fatalf("no total row in:\n%s", out)
	}
	if got, _ := strconv.Atoi(tot[2]); got != total {
		t.Errorf("total sent: got %d, want %d", got, total)
	}
	if pct, _ := strconv.ParseFloat(tot[5], 64); pct >= 2 {
		t.Errorf("failure rate %.2f%%, want < 2%%", pct)
	}
	for _, want := range []string{"p50_ms", "p95_ms", "rate/s", "failure rate:", "OK: failure rate"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The LB's /stats, pretty-printed by jq or as "name: value" lines without it.
	for _, re := range []string{`"?requests_per_second"?: [0-9.]+`, `"?avg_response_time_ms"?: [0-9.]+`,
		`"?success_rate"?: [0-9.]+`, `"?has_real_traffic"?: true`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks /stats field matching %s", re)
		}
	}
}

var userRE = regexp.MustCompile(`test user (\S+) registered`)

func testUser(t *testing.T, out string) string {
	t.Helper()
	m := userRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no test user line in output")
	}
	return m[1]
}

// allPosts pages through GET /api/posts (bounded: at most 100 pages).
func allPosts(t *testing.T, lb string) []post {
	t.Helper()
	var all []post
	cursor := ""
	for page := 0; page < 100; page++ {
		u := lb + "/api/posts?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		r := httpc.Do(t, http.MethodGet, u, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, r.Status, r.Body)
		}
		var body struct {
			Items      []post  `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.JSON(t, &body)
		all = append(all, body.Items...)
		if body.NextCursor == nil || *body.NextCursor == "" {
			return all
		}
		cursor = *body.NextCursor
	}
	t.Fatalf("more than 100 pages of posts")
	return nil
}

func countBy(posts []post, author string) int {
	n := 0
	for _, p := range posts {
		if p.Author == author {
			n++
		}
	}
	return n
}

func diffIDs(before, after []post) (missing, extra []int64) {
	in := func(ps []post) map[int64]bool {
		m := map[int64]bool{}
		for _, p := range ps {
			m[p.ID] = true
		}
		return m
	}
	b, a := in(before), in(after)
	for id := range b {
		if !a[id] {
			missing = append(missing, id)
		}
	}
	for id := range a {
		if !b[id] {
			extra = append(extra, id)
		}
	}
	return missing, extra
}

// readStateIDs reads the ids the scripts keep for --cleanup.
func readStateIDs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "titanium-load-*.ids"))
	var ids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if fs := strings.Fields(line); len(fs) == 3 {
				ids = append(ids, fs[0])
			}
		}
	}
	return ids
}

func registerAndLogin(t *testing.T, lb, username string) string {
	t.Helper()
	pw := "Bystander-pw-1234"
	r := httpc.Do(t, http.MethodPost, lb+"/api/users", map[string]string{"username": username, "email": username + "@example.com", "password": pw})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: got %d %s, want 201", username, r.Status, r.Body)
	}
	r = httpc.Do(t, http.MethodPost, lb+"/api/auth/login", map[string]string{"username": username, "password": pw})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: got %d %s, want 200", username, r.Status, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &tok)
	return "Bearer " + tok.AccessToken
}

// closedURL is a loopback URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	p, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", p)
}

// TestCleanupAcrossDeployments: two deployments, one after the other, on the
// same URL (compose down -v, then make run). --cleanup against the second
// must drop the first one's ids, whose user no longer exists, and exit 0,
// instead of keeping them and failing on every later call.
func TestCleanupAcrossDeployments(t *testing.T) {
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	samePort := func(o *devstack.Options) { o.Ports = map[string]int{"load-balancer": port} }
	state := t.TempDir()

	first := stacktest.Start(t, samePort)
	lb := first.LB()
	runScript(t, root, state, "mixed_load.sh", 0,
		"--url", lb, "--duration", "2s", "--rate-list", "4", "--rate-detail", "2", "--rate-create", "2")
	left := readStateIDs(t, state)
	if len(left) != 5+4 {
		t.Fatalf("state file holds %d ids after the first deployment's run, want 9", len(left))
	}
	if bad := first.Stop(15 * time.Second); len(bad) > 0 {
		t.Fatalf("first deployment did not stop cleanly: %v", bad)
	}

	second := stacktest.Start(t, samePort)
	if second.LB() != lb {
		t.Fatalf("second deployment at %s, want the same URL %s", second.LB(), lb)
	}
	auth := registerAndLogin(t, lb, fmt.Sprintf("resident%d", time.Now().UnixNano()%1e9))
	if r := httpc.Do(t, http.MethodPost, lb+"/api/posts", map[string]string{"title": "resident", "content": "of the second deployment"}, "Authorization", auth); r.Status != http.StatusCreated {
		t.Fatalf("create post: %d %s", r.Status, r.Body)
	}
	before := allPosts(t, lb)

	out := runScript(t, root, state, "mixed_load_plus.sh", 0, "--url", lb, "--cleanup")
	for _, want := range []string{"does not exist at " + lb, "cleanup: deleted=0 already_gone=0 failed=0", "dropped=9 ids"} {
		if !strings.Contains(out, want) {
			t.Errorf("--cleanup output lacks %q:\n%s", want, out)
		}
	}
	if ids := readStateIDs(t, state); len(ids) != 0 {
		t.Errorf("state file still holds %d ids", len(ids))
	}
	if missing, extra := diffIDs(before, allPosts(t, lb)); len(missing) > 0 || len(extra) > 0 {
		t.Errorf("the second deployment's posts changed: missing %v, extra %v", missing, extra)
	}
	// And the next call has nothing left to do.
	if out := runScript(t, root, state, "mixed_load_plus.sh", 0, "--url", lb, "--cleanup"); !strings.Contains(out, "nothing to delete") {
		t.Errorf("second --cleanup:\n%s", out)
	}
}
