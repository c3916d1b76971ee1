// Package reliability_test runs the fault scenarios R1..R11 against the real
// stack as local processes, under load, and prints a table of their figures.
// `go test` runs the CI profile (shortened, time-bounded); RELIABILITY=full
// (`make reliability`) runs the full one.
package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"titanium/bench/loadgen"
	"titanium/devstack"
	"titanium/devstack/stacktest"
	"titanium/e2e/httpc"
)

func TestReliability(t *testing.T) {
	p := currentProfile()
	rep := &report{}
	t.Cleanup(func() { rep.print(os.Stdout, p) })
	t.Run("R1_rolling_restart", func(t *testing.T) { r1RollingRestart(t, p, rep) })
	t.Run("R2_crash", func(t *testing.T) { r2Crash(t, p, rep) })
	t.Run("R3_hang", func(t *testing.T) { r3Hang(t, p, rep) })
	t.Run("R4_redis_outage", func(t *testing.T) { r4RedisOutage(t, p, rep) })
	t.Run("R5_backup_under_writes", func(t *testing.T) { r5Backup(t, p, rep) })
	t.Run("R6_kill_writers", func(t *testing.T) { r6KillWriters(t, p, rep) })
	t.Run("R7_bad_input", func(t *testing.T) { r7BadInput(t, p, rep) })
	t.Run("R8_brute_force", func(t *testing.T) { r8BruteForce(t, p, rep) })
	t.Run("R9_websocket_abuse", func(t *testing.T) { r9WebSocketAbuse(t, p, rep) })
	t.Run("R10_soak", func(t *testing.T) { r10Soak(t, p, rep) })
	t.Run("R11_body_memory", func(t *testing.T) { r11BodyMemory(t, p, rep) })
}

// fixture is a user with a token and a few seed posts, made through the LB.
type fixture struct {
	base    string
	userID  int64
	token   string
	seedIDs []int64
}

func newFixture(t testing.TB, s *devstack.Stack) *fixture {
	t.Helper()
	f := &fixture{base: s.LB()}
	f.userID, f.token = registerAndLogin(t, f.base, uniqueName("rel"))
	for i := 0; i < 5; i++ {
		f.seedIDs = append(f.seedIDs, f.createPost(t, fmt.Sprintf("seed-%d", i)))
	}
	return f
}

func (f *fixture) createPost(t testing.TB, title string) int64 {
	t.Helper()
	r := httpc.Do(t, http.MethodPost, f.base+"/api/posts", map[string]string{"title": title, "content": "body of " + title},
		"Authorization", "Bearer "+f.token)
	if r.Status != http.StatusCreated {
		t.Fatalf("create post: got %d %s", r.Status, r.Body)
	}
	var p struct {
		ID int64 `json:"id"`
	}
	r.JSON(t, &p)
	return p.ID
}

// acked records the ids of created rows that the client saw acknowledged.
type acked struct {
	mu  sync.Mutex
	ids []int64
}

func (a *acked) add(id int64) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
}

func (a *acked) list() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.ids...)
}

// createOp posts a new post and records its id when acknowledged.
func (f *fixture) createOp(ack *acked) loadgen.Op {
	hdr := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + f.token}}
	return loadgen.Op{Name: "create", Weight: 1,
		Target: func(t *loadgen.Target) {
			body, _ := json.Marshal(map[string]string{"title": "load-" + strconv.Itoa(rand.IntN(1e9)), "content": "reliability"})
			t.Method, t.URL, t.Body, t.Header = http.MethodPost, f.base+"/api/posts", body, hdr
		},
		Answer: func(status int, data []byte) {
			if status != http.StatusCreated || ack == nil {
				return
			}
			var p struct {
				ID int64 `json:"id"`
			}
			if json.Unmarshal(data, &p) == nil && p.ID > 0 {
				ack.add(p.ID)
			}
		}}
}

