// Package compose_test proves the stack under docker-compose, as a user runs
// it: `docker-compose up --build` (Compose v1) and `docker compose up
// --build` (v2), checked through http://127.0.0.1:7100 only. It needs a
// Docker engine and the base images, so it runs only from
// containers/compose-e2e.sh (`make compose-e2e`), which sets
// TITANIUM_COMPOSE_E2E=1; `make test` skips it.
package compose_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"titanium/devstack"
	"titanium/e2e/deployed"
)

// base is the published load balancer. 127.0.0.1 rather than localhost: the
// port is published on IPv4 loopback, and localhost may resolve to ::1 first.
const (
	base    = "http://127.0.0.1:7100"
	origin  = "http://localhost:7100"
	project = "titanium" // COMPOSE_PROJECT_NAME in .env
)

// services are the long-running services; each must become healthy.
var services = []string{"redis", "user-service", "auth-service", "blog-service", "api-gateway", "dashboard-ui", "load-balancer"}

// compose runs one Compose implementation from the repository root.
type compose struct {
	name string   // for the summary
	argv []string // docker-compose, or docker compose
	root string
}

func (c compose) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.argv[0], append(c.argv[1:], args...)...)
	cmd.Dir = c.root
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs a compose command bounded by limit and returns its output,
// failing the test when it fails.
func (c compose) run(t testing.TB, limit time.Duration, args ...string) string {
	t.Helper()
	out, err := c.try(limit, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", c.name, strings.Join(args, " "), err, tail(out, 60))
	}
	return out
}

func (c compose) try(limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := c.cmd(ctx, args...).CombinedOutput()
	return string(out), err
}

// docker runs the docker client (engine.sh's choice, in $DOCKER).
func docker(t testing.TB, limit time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerBin(), args...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 40))
	}
	return strings.TrimSpace(string(out))
}

func dockerBin() string {
	if d := os.Getenv("DOCKER"); d != "" {
		return d
	}
	return "docker"
}

// containerID is the id of a service's (single) container.
func (c compose) containerID(t testing.TB, service string) string {
	t.Helper()
	id := strings.TrimSpace(c.run(t, 30*time.Second, "ps", "-q", service))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("%s: want one container of %s, got %q", c.name, service, id)
	}
	return id
}

// waitHealthy waits until every service's container is running and healthy.
func (c compose) waitHealthy(t testing.TB, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for {
		var bad []string
		for _, s := range services {
			id, _ := c.try(30*time.Second, "ps", "-q", s)
			id = strings.TrimSpace(id)
			if id == "" {
				bad = append(bad, s+": no container")
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			out, err := exec.CommandContext(ctx, dockerBin(), "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", id).Output()
			cancel()
			if st := strings.TrimSpace(string(out)); err != nil || st != "running healthy" {
				bad = append(bad, s+": "+st)
			}
		}
		if len(bad) == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			logs, _ := c.try(time.Minute, "logs", "--tail=30")
			t.Fatalf("%s: not healthy within %v: %s\n%s", c.name, limit, strings.Join(bad, "; "), tail(logs, 150))
		}
		time.Sleep(2 * time.Second)
	}
}

// leftovers lists what the project still has: containers, volumes, networks,
// and whether anything answers on the published port.
func leftovers(t testing.TB) []string {
	t.Helper()
	var left []string
	filter := "label=com.docker.compose.project=" + project
	for _, what := range [][]string{{"ps", "-a", "-q", "--filter", filter}, {"volume", "ls", "-q", "--filter", filter}, {"network", "ls", "-q", "--filter", filter}} {
		if out := docker(t, 30*time.Second, what...); out != "" {
			left = append(left, what[0]+": "+strings.ReplaceAll(out, "\n", " "))
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:7100", time.Second); err == nil {
		c.Close()
		left = append(left, "something still listens on 127.0.0.1:7100")
	}
	return left
}

// summary collects the rows of the final table.
type summary struct {
	mu   sync.Mutex
	rows [][3]string
}

func (s *summary) add(step, result string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, [3]string{step, result, took.Round(100 * time.Millisecond).String()})
}

func (s *summary) print(t testing.TB) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| step | result | took |\n|---|---|---|\n")
	for _, r := range s.rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
	t.Log(b.String())
}

