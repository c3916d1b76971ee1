package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"titanium/devstack"
	"titanium/e2e/httpc"
	"titanium/e2e/loadgen"
)

// TestLoadScripts runs the seed's load scripts through the NodePort exactly
// as the docs quote them: mixed_load.sh at the seed's rates for 60 s under
// 2 % failure, then mixed_load_plus.sh and its --cleanup.
func TestLoadScripts(t *testing.T) {
	state := t.TempDir() // the scripts' TMPDIR: their id state file
	out := runScript(t, state, "mixed_load.sh", "--url", lb, "--duration", "60s",
		"--rate-list", "64", "--rate-detail", "12", "--rate-create", "4")
	checkFailureRate(t, "mixed_load.sh", out)

	out = runScript(t, state, "mixed_load_plus.sh", "--url", lb, "--duration", "20s")
	checkFailureRate(t, "mixed_load_plus.sh", out)
	if !regexp.MustCompile(`(?m)^cleanup: deleted=\d+ already_gone=0 failed=0$`).MatchString(out) {
		t.Errorf("mixed_load_plus.sh: no clean cleanup line in its output")
	}
	out = runScript(t, state, "mixed_load_plus.sh", "--url", lb, "--cleanup")
	if !regexp.MustCompile(`(?m)^cleanup: deleted=\d+ already_gone=0 failed=0$`).MatchString(out) {
		t.Errorf("mixed_load_plus.sh --cleanup: no clean cleanup line in its output")
	}
}

// runScript runs a load-tests script with dash (bounded to 5 minutes),
// requires exit 0 and returns its combined output.
func runScript(t *testing.T, tmp, script string, args ...string) string {
	t.Helper()
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dash", append([]string{filepath.Join(root, "load-tests", script)}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	t.Logf("%s %s:\n%s", script, strings.Join(args, " "), out.String())
	if err != nil {
		t.Fatalf("%s %v: %v", script, args, err)
	}
	return out.String()
}

var totalRE = regexp.MustCompile(`(?m)^total\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s`)

// checkFailureRate reads the total row of a script's summary: under 2 %.
func checkFailureRate(t *testing.T, script, out string) {
	t.Helper()
	m := totalRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no total row in its output", script)
	}
	pct, _ := strconv.ParseFloat(m[4], 64)
	t.Logf("%s: sent %s, failed %s (%.2f%%)", script, m[1], m[3], pct)
	if pct >= 2 {
		t.Errorf("%s: failure rate %.2f%%, want < 2%%", script, pct)
	}
}

// account is a user registered for a test, with a token.
type account struct{ name, password, bearer string }

func register(t testing.TB, prefix string) account {
	t.Helper()
	a := account{name: fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9), password: "Cluster-e2e-pw-1234"}
	r := httpc.Do(t, http.MethodPost, lb+"/api/users", map[string]string{"username": a.name, "email": a.name + "@example.com", "password": a.password})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: got %d %s, want 201", a.name, r.Status, r.Body)
	}
	r = httpc.Do(t, http.MethodPost, lb+"/api/auth/login", map[string]string{"username": a.name, "password": a.password})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: got %d %s, want 200", a.name, r.Status, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &tok)
	a.bearer = "Bearer " + tok.AccessToken
	return a
}

// jsonBody makes a loadgen body of v.
func jsonBody(v any) func() io.Reader {
	b, _ := json.Marshal(v)
	return func() io.Reader { return bytes.NewReader(b) }
}