// mixedOps is the seed's mix, list:detail:create = 16:3:1.
func (f *fixture) mixedOps(ack *acked) []loadgen.Op {
	return []loadgen.Op{
		{Name: "list", Weight: 16, Target: loadgen.Request(http.MethodGet, f.base+"/api/posts?limit=20", nil)},
		{Name: "detail", Weight: 3, Target: func(t *loadgen.Target) {
			t.Method, t.URL = http.MethodGet, fmt.Sprintf("%s/api/posts/%d", f.base, f.seedIDs[rand.IntN(len(f.seedIDs))])
		}},
		f.createOp(ack),
	}
}

// postCount is blog-service's own count of posts, from its /stats.
func postCount(t testing.TB, s *devstack.Stack) int64 {
	t.Helper()
	var st struct {
		Posts json.RawMessage `json:"posts"`
	}
	httpc.Do(t, http.MethodGet, s.URL("blog-service")+"/stats", nil).JSON(t, &st)
	var n int64
	if err := json.Unmarshal(st.Posts, &n); err == nil {
		return n
	}
	var obj struct {
		Count int64 `json:"count"`
		Total int64 `json:"total"`
	}
	if err := json.Unmarshal(st.Posts, &obj); err != nil {
		t.Fatalf("blog-service /stats posts: %s", st.Posts)
	}
	return max(obj.Count, obj.Total)
}

func runLoad(ctx context.Context, spec loadgen.Spec, ops ...loadgen.Op) <-chan *loadgen.Result {
	out := make(chan *loadgen.Result, 1)
	go func() { out <- loadgen.Run(ctx, spec, ops...) }()
	return out
}

// fastHealth makes the LB and gateway notice instance changes quickly and
// gives draining instances a readiness grace, as in Kubernetes.
func fastHealth() []stacktest.Option {
	return []stacktest.Option{
		stacktest.WithEnv("load-balancer", "LB_HEALTH_INTERVAL", "250ms"),
		stacktest.WithEnv("api-gateway", "GATEWAY_HEALTH_INTERVAL", "250ms"),
		stacktest.WithEnv("api-gateway", "SHUTDOWN_DELAY", "1s"),
		stacktest.WithEnv("auth-service", "SHUTDOWN_DELAY", "1s"),
	}
}

func r1RollingRestart(t *testing.T, p profile, rep *report) {
	opts := append(fastHealth(), stacktest.WithReplicas("api-gateway", 2), stacktest.WithReplicas("auth-service", 2))
	s := stacktest.Start(t, opts...)
	f := newFixture(t, s)
	ops := append(f.mixedOps(nil), loadgen.Op{Name: "verify", Weight: 2,
		Target: loadgen.Request(http.MethodGet, f.base+"/api/auth/verify", nil, "Authorization", "Bearer "+f.token)})
	done := runLoad(context.Background(), loadgen.Spec{Rate: p.rate, Duration: p.r1Load}, ops...)

	victims := []*devstack.Proc{}
	gws, auths := s.Instances("api-gateway"), s.Instances("auth-service")
	for i := range gws {
		victims = append(victims, gws[i], auths[i])
	}
	const grace = 15 * time.Second
	restarts := 0
	var exitProblems []string
	for i := 0; ; i++ {
		time.Sleep(p.r1Every)
		if time.Duration(i+2)*p.r1Every > p.r1Load {
			break
		}
		v := victims[i%len(victims)]
		start := time.Now()
		code := v.Stop(grace)
		took := time.Since(start)
		if code != 0 || took >= grace {
			exitProblems = append(exitProblems, fmt.Sprintf("%s exit %d after %s", v.Name, code, took.Round(time.Millisecond)))
		}
		restart(t, v)
		restarts++
	}
	res := <-done
	sent, _, failed := res.Totals()
	if failed != 0 {
		t.Errorf("rolling restart: %d of %d requests failed, want 0\n%s", failed, sent, res)
	}
	for _, e := range exitProblems {
		t.Errorf("not a clean exit within the grace period: %s", e)
	}
	rep.add(t, row{Scenario: "R1 rolling restart", Load: fmt.Sprintf("%d rps mixed, %s", p.rate, p.r1Load),
		Fault: fmt.Sprintf("SIGTERM+restart x%d (2 gw, 2 auth)", restarts), Sent: sent, Failures: failed,
		Detail: fmt.Sprintf("p99 list %s", res.Ops["list"].Percentile(99).Round(time.Microsecond))})
}

