// Package cluster proves the local overlay on a real Kubernetes cluster, as
// `make cluster-up` leaves it: only through NodePort 30700 on 127.0.0.1 and
// kubectl, as a user of `skaffold dev` would. It runs only under
// `make cluster-e2e` (CLUSTER_E2E=1, with KUBECONFIG and CLUSTER_KUBECTL
// set); `make test` skips it.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"titanium/e2e/deployed"
)

// lb is the stack's one public address: the load balancer's NodePort.
const lb = "http://127.0.0.1:30700"

// ns is the local overlay's namespace; every name in it is prefixed "local-".
const ns = "titanium-local"

// wantReplicas is the seed's replica count per Deployment.
var wantReplicas = map[string]int{
	"api-gateway": 2, "load-balancer": 2, "auth-service": 2, "user-service": 2,
	"dashboard-ui": 2, "redis": 1, "blog-service": 1,
}

// statsServices are the services the load balancer's /stats lists.
var statsServices = []string{"api-gateway", "auth-service", "user-service", "blog-service", "dashboard-ui"}

func TestMain(m *testing.M) {
	if os.Getenv("CLUSTER_E2E") != "1" {
		fmt.Println("cluster tests skipped: they run under make cluster-e2e (CLUSTER_E2E=1)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// kubectl runs kubectl against the cluster and returns its stdout; it fails
// the test on a non-zero exit.
func kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := tryKubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// tryKubectl is kubectl returning its error (with stderr) instead.
func tryKubectl(args ...string) (string, error) {
	bin := os.Getenv("CLUSTER_KUBECTL")
	if bin == "" {
		bin = "kubectl"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--request-timeout=60s"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// kubectlJSON runs kubectl with -o json and decodes the answer into v.
func kubectlJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := kubectl(t, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl %s: decode: %v", strings.Join(args, " "), err)
	}
}

// pod is the part of a Pod the checks read.
type pod struct {
	Metadata struct {
		Name              string            `json:"name"`
		Labels            map[string]string `json:"labels"`
		DeletionTimestamp *string           `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		Containers []struct {
			Name           string          `json:"name"`
			ReadinessProbe json.RawMessage `json:"readinessProbe"`
			LivenessProbe  json.RawMessage `json:"livenessProbe"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			Ready        bool   `json:"ready"`
			RestartCount int    `json:"restartCount"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func (p pod) app() string { return p.Metadata.Labels["app.kubernetes.io/name"] }

func (p pod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// runningPods lists the namespace's pods of long-running services (not the
// backup Job's, not those being deleted), by app name.
func runningPods(t testing.TB) map[string][]pod {
	t.Helper()
	var list struct{ Items []pod }
	kubectlJSON(t, &list, "-n", ns, "get", "pods")
	by := map[string][]pod{}
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil || p.Status.Phase != "Running" {
			continue
		}
		if _, ok := wantReplicas[p.app()]; ok {
			by[p.app()] = append(by[p.app()], p)
		}
	}
	return by
}

// podNames lists the names of the pods, sorted.
func podNames(pods []pod) []string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Metadata.Name)
	}
	sort.Strings(names)
	return names
}

// statsMismatch compares /stats with the running pods: HEALTHY, every pod of
// every service an ONLINE instance of its own, both load balancers ONLINE,
// database and cache ONLINE. It returns what differs, or "".
func statsMismatch(s deployed.Stats, pods map[string][]pod) string {
	var diffs []string
	if s.Status != "HEALTHY" {
		diffs = append(diffs, fmt.Sprintf("status %s, want HEALTHY", s.Status))
	}
	if s.Database.Status != "ONLINE" || s.Cache.Status != "ONLINE" {
		diffs = append(diffs, fmt.Sprintf("database %s, cache %s, want both ONLINE", s.Database.Status, s.Cache.Status))
	}
	seen := map[string]bool{}
	for _, svc := range s.Services {
		seen[svc.Name] = true
		var online []string
		for _, in := range svc.Instances {
			if in.Status == "ONLINE" {
				online = append(online, in.Instance)
			}
		}
		sort.Strings(online)
		if want := podNames(pods[svc.Name]); strings.Join(online, ",") != strings.Join(want, ",") {
			diffs = append(diffs, fmt.Sprintf("%s: ONLINE instances %v, want its pods %v", svc.Name, online, want))
		}
	}
	for _, name := range statsServices {
		if !seen[name] {
			diffs = append(diffs, fmt.Sprintf("service %s missing", name))
		}
	}
	var lbs []string
	for _, l := range s.LoadBalancers {
		if l.Status == "ONLINE" {
			lbs = append(lbs, l.Instance)
		}
	}
	sort.Strings(lbs)
	if want := podNames(pods["load-balancer"]); strings.Join(lbs, ",") != strings.Join(want, ",") {
		diffs = append(diffs, fmt.Sprintf("load balancers ONLINE %v, want %v", lbs, want))
	}
	return strings.Join(diffs, "; ")
}

// waitStatsMatch polls /stats until it describes the running pods exactly
// (the load balancers re-resolve the headless Services every few seconds).
func waitStatsMatch(t testing.TB, timeout time.Duration) deployed.Stats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		pods := runningPods(t)
		s, err := deployed.GetStats(lb)
		if err != nil {
			last = err.Error()
		} else if last = statsMismatch(s, pods); last == "" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("/stats does not match the pods after %v: %s", timeout, last)
		}
		time.Sleep(time.Second)
	}
}

// TestDeploymentsAvailable: every Deployment Available with the seed's
// replicas, all of them updated and ready.
func TestDeploymentsAvailable(t *testing.T) {
	var list struct {
		Items []struct {
			Metadata struct{ Name string }  `json:"metadata"`
			Spec     struct{ Replicas int } `json:"spec"`
			Status   struct {
				ReadyReplicas     int `json:"readyReplicas"`
				AvailableReplicas int `json:"availableReplicas"`
				UpdatedReplicas   int `json:"updatedReplicas"`
				Conditions        []struct {
					Type   string `json:"type"`
					Status string `json:"status"`
				} `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	kubectlJSON(t, &list, "-n", ns, "get", "deployments")
	found := map[string]bool{}
	for _, d := range list.Items {
		name := strings.TrimPrefix(d.Metadata.Name, "local-")
		want, ok := wantReplicas[name]
		if !ok {
			t.Errorf("unexpected Deployment %s", d.Metadata.Name)
			continue
		}
		found[name] = true
		available := false
		for _, c := range d.Status.Conditions {
			available = available || (c.Type == "Available" && c.Status == "True")
		}
		t.Logf("%-20s replicas %d ready %d available %d", d.Metadata.Name, d.Spec.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas)
		if d.Spec.Replicas != want || d.Status.AvailableReplicas != want || d.Status.ReadyReplicas != want || !available {
			t.Errorf("%s: replicas %d, ready %d, available %d (condition %v); want %d of each, Available",
				d.Metadata.Name, d.Spec.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, available, want)
		}
	}
	for name := range wantReplicas {
		if !found[name] {
			t.Errorf("Deployment local-%s missing", name)
		}
	}
}

// TestPodSecurityRestricted: the namespace enforces the restricted profile,
// so every pod running in it was admitted under it; and the check has
// teeth: a pod that breaks the profile (no securityContext at all: may run
// as root, may escalate, keeps its capabilities) is refused.
func TestPodSecurityRestricted(t *testing.T) {
	var nsObj struct {
		Metadata struct{ Labels map[string]string } `json:"metadata"`
	}
	kubectlJSON(t, &nsObj, "get", "namespace", ns)
	if got := nsObj.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Fatalf("namespace %s enforce label: got %q, want restricted", ns, got)
	}
	n := 0
	for _, pods := range runningPods(t) {
		n += len(pods)
	}
	if n == 0 {
		t.Fatal("no pods running")
	}
	t.Logf("%d pods admitted and running under enforce=restricted", n)

	out, err := tryKubectl("-n", ns, "run", "psa-probe", "--image=titanium/user-service",
		"--restart=Never", "--dry-run=server")
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a pod without a securityContext was not refused by Pod Security admission: %v %s", err, out)
	} else {
		t.Logf("a pod without a securityContext is refused: %v", err)
	}
}

// TestProbesPass: every container declares readiness and liveness probes,
// every pod is Ready, and no container has been restarted (a failing
// liveness probe restarts it).
func TestProbesPass(t *testing.T) {
	for app, pods := range runningPods(t) {
		for _, p := range pods {
			if !p.ready() {
				t.Errorf("%s (%s) is not Ready", p.Metadata.Name, app)
			}
			for _, c := range p.Spec.Containers {
				if len(c.ReadinessProbe) == 0 || len(c.LivenessProbe) == 0 {
					t.Errorf("%s/%s: readiness or liveness probe missing", p.Metadata.Name, c.Name)
				}
			}
			for _, cs := range p.Status.ContainerStatuses {
				if !cs.Ready || cs.RestartCount != 0 {
					t.Errorf("%s/%s: ready %v, restarts %d; want ready, 0 restarts", p.Metadata.Name, cs.Name, cs.Ready, cs.RestartCount)
				}
			}
		}
	}
}

// TestStatsListsEveryPod: /stats through the NodePort is HEALTHY and lists
// every pod of every service as its own instance, both load balancers, and
// database and cache ONLINE.
func TestStatsListsEveryPod(t *testing.T) {
	s := waitStatsMatch(t, 60*time.Second)
	for _, svc := range s.Services {
		t.Logf("%-13s %s %d instances", svc.Name, svc.Status, len(svc.Instances))
	}
	t.Logf("load balancers: %d, database %s, cache %s", len(s.LoadBalancers), s.Database.Status, s.Cache.Status)
}

// TestNetworkPolicies states what this cluster can and cannot prove: the
// policies are accepted and stored, but the bridge CNI plugin has no
// policy engine, so nothing enforces them here.
func TestNetworkPolicies(t *testing.T) {
	out := kubectl(t, "-n", ns, "get", "networkpolicies", "-o", "name")
	n := len(strings.Fields(out))
	if n == 0 {
		t.Fatal("no NetworkPolicy in the namespace")
	}
	t.Skipf("%d NetworkPolicies stored, but NOT ENFORCED: the bridge CNI plugin has no policy engine, so their effect is unproven on this cluster", n)
}
