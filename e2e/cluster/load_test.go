package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"titanium/bench/loadgen"
	"titanium/devstack"
	"titanium/e2e/deployed"
	"titanium/e2e/httpc"
)

// TestLoadScripts runs the seed's load scripts through the NodePort exactly
// as the docs quote them: mixed_load.sh at the seed's rates for 60 s under
// 2 % failure, then mixed_load_plus.sh and its --cleanup.
func TestLoadScripts(t *testing.T) {
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir() // the scripts' TMPDIR: their id state file
	res := deployed.MixedLoad(t, root, state, lb, 60*time.Second)
	t.Logf("mixed_load.sh: sent %d, failed %d (%.2f%%)", res.Sent, res.Failed, res.FailurePct)

	res = deployed.LoadScript(t, root, state, "mixed_load_plus.sh", 5*time.Minute, "--url", lb, "--duration", "20s")
	t.Logf("mixed_load_plus.sh: sent %d, failed %d (%.2f%%)", res.Sent, res.Failed, res.FailurePct)
	if res.Sent == 0 || res.FailurePct >= 2 {
		t.Errorf("mixed_load_plus.sh: sent %d, failure rate %.2f%%, want < 2%%\n%s", res.Sent, res.FailurePct, res.Output)
	}
	cleanRE := regexp.MustCompile(`(?m)^cleanup: deleted=\d+ already_gone=0 failed=0$`)
	if !cleanRE.MatchString(res.Output) {
		t.Errorf("mixed_load_plus.sh: no clean cleanup line in its output\n%s", res.Output)
	}
	res = deployed.LoadScript(t, root, state, "mixed_load_plus.sh", 5*time.Minute, "--url", lb, "--cleanup")
	if !cleanRE.MatchString(res.Output) {
		t.Errorf("mixed_load_plus.sh --cleanup: no clean cleanup line in its output\n%s", res.Output)
	}
}

// TestRolloutRestartUnderLoad restarts api-gateway, then auth-service, with
// `kubectl rollout restart` while traffic that crosses them flows through the
// NodePort: reads, logins (gateway -> auth -> user-service) and token checks.
// Not one request may fail: readiness, preStop/SHUTDOWN_DELAY and the PDBs
// must hand traffic over cleanly.
func TestRolloutRestartUnderLoad(t *testing.T) {
	a := deployed.NewUser(t, lb, "rollout")
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
				login, _ := json.Marshal(map[string]string{"username": a.Username, "password": deployed.Password})
				res = loadgen.Run(context.Background(), loadgen.Spec{Rate: 40, Duration: window, Timeout: 10 * time.Second},
					[]loadgen.Op{
						// Logins stay under auth-service's per-address limit
						// (every request arrives from the node's address).
						{Name: "list", Weight: 6, Target: loadgen.Request(http.MethodGet, lb+"/api/posts?limit=10", nil)},
						{Name: "login", Weight: 1, Target: loadgen.Request(http.MethodPost, lb+"/api/auth/login", login, "Content-Type", "application/json")},
						{Name: "verify", Weight: 3, Target: loadgen.Request(http.MethodGet, lb+"/api/auth/verify", nil, "Authorization", a.Auth)},
					}...)
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
	reader := deployed.NewUser(t, lb, "reader")
	victim := runningPods(t)["user-service"]
	if len(victim) == 0 {
		t.Fatal("no user-service pod")
	}
	prefix := fmt.Sprintf("del%d-", time.Now().Unix()%1e6)
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
				r, err := httpc.Try(http.MethodPost, lb+"/api/users", map[string]string{"username": name, "email": name + "@example.com", "password": deployed.Password})
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
	time.Sleep(25 * time.Second) // registrations go on while the deleted pod drains
	cancel()
	wg.Wait()
	t.Logf("registrations acknowledged: %d; not acknowledged (status: count, 0 = transport error): %v", len(acked), refused)
	if len(acked) < 50 {
		t.Fatalf("only %d registrations acknowledged", len(acked))
	}
	var lost []string
	for _, name := range acked {
		r, err := httpc.Try(http.MethodGet, lb+"/api/users/by-username/"+name, nil, "Authorization", reader.Auth)
		if err != nil || r.Status != http.StatusOK {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged users missing after the pod deletion: %v", len(lost), len(acked), lost[:min(len(lost), 10)])
	}
}