func r2Crash(t *testing.T, p profile, rep *report) {
	opts := append(fastHealth(), stacktest.WithReplicas("api-gateway", 2))
	s := stacktest.Start(t, opts...)
	f := newFixture(t, s)
	before := postCount(t, s)
	ack := &acked{}
	done := runLoad(context.Background(), loadgen.Spec{Rate: p.rate, Duration: p.r2Load}, f.mixedOps(ack)...)

	victim := s.Instances("api-gateway")[1]
	time.Sleep(p.r2Load / 4)
	victim.Kill()
	killedAt := time.Now()
	ejected := waitFor(t, 5*time.Second, "the crashed gateway reported OFFLINE", func() bool {
		return instanceStatus(lbStats(t, s), "api-gateway", victim.URL) == "OFFLINE"
	})
	time.Sleep(max(0, p.restartWindow-time.Since(killedAt)))
	restart(t, victim)
	readmitted := waitFor(t, 10*time.Second, "the restarted gateway back ONLINE", func() bool {
		return instanceStatus(lbStats(t, s), "api-gateway", victim.URL) == "ONLINE"
	})
	res := <-done
	// Re-admission means real traffic again, not just a green row.
	if n := instanceRequests(t, victim); n == 0 {
		t.Errorf("restarted gateway served no requests after re-admission")
	}
	sent, _, failed := res.Totals()
	created := postCount(t, s) - before
	okCreates := res.Ops["create"].OK
	failedCreates := res.Ops["create"].Failed
	if created < okCreates {
		t.Errorf("acknowledged creates lost: server has %d new posts, clients got %d 201s", created, okCreates)
	}
	if created > okCreates+failedCreates {
		t.Errorf("a POST was replayed: server has %d new posts for %d attempts", created, okCreates+failedCreates)
	}
	// Only requests in flight on the crashed instance may fail: at this rate
	// and latency that is a handful.
	if limit := int64(10); failed > limit {
		t.Errorf("%d requests failed, want at most %d (in flight on the crashed instance)\n%s", failed, limit, res)
	}
	lost := max(0, okCreates-created)
	rep.add(t, row{Scenario: "R2 crash", Load: fmt.Sprintf("%d rps mixed, %s", p.rate, p.r2Load), Fault: "kill -9 1 of 2 gateways",
		Sent: sent, Failures: failed, Lost: lost,
		Detail: fmt.Sprintf("ejected (OFFLINE in /stats) after %s, re-admitted %s after restart; creates: %d acknowledged, %d on server, %d failed",
			ejected.Round(time.Millisecond), readmitted.Round(time.Millisecond), okCreates, created, failedCreates)})
}

// instanceStatus finds an instance row of a service in the LB's /stats by
// the instance's base URL.
func instanceStatus(stats map[string]any, service, baseURL string) string {
	list, _ := stats["services"].([]any)
	for _, item := range list {
		m, _ := item.(map[string]any)
		if m["name"] != service {
			continue
		}
		insts, _ := m["instances"].([]any)
		for _, it := range insts {
			im, _ := it.(map[string]any)
			if im["url"] == baseURL+"/stats" {
				st, _ := im["status"].(string)
				return st
			}
		}
	}
	return ""
}

// instanceRequests is the request count in a process's own 10 s window.
func instanceRequests(t testing.TB, p *devstack.Proc) int64 {
	t.Helper()
	var st struct {
		Requests struct {
			Requests int64 `json:"requests"`
		} `json:"requests"`
	}
	httpc.Do(t, http.MethodGet, p.URL+"/stats", nil).JSON(t, &st)
	return st.Requests.Requests
}