// TestRolloutRestartUnderLoad restarts api-gateway, then auth-service, with
// `kubectl rollout restart` while traffic that crosses them flows through the
// NodePort: reads, logins (gateway -> auth -> user-service) and token checks.
// Not one request may fail: readiness, preStop/SHUTDOWN_DELAY and the PDBs
// must hand traffic over cleanly.
func TestRolloutRestartUnderLoad(t *testing.T) {
	a := register(t, "rollout")
	for _, deploy := range []string{"api-gateway", "auth-service"} {
		t.Run(deploy, func(t *testing.T) {
			// A fixed window, not a cancel: a cancelled run would count its
			// requests in flight as failures. It covers 5 s of traffic before
			// the restart, the rollout, and the old pods' shutdown after it.
			const window = 75 * time.Second
			var res *loadgen.Result
			done := make(chan struct{})
			go func() {
				defer close(done)
				res = loadgen.Run(context.Background(), loadgen.Plan{
					Rate: 40, Duration: window, Timeout: 10 * time.Second,
					Ops: []loadgen.Op{
						// Logins stay under auth-service's per-address limit
						// (every request arrives from the node's address).
						{Name: "list", Weight: 6, Do: loadgen.Request(http.MethodGet, lb+"/api/posts?limit=10", nil)},
						{Name: "login", Weight: 1, Do: loadgen.Request(http.MethodPost, lb+"/api/auth/login",
							jsonBody(map[string]string{"username": a.name, "password": a.password}), "Content-Type", "application/json")},
						{Name: "verify", Weight: 3, Do: loadgen.Request(http.MethodGet, lb+"/api/auth/verify", nil, "Authorization", a.bearer)},
					},
				})
			}()
			time.Sleep(5 * time.Second) // traffic established before the restart
			start := time.Now()
			kubectl(t, "-n", ns, "rollout", "restart", "deployment/local-"+deploy)
			kubectl(t, "-n", ns, "rollout", "status", "deployment/local-"+deploy, "--timeout=180s")
			took := time.Since(start)
			if took > window-30*time.Second {
				t.Errorf("the rollout took %v: too long for the %v load window to cover the old pods' shutdown", took, window)
			}
			<-done
			sent, ok, failed := res.Totals()
			t.Logf("rollout of %s took %v; requests: sent %d, ok %d, failed %d\n%s", deploy, took.Round(time.Second), sent, ok, failed, res)
			if sent < 100 {
				t.Errorf("only %d requests sent during the rollout", sent)
			}
			if failed != 0 {
				t.Errorf("%d of %d requests failed during the rollout of %s; want 0", failed, sent, deploy)
			}
		})
	}
	waitStatsMatch(t, 60*time.Second)
}

// TestDeleteUserServicePodDuringRegistrations deletes a user-service pod
// while users register through the NodePort; every registration that was
// acknowledged (201) must be there afterwards, found by its username.
func TestDeleteUserServicePodDuringRegistrations(t *testing.T) {
	reader := register(t, "reader")
	victim := runningPods(t)["user-service"]
	if len(victim) == 0 {
		t.Fatal("no user-service pod")
	}
	prefix := fmt.Sprintf("del%d-", time.Now().Unix()%1e6)
	const password = "Cluster-e2e-pw-1234"
	var (
		mu      sync.Mutex
		acked   []string
		refused = map[int]int{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 2000; i++ {
				name := fmt.Sprintf("%s%d-%d", prefix, w, i)
				r, err := httpc.Try(http.MethodPost, lb+"/api/users", map[string]string{"username": name, "email": name + "@example.com", "password": password})
				mu.Lock()
				switch {
				case err != nil:
					refused[0]++
				case r.Status == http.StatusCreated:
					acked = append(acked, name)
				default:
					refused[r.Status]++
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}(w)
	}
	time.Sleep(5 * time.Second)
	kubectl(t, "-n", ns, "delete", "pod", victim[0].Metadata.Name, "--wait=false")
	t.Logf("deleted %s during registrations", victim[0].Metadata.Name)
	kubectl(t, "-n", ns, "rollout", "status", "deployment/local-user-service", "--timeout=180s")
	time.Sleep(25 * time.Second) // past the deleted pod's grace period
	cancel()
	wg.Wait()
	t.Logf("registrations acknowledged: %d; not acknowledged (status: count, 0 = transport error): %v", len(acked), refused)
	if len(acked) < 50 {
		t.Fatalf("only %d registrations acknowledged", len(acked))
	}
	var lost []string
	for _, name := range acked {
		r, err := httpc.Try(http.MethodGet, lb+"/api/users/by-username/"+name, nil, "Authorization", reader.bearer)
		if err != nil || r.Status != http.StatusOK {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged users missing after the pod deletion: %v", len(lost), len(acked), lost[:min(len(lost), 10)])
	}
}