func TestCompose(t *testing.T) {
	if os.Getenv("TITANIUM_COMPOSE_E2E") != "1" {
		t.Skip("needs a Docker engine: run `make compose-e2e`")
	}
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	sum := &summary{}
	defer sum.print(t)

	v1 := compose{name: "docker-compose (v1)", argv: []string{"docker-compose"}, root: root}
	v2 := compose{name: "docker compose (v2)", argv: []string{dockerBin(), "compose"}, root: root}
	for _, c := range []compose{v1, v2} {
		if out, err := c.try(30*time.Second, "version"); err != nil {
			t.Fatalf("%s is not usable: %v\n%s", c.name, err, out)
		} else {
			sum.add(c.name+" version", strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), 0)
		}
	}
	// A stack an interrupted run left (restart: unless-stopped brings it
	// back with the engine) goes first; anything else on :7100 is not ours.
	v1.run(t, 3*time.Minute, "down", "-v", "--remove-orphans")
	if c, err := net.DialTimeout("tcp", "127.0.0.1:7100", time.Second); err == nil {
		c.Close()
		t.Fatal("something already listens on 127.0.0.1:7100 (make run?); stop it first")
	}

	ok := t.Run("v1", func(t *testing.T) { fullRun(t, v1, root, sum) })
	if !ok {
		return
	}
	t.Run("v2", func(t *testing.T) { smokeRun(t, v2, sum) })
	t.Log("image sizes:\n" + docker(t, 30*time.Second, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.Size}}", "titanium/*"))
}

// up brings the stack up with c and waits for it to be healthy.
func up(t *testing.T, c compose, sum *summary) {
	start := time.Now()
	c.run(t, 20*time.Minute, "up", "--build", "-d")
	sum.add(c.name+": up --build -d", "ok", time.Since(start))
	took := c.waitHealthy(t, 4*time.Minute)
	sum.add(c.name+": every container healthy", fmt.Sprintf("%d services", len(services)), took)
}

// down takes the stack down with its volumes and checks nothing is left.
func down(t *testing.T, c compose, sum *summary) {
	start := time.Now()
	c.run(t, 3*time.Minute, "down", "-v", "--remove-orphans")
	if left := leftovers(t); len(left) > 0 {
		t.Errorf("%s: after down -v: %s", c.name, strings.Join(left, "; "))
		sum.add(c.name+": down -v", "LEFTOVERS", time.Since(start))
		return
	}
	sum.add(c.name+": down -v", "nothing left", time.Since(start))
}

// fullRun is every check, under Compose v1.
func fullRun(t *testing.T, c compose, root string, sum *summary) {
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("COMPOSE_E2E_KEEP") == "1" {
			t.Log("COMPOSE_E2E_KEEP=1: the stack is left up")
			return
		}
		down(t, c, sum)
	})
	up(t, c, sum)

	step := func(name string, f func(t *testing.T) string) {
		start := time.Now()
		var result string
		if !t.Run(name, func(t *testing.T) { result = f(t) }) {
			sum.add(name, "FAIL", time.Since(start))
			t.FailNow()
		}
		sum.add(name, result, time.Since(start))
	}
	var user deployed.User
	var post int64
	step("stats HEALTHY", func(t *testing.T) string {
		s := deployed.WaitStats(t, base, 30*time.Second, "/stats HEALTHY", deployed.Stats.Healthy)
		return fmt.Sprintf("%s, %d/%d, db %s, cache %s", s.Status, s.ActiveServices, s.TotalServices, s.Database.Status, s.Cache.Status)
	})
	step("users journey", func(t *testing.T) string {
		user, post = deployed.Journey(t, base)
		return "register, login, create, edit, delete, list"
	})
	step("dashboard and blog pages", func(t *testing.T) string {
		deployed.Pages(t, base)
		rows := deployed.Dashboard(t, base, 5)
		return fmt.Sprintf("Chromium: HEALTHY 5/5, %d instance rows", len(rows))
	})
	step("WebSocket heartbeat clears IDLE", func(t *testing.T) string {
		deployed.HeartbeatClearsIdle(t, base, origin)
		return "IDLE, then live"
	})
	step("mixed_load.sh 30 s", func(t *testing.T) string {
		res := deployed.MixedLoad(t, root, "", base, 30*time.Second)
		return fmt.Sprintf("%d sent, %d failed (%.2f%%)", res.Sent, res.Failed, res.FailurePct)
	})
	step("restart user-service blog-service", func(t *testing.T) string {
		c.run(t, 2*time.Minute, "restart", "user-service", "blog-service")
		c.waitHealthy(t, 2*time.Minute)
		deployed.WaitStats(t, base, 30*time.Second, "/stats HEALTHY after restart", deployed.Stats.Healthy)
		if ok, err := deployed.UserExists(base, user.ID); !ok || err != nil {
			t.Errorf("user %d after restart: exists=%v err=%v", user.ID, ok, err)
		}
		if !deployed.PostExists(t, base, post) {
			t.Errorf("post %d gone after restart", post)
		}
		return "user and post kept"
	})
	var acked []int64
	step("kill -9 user-service during registrations", func(t *testing.T) string {
		acked = killDuringRegistrations(t, c)
		return fmt.Sprintf("%d acknowledged users, all kept", len(acked))
	})
	step("users.db backup", func(t *testing.T) string {
		return backup(t, c, len(acked))
	})
}

// killDuringRegistrations registers users while user-service is killed with
// SIGKILL and started again; every registration answered 201 must exist
// afterwards.
func killDuringRegistrations(t *testing.T, c compose) []int64 {
	id := c.containerID(t, "user-service")
	var (
		mu     sync.Mutex
		acked  []int64
		status = map[int]int{}
	)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200 && ctx.Err() == nil; i++ {
				uid, code, err := deployed.Register(base, fmt.Sprintf("kill%d-%d-%d", time.Now().UnixNano()%1e9, w, i))
				mu.Lock()
				if err == nil && code == http.StatusCreated {
					acked = append(acked, uid)
				}
				status[code]++
				n := len(acked)
				mu.Unlock()
				select {
				case <-killed:
					if n >= 20 {
						return
					}
				default:
				}
				time.Sleep(50 * time.Millisecond)
			}
		}(w)
	}
	// Kill once a few registrations went through, then start it again.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 8 {
			break
		}
	}
	docker(t, 30*time.Second, "kill", "-s", "KILL", id)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	docker(t, time.Minute, "start", id)
	close(killed)
	c.waitHealthy(t, 2*time.Minute)
	deployed.WaitStats(t, base, 30*time.Second, "/stats HEALTHY after the kill", deployed.Stats.Healthy)
	// Registrations after the restart, so the run proves both sides.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= before+5 {
			break
		}
	}
	cancel()
	wg.Wait()
	t.Logf("registrations: %d acknowledged (%d before the kill); statuses %v", len(acked), before, status)
	if before == 0 || len(acked) <= before {
		t.Fatalf("want registrations acknowledged before and after the kill: %d before, %d in all", before, len(acked))
	}
	var lost []int64
	for _, uid := range acked {
		if ok, err := deployed.UserExists(base, uid); err != nil {
			t.Fatalf("user %d: %v", uid, err)
		} else if !ok {
			lost = append(lost, uid)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged users lost after kill -9: %v", len(lost), len(acked), lost)
	}
	return acked
}

var backupName = regexp.MustCompile(`^users\.db\.\d{4}-\d{2}-\d{2}-\d{6}$`)

// backup runs the users-backup service in a container, copies the backup
// volume out, and checks the newest file's name, integrity and content.
func backup(t *testing.T, c compose, minUsers int) string {
	out := c.run(t, 2*time.Minute, "--profile", "backup", "run", "--rm", "users-backup")
	t.Logf("users-backup:\n%s", tail(out, 20))
	dir := t.TempDir()
	name := fmt.Sprintf("titanium-backup-copy-%d", time.Now().UnixNano())
	docker(t, 30*time.Second, "create", "--name", name, "-v", project+"_users-backup:/backup:ro", "titanium/user-service:local")
	defer docker(t, 30*time.Second, "rm", name)
	docker(t, time.Minute, "cp", name+":/backup/.", dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if backupName.MatchString(e.Name()) {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		t.Fatalf("no users.db.YYYY-mm-dd-HHMMSS in the backup volume: %v", entries)
	}
	sort.Strings(files)
	newest := filepath.Join(dir, files[len(files)-1])
	db, err := sql.Open("sqlite3", "file:"+newest+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of %s: %q %v", files[len(files)-1], check, err)
	}
	var users int
	if err := db.QueryRow("SELECT count(*) FROM users").Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users < minUsers {
		t.Errorf("backup holds %d users, want at least %d", users, minUsers)
	}
	return fmt.Sprintf("%s: integrity ok, %d users", files[len(files)-1], users)
}

// smokeRun brings the stack up with Compose v2 and checks /stats.
func smokeRun(t *testing.T, c compose, sum *summary) {
	t.Cleanup(func() { down(t, c, sum) })
	up(t, c, sum)
	start := time.Now()
	s := deployed.WaitStats(t, base, 30*time.Second, "/stats HEALTHY", deployed.Stats.Healthy)
	sum.add(c.name+": stats", fmt.Sprintf("%s, %d/%d", s.Status, s.ActiveServices, s.TotalServices), time.Since(start))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(lines, "\n"))))
}
