package deploycheck

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// rendered is one overlay's output, every object decoded into its typed
// k8s.io/api struct.
type rendered struct {
	overlay     string
	namespaces  []*corev1.Namespace
	deployments map[string]*appsv1.Deployment
	cronJobs    map[string]*batchv1.CronJob
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pvcs        map[string]*corev1.PersistentVolumeClaim
	pdbs        map[string]*policyv1.PodDisruptionBudget
	netpols     map[string]*networkingv1.NetworkPolicy
	ingresses   map[string]*networkingv1.Ingress
	objects     int
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]*rendered{}
)

// render builds a kustomization in-process (the kustomize kubectl embeds)
// and decodes every object strictly: an unknown or duplicated field is an
// error, as it is for the API server.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if r, ok := renderCache[dir]; ok {
		return r
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	decoder := json.NewSerializerWithOptions(json.DefaultMetaFactory, k8sScheme, k8sScheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	r := &rendered{
		overlay:     dir,
		deployments: map[string]*appsv1.Deployment{},
		cronJobs:    map[string]*batchv1.CronJob{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
		pvcs:        map[string]*corev1.PersistentVolumeClaim{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		netpols:     map[string]*networkingv1.NetworkPolicy{},
		ingresses:   map[string]*networkingv1.Ingress{},
	}
	for _, res := range resMap.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, res.CurId(), err)
		}
		obj, gvk, err := decoder.Decode(y, nil, nil)
		if err != nil {
			t.Fatalf("%s: %s does not decode strictly into k8s.io/api types: %v", dir, res.CurId(), err)
		}
		r.objects++
		switch o := obj.(type) {
		case *corev1.Namespace:
			r.namespaces = append(r.namespaces, o)
		case *appsv1.Deployment:
			r.deployments[o.Name] = o
		case *batchv1.CronJob:
			r.cronJobs[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.PersistentVolumeClaim:
			r.pvcs[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			r.pdbs[o.Name] = o
		case *networkingv1.NetworkPolicy:
			r.netpols[o.Name] = o
		case *networkingv1.Ingress:
			r.ingresses[o.Name] = o
		default:
			t.Fatalf("%s: unexpected object %s %s: add it to the checks", dir, gvk, res.CurId())
		}
	}
	renderCache[dir] = r
	return r
}

// overlays lists every overlay directory (relative to the repository root).
func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "k8s-manifests", "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("k8s-manifests", "overlays", e.Name()))
		}
	}
	if !slices.Contains(out, filepath.Join("k8s-manifests", "overlays", "local")) {
		t.Fatalf("overlays = %v, want local among them", out)
	}
	return out
}

// prefix is the overlay's name prefix, read from a known Deployment name.
func (r *rendered) prefix(t *testing.T) string {
	t.Helper()
	for name := range r.deployments {
		if p, ok := strings.CutSuffix(name, "user-service"); ok {
			return p
		}
	}
	t.Fatalf("%s: no user-service Deployment", r.overlay)
	return ""
}

// deployment returns the Deployment of a base name (prefix added).
func (r *rendered) deployment(t *testing.T, base string) *appsv1.Deployment {
	t.Helper()
	d, ok := r.deployments[r.prefix(t)+base]
	if !ok {
		t.Fatalf("%s: no Deployment %s%s", r.overlay, r.prefix(t), base)
	}
	return d
}

func TestKustomizeBuildsEveryOverlayStrictly(t *testing.T) {
	for _, dir := range append([]string{"k8s-manifests/base"}, overlays(t)...) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			t.Logf("%s: %d objects", dir, r.objects)
			if len(r.deployments) != len(services)+1 {
				t.Errorf("%d Deployments, want one per service plus redis (%d)", len(r.deployments), len(services)+1)
			}
		})
	}
}

func TestLocalOverlay(t *testing.T) {
	r := render(t, "k8s-manifests/overlays/local")
	if len(r.namespaces) != 1 || r.namespaces[0].Name != "titanium-local" {
		t.Fatalf("Namespace objects = %v, want titanium-local", r.namespaces)
	}
	if got := r.namespaces[0].Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace pod-security enforce = %q, want restricted", got)
	}
	namespaced := []metav1.Object{}
	for _, o := range r.deployments {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.services {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.configMaps {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.secrets {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.pvcs {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.cronJobs {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.pdbs {
		namespaced = append(namespaced, o)
	}
	for _, o := range r.netpols {
		namespaced = append(namespaced, o)
	}
	for _, o := range namespaced {
		if o.GetNamespace() != "titanium-local" {
			t.Errorf("%s: namespace %q, want titanium-local", o.GetName(), o.GetNamespace())
		}
		if !strings.HasPrefix(o.GetName(), "local-") {
			t.Errorf("%s: want the local- name prefix", o.GetName())
		}
	}

	wantReplicas := map[string]int32{
		"api-gateway": 2, "load-balancer": 2, "auth-service": 2, "user-service": 2,
		"dashboard-ui": 2, "redis": 1, "blog-service": 1,
	}
	for name, want := range wantReplicas {
		d := r.deployment(t, name)
		if got := replicasOf(d); got != want {
			t.Errorf("Deployment %s replicas = %d, want %d", d.Name, got, want)
		}
	}

	lb, ok := r.services["local-load-balancer-service"]
	if !ok {
		t.Fatal("no Service local-load-balancer-service")
	}
	if lb.Spec.Type != corev1.ServiceTypeNodePort || len(lb.Spec.Ports) != 1 ||
		lb.Spec.Ports[0].Port != 7100 || lb.Spec.Ports[0].NodePort != 30700 {
		t.Errorf("local-load-balancer-service: type %s ports %+v, want NodePort 30700 -> port 7100", lb.Spec.Type, lb.Spec.Ports)
	}
	if lb.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("local-load-balancer-service: externalTrafficPolicy %q, want Local (kube-proxy would hide every client behind a node address)", lb.Spec.ExternalTrafficPolicy)
	}
	if lb.Spec.Selector["app.kubernetes.io/name"] != "load-balancer" {
		t.Errorf("local-load-balancer-service selects %v, want the load-balancer pods", lb.Spec.Selector)
	}
	if len(r.secrets) != len(externalSecrets) {
		t.Errorf("local overlay Secrets = %d, want the generated titanium-jwt and titanium-redis", len(r.secrets))
	}
	// Generated Secrets carry a content hash: local-titanium-jwt-<hash>.
	want := map[string]string{"local-titanium-jwt-": "JWT_SECRET", "local-titanium-redis-": "REDIS_PASSWORD"}
	for prefix, key := range want {
		found := false
		for name, s := range r.secrets {
			if strings.HasPrefix(name, prefix) {
				found = true
				if len(s.Data[key]) < 32 {
					t.Errorf("Secret %s: %s of %d bytes, want at least 32 (jwtauth.MinSecretBytes for the key)", name, key, len(s.Data[key]))
				}
			}
		}
		if !found {
			t.Errorf("no generated Secret %s<hash>", prefix)
		}
	}
}

// externalSecrets are the Secrets the prod overlay takes from outside git
// (docs/deployment.md); the local overlay generates them.
var externalSecrets = map[string]bool{"titanium-jwt": true, "titanium-redis": true}

func TestBackupCronJob(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			p := r.prefix(t)
			cj, ok := r.cronJobs[p+"user-service-backup"]
			if !ok {
				t.Fatalf("no CronJob %suser-service-backup", p)
			}
			if cj.Spec.Schedule != "0 0 * * *" {
				t.Errorf("schedule %q, want daily at midnight", cj.Spec.Schedule)
			}
			if cj.Spec.TimeZone == nil || *cj.Spec.TimeZone != "Etc/UTC" {
				t.Errorf("timeZone %v, want Etc/UTC", cj.Spec.TimeZone)
			}
			if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
			}
			pod := cj.Spec.JobTemplate.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.Image != "titanium/user-service" {
				t.Errorf("image %q, want the user-service image (it carries users-backup)", c.Image)
			}
			if !slices.Equal(c.Command, []string{"/usr/local/bin/users-backup"}) {
				t.Errorf("command %v, want /usr/local/bin/users-backup", c.Command)
			}
			checkArgs(t, "CronJob "+cj.Name, c.Args)
			args := strings.Join(c.Args, " ")
			for _, want := range []string{"-source=/data/users.db", "-dir=/backup"} {
				if !strings.Contains(args, want) {
					t.Errorf("args %q, want %s", args, want)
				}
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			claim := func(mountPath string) string {
				for _, v := range pod.Volumes {
					if v.Name == mounts[mountPath].Name && v.PersistentVolumeClaim != nil {
						return v.PersistentVolumeClaim.ClaimName
					}
				}
				return ""
			}
			if m, ok := mounts["/data"]; !ok || !m.ReadOnly {
				t.Errorf("/data mount %+v, want the users volume read-only", m)
			}
			us := r.deployment(t, "user-service")
			var usClaim string
			for _, v := range us.Spec.Template.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					usClaim = v.PersistentVolumeClaim.ClaimName
				}
			}
			if got := claim("/data"); got == "" || got != usClaim {
				t.Errorf("/data is claim %q, want user-service's claim %q", got, usClaim)
			}
			if got := claim("/backup"); got == "" || got == usClaim {
				t.Errorf("/backup is claim %q, want its own claim", got)
			} else if _, ok := r.pvcs[got]; !ok {
				t.Errorf("/backup claim %q does not exist", got)
			}
			if m := mounts["/backup"]; m.ReadOnly {
				t.Error("/backup is read-only")
			}
			aff := pod.Affinity
			if aff == nil || aff.PodAffinity == nil || len(aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 ||
				aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels["app.kubernetes.io/name"] != "user-service" {
				t.Error("the backup pod must be placed beside user-service (required podAffinity)")
			}
		})
	}
}

// TestPodSpecs checks every pod template of every overlay: the restricted
// Pod Security Standard (evaluated by the same library the admission plugin
// uses), a read-only root with writable volumes, resources, probes on the
// real routes and a declared port, images built by skaffold, and a grace
// period that covers the services' shutdown.
func TestPodSpecs(t *testing.T) {
	artifacts := skaffoldArtifacts(t)
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			type podTemplate struct {
				kind, name string
				meta       metav1.ObjectMeta
				spec       corev1.PodSpec
			}
			var pods []podTemplate
			for _, d := range r.deployments {
				pods = append(pods, podTemplate{"Deployment", d.Name, d.Spec.Template.ObjectMeta, d.Spec.Template.Spec})
			}
			for _, c := range r.cronJobs {
				pods = append(pods, podTemplate{"CronJob", c.Name, c.Spec.JobTemplate.Spec.Template.ObjectMeta, c.Spec.JobTemplate.Spec.Template.Spec})
			}
			for _, p := range pods {
				for _, res := range evaluator.EvaluatePod(restricted, &p.meta, &p.spec) {
					if !res.Allowed {
						t.Errorf("%s %s violates restricted Pod Security: %s: %s", p.kind, p.name, res.ForbiddenReason, res.ForbiddenDetail)
					}
				}
				if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
					t.Errorf("%s %s mounts a service account token it does not use", p.kind, p.name)
				}
				for _, c := range p.spec.Containers {
					checkContainer(t, r, p.kind+" "+p.name, p.spec, c, artifacts)
				}
			}
			for _, d := range r.deployments {
				base := strings.TrimPrefix(d.Name, r.prefix(t))
				if _, ok := serviceNamed(base); !ok {
					continue
				}
				checkProbes(t, d)
				checkGrace(t, r, d)
				checkAnnotations(t, d)
			}
		})
	}
}

func checkContainer(t *testing.T, r *rendered, where string, pod corev1.PodSpec, c corev1.Container, artifacts map[string]bool) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s/%s: want readOnlyRootFilesystem", where, c.Name)
	}
	uid := pod.SecurityContext.RunAsUser
	if sc != nil && sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid == nil || *uid == 0 {
		t.Errorf("%s/%s: want a numeric non-root runAsUser", where, c.Name)
	} else if strings.HasPrefix(c.Image, "titanium/") && *uid != 65532 {
		t.Errorf("%s/%s: runAsUser %d, want 65532 (the images' nonroot user)", where, c.Name, *uid)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s/%s: want cpu and memory requests and a memory limit, got %+v", where, c.Name, c.Resources)
	}
	if strings.HasPrefix(c.Image, "titanium/") {
		if !artifacts[c.Image] {
			t.Errorf("%s/%s: image %q is not built by skaffold.yaml", where, c.Name, c.Image)
		}
	} else if !pinned(c.Image) {
		t.Errorf("%s/%s: image %q is not pinned to a version", where, c.Name, c.Image)
	}
	// Every mount refers to a volume, and every claim exists.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
		if v.PersistentVolumeClaim != nil {
			if _, ok := r.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("%s: volume %s claims %q, which does not exist", where, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("%s/%s: mount %s names no volume", where, c.Name, m.Name)
		}
	}
	// Every referenced ConfigMap and Secret exists (prod takes its JWT and
	// Redis Secrets from outside git: those are allowed to be absent).
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			if _, ok := r.configMaps[ef.ConfigMapRef.Name]; !ok {
				t.Errorf("%s/%s: envFrom ConfigMap %q does not exist", where, c.Name, ef.ConfigMapRef.Name)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			name := e.ValueFrom.SecretKeyRef.Name
			if _, ok := r.secrets[name]; !ok && !(len(r.secrets) == 0 && externalSecrets[name]) {
				t.Errorf("%s/%s: env %s refers to Secret %q, which the overlay neither generates nor documents as external", where, c.Name, e.Name, name)
			}
		}
	}
}

// pinned: a digest, or a tag with an exact x.y.z version. The distroless
// images are only in Dockerfiles.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	_, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	if !ok {
		return false
	}
	v, _, _ := strings.Cut(tag, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

func checkProbes(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	check := func(kind string, p *corev1.Probe, wantPath string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", d.Name, kind)
			return
		}
		if p.HTTPGet.Path != wantPath {
			t.Errorf("%s: %s probe on %s, want %s", d.Name, kind, p.HTTPGet.Path, wantPath)
		}
		port := p.HTTPGet.Port
		if port.Type == intstr.String {
			if _, ok := ports[port.StrVal]; !ok {
				t.Errorf("%s: %s probe port %q is not a declared container port", d.Name, kind, port.StrVal)
			}
		} else if !slices.Contains(mapValues(ports), port.IntVal) {
			t.Errorf("%s: %s probe port %d is not a declared container port", d.Name, kind, port.IntVal)
		}
	}
	check("readiness", c.ReadinessProbe, "/readyz")
	check("liveness", c.LivenessProbe, "/healthz")
	if c.StartupProbe != nil {
		check("startup", c.StartupProbe, "/healthz")
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	var out []V
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// checkGrace: the kubelet kills a pod terminationGracePeriodSeconds after
// SIGTERM; the service needs SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT of it.
func checkGrace(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	env := effectiveEnv(t, r, d.Spec.Template.Spec.Containers[0])
	delay, err1 := time.ParseDuration(env["SHUTDOWN_DELAY"])
	timeout, err2 := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	if err1 != nil || err2 != nil {
		t.Errorf("%s: SHUTDOWN_DELAY %q, SHUTDOWN_TIMEOUT %q: want both set", d.Name, env["SHUTDOWN_DELAY"], env["SHUTDOWN_TIMEOUT"])
		return
	}
	// Our balancers find pods by DNS, re-resolved every 5 s, and CoreDNS (as
	// kubeadm, kind and minikube set it up) caches answers for 30 s: a pod
	// must keep serving that long after it leaves its Service.
	if minDelay := 30*time.Second + 5*time.Second; delay < minDelay {
		t.Errorf("%s: SHUTDOWN_DELAY %v: shorter than CoreDNS's 30 s cache plus the 5 s re-resolve (%v); rollouts would lose requests", d.Name, delay, minDelay)
	}
	grace := 30 * time.Second // the API default
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace < delay+timeout+2*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want at least SHUTDOWN_DELAY+SHUTDOWN_TIMEOUT+2s = %v", d.Name, grace, delay+timeout+2*time.Second)
	}
}

func checkAnnotations(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	a := d.Spec.Template.Annotations
	port := strconv.Itoa(int(d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort))
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: Prometheus annotations %v, want scrape=true port=%s path=/metrics", d.Name, a, port)
	}
}

// effectiveEnv is a container's environment as the kubelet builds it:
// envFrom ConfigMaps, then env (values from fields and Secrets shown as
// "<from ...>").
func effectiveEnv(t *testing.T, r *rendered, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			for k, v := range r.configMaps[ef.ConfigMapRef.Name].Data {
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			for k := range r.secrets[ef.SecretRef.Name].Data {
				env[ef.Prefix+k] = "<from secret>"
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "<from " + e.ValueFrom.String() + ">"
			continue
		}
		env[e.Name] = e.Value
	}
	return env
}

// TestK8sEnvAndPortsMatchCode: every variable a container gets is one its
// binary reads (a misspelt name is silently ignored at run time), every
// wiring variable of the local run is set, the listen port is the declared
// container port and the Services' target, and every URL names a Service
// of this overlay that selects the right pods on the right port.
func TestK8sEnvAndPortsMatchCode(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			prefix := r.prefix(t)
			for _, s := range services {
				d := r.deployment(t, s.Name)
				if len(d.Spec.Template.Spec.Containers) != 1 {
					t.Fatalf("%s: %d containers, want 1", d.Name, len(d.Spec.Template.Spec.Containers))
				}
				c := d.Spec.Template.Spec.Containers[0]
				env := effectiveEnv(t, r, c)
				reads := readsOf(t, s.Name)
				for _, k := range sortedKeys(env) {
					if !reads[k] {
						t.Errorf("%s: sets %s, which %s never reads", d.Name, k, s.Name)
					}
				}
				for _, k := range wiringOf(t, s.Name) {
					if _, ok := env[k]; !ok && !(k == "LB_PEERS" && replicasOf(d) == 1) {
						t.Errorf("%s: %s is not set (devstack wires it)", d.Name, k)
					}
				}
				// user-service also has its internal listener (auth-service's
				// /internal/authenticate), apart from the port monitoring reaches.
				wantPorts := 1
				if s.Name == "user-service" {
					wantPorts = 2
					if len(c.Ports) != 2 || c.Ports[1].Name != "internal" || c.Ports[1].ContainerPort != 8101 || listenPort(env["INTERNAL_ADDR"]) != 8101 {
						t.Errorf("%s: ports %+v, INTERNAL_ADDR %q, want internal 8101 as well", d.Name, c.Ports, env["INTERNAL_ADDR"])
					}
				}
				if len(c.Ports) != wantPorts || c.Ports[0].ContainerPort != int32(s.Port) || c.Ports[0].Name != "http" {
					t.Errorf("%s: ports %+v, want http %d", d.Name, c.Ports, s.Port)
				}
				if got := listenPort(env["LISTEN_ADDR"]); got != s.Port {
					t.Errorf("%s: LISTEN_ADDR %q, want port %d", d.Name, env["LISTEN_ADDR"], s.Port)
				}
				if got := defaultPort(t, s.Name); got != s.Port {
					t.Errorf("%s: the code's default port is %d, want %d", s.Name, got, s.Port)
				}
				if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "INSTANCE_ID" }); i < 0 ||
					c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "metadata.name" {
					t.Errorf("%s: INSTANCE_ID must come from the pod name (downward API)", d.Name)
				}
				if dataDir(s) != "" {
					checkDataMount(t, d, s, env)
				}
				for k, v := range env {
					checkURLs(t, r, d.Name+" "+k, k, v)
				}
			}
			// Every Service targets a declared port of the pods it selects.
			for _, svc := range r.services {
				name := svc.Spec.Selector["app.kubernetes.io/name"]
				d, ok := r.deployments[prefix+name]
				if !ok {
					t.Errorf("Service %s selects %q: no such Deployment", svc.Name, name)
					continue
				}
				for _, p := range svc.Spec.Ports {
					if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
						return cp.Name == p.TargetPort.StrVal || cp.ContainerPort == p.TargetPort.IntVal
					}) {
						t.Errorf("Service %s targets %s, not a port of %s", svc.Name, p.TargetPort.String(), d.Name)
					}
				}
			}
		})
	}
}

func checkDataMount(t *testing.T, d *appsv1.Deployment, s service, env map[string]string) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	var dbPath string
	for k, v := range env {
		if strings.HasSuffix(k, "_DB_PATH") {
			dbPath = v
		}
	}
	if filepath.Dir(dbPath) != dataDir(s) {
		t.Errorf("%s: database path %q, want it in %s", d.Name, dbPath, dataDir(s))
	}
	var claimVolume string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claimVolume = v.Name
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == dataDir(s) && m.Name == claimVolume && !m.ReadOnly
	}) {
		t.Errorf("%s: %s must be a writable PVC mount (SQLite writes -wal and -shm beside the database)", d.Name, dataDir(s))
	}
	// One writer at a time: a rolling update would run two pods on the file.
	if s.Name == "blog-service" && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("%s: strategy %s, want Recreate", d.Name, d.Spec.Strategy.Type)
	}
	if replicasOf(d) > 1 {
		aff := d.Spec.Template.Spec.Affinity
		if aff == nil || aff.PodAffinity == nil || len(aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 ||
			aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("%s: %d replicas share one SQLite volume: want required podAffinity on kubernetes.io/hostname", d.Name, replicasOf(d))
		}
	}
}

// replicasOf is a Deployment's replica count (the API default is 1).
func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func listenPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// endpoints parses a wiring value into (target service, URL) pairs.
func endpoints(key, value string) (pairs [][2]string) {
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		target := upstreamOf[key]
		if key == "LB_STATS_TARGETS" {
			name, u, _ := strings.Cut(item, "=")
			target, item = name, u
		}
		pairs = append(pairs, [2]string{target, item})
	}
	return pairs
}

// checkURLs checks a wiring variable's URLs against the overlay's Services.
func checkURLs(t *testing.T, r *rendered, where, key, value string) {
	t.Helper()
	if _, ok := upstreamOf[key]; !ok && key != "LB_STATS_TARGETS" {
		return
	}
	for _, p := range endpoints(key, value) {
		target, raw := p[0], p[1]
		host, port, dns, err := splitEndpoint(key, raw)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		svc, ok := r.services[host]
		if !ok {
			t.Errorf("%s: %q names Service %q, which this overlay does not have", where, raw, host)
			continue
		}
		if got := svc.Spec.Selector["app.kubernetes.io/name"]; got != target {
			t.Errorf("%s: %q reaches %s pods, want %s", where, raw, got, target)
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == int32(port) }) {
			t.Errorf("%s: %q: Service %s has no port %d", where, raw, host, port)
		}
		if dns && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("%s: %q: dns+ needs a headless Service (one A record per pod)", where, raw)
		}
		if key == "LB_STATS_TARGETS" && !dns {
			t.Errorf("%s: %q: a ClusterIP reaches one random pod; /stats needs every pod (dns+ of a headless Service)", where, raw)
		}
	}
}

// splitEndpoint parses "http://host:port", "dns+http://host:port" or, for
// REDIS_ADDR, "host:port".
func splitEndpoint(key, raw string) (host string, port int, dns bool, err error) {
	if key == "REDIS_ADDR" {
		h, p, err := net.SplitHostPort(raw)
		if err != nil {
			return "", 0, false, err
		}
		n, _ := strconv.Atoi(p)
		return h, n, false, nil
	}
	rest, dns := strings.CutPrefix(raw, "dns+")
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
		return "", 0, false, fmt.Errorf("%q: want [dns+]http://host:port", raw)
	}
	n, _ := strconv.Atoi(u.Port())
	return u.Hostname(), n, dns, nil
}

func TestPDBsAndNetworkPolicies(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			prefix := r.prefix(t)
			for _, pdb := range r.pdbs {
				name := pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"]
				d, ok := r.deployments[prefix+name]
				if !ok {
					t.Errorf("PDB %s selects %q: no such Deployment", pdb.Name, name)
					continue
				}
				// A budget that allows no eviction blocks node drains.
				if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 || pdb.Spec.MinAvailable != nil {
					t.Errorf("PDB %s: want maxUnavailable >= 1 and no minAvailable", pdb.Name)
				}
				if replicasOf(d) < 2 {
					t.Errorf("PDB %s on %s with %d replica: it can only block drains", pdb.Name, d.Name, replicasOf(d))
				}
				if d.Spec.Template.Spec.Affinity != nil && d.Spec.Template.Spec.Affinity.PodAffinity != nil {
					t.Errorf("PDB %s on co-located %s: the replacement can only start beside the evicted pod; the drain would wait forever", pdb.Name, d.Name)
				}
			}
			for _, name := range []string{"api-gateway", "auth-service", "dashboard-ui", "load-balancer"} {
				if _, ok := r.pdbs[prefix+name]; !ok {
					t.Errorf("no PDB for stateless %s", name)
				}
			}

			deny, ok := r.netpols[prefix+"default-deny"]
			if !ok || len(deny.Spec.PodSelector.MatchLabels) != 0 || len(deny.Spec.Ingress) != 0 || len(deny.Spec.Egress) != 0 ||
				!slices.Contains(deny.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(deny.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				t.Fatalf("want a default-deny NetworkPolicy for ingress and egress, got %+v", deny)
			}
			dnsOK := false
			for _, np := range r.netpols {
				if len(np.Spec.PodSelector.MatchLabels) != 0 {
					continue
				}
				for _, e := range np.Spec.Egress {
					for _, p := range e.Ports {
						if p.Port != nil && p.Port.IntValue() == 53 {
							dnsOK = true
						}
					}
				}
			}
			if !dnsOK {
				t.Error("default deny without DNS egress for every pod: nothing would resolve")
			}
			// The real flows: who must reach whom (README.md, "How a request flows").
			flows := [][3]any{
				{"load-balancer", "dashboard-ui", 8090}, {"load-balancer", "api-gateway", 8080},
				{"load-balancer", "load-balancer", 7100}, {"load-balancer", "user-service", 8001},
				{"load-balancer", "auth-service", 8002}, {"load-balancer", "blog-service", 8003},
				{"api-gateway", "auth-service", 8002}, {"api-gateway", "user-service", 8001},
				{"api-gateway", "blog-service", 8003}, {"auth-service", "user-service", 8101},
				{"user-service", "redis", 6379},
			}
			for _, f := range flows {
				from, to, port := f[0].(string), f[1].(string), f[2].(int)
				if !allowsEgress(r, from, to, port) {
					t.Errorf("NetworkPolicies block egress %s -> %s:%d", from, to, port)
				}
				if !allowsIngress(r, from, to, port) {
					t.Errorf("NetworkPolicies block ingress %s -> %s:%d", from, to, port)
				}
			}
			// And a flow that must stay closed.
			if allowsIngress(r, "dashboard-ui", "redis", 6379) || allowsEgress(r, "dashboard-ui", "user-service", 8001) {
				t.Error("NetworkPolicies let dashboard-ui reach the data tier")
			}
			// The internal listener is auth-service's alone.
			for _, from := range []string{"api-gateway", "load-balancer", "blog-service"} {
				if allowsIngress(r, from, "user-service", 8101) {
					t.Errorf("NetworkPolicies let %s reach user-service's internal port", from)
				}
			}
		})
	}
}

func selects(sel metav1.LabelSelector, app string) bool {
	if len(sel.MatchExpressions) != 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if k != "app.kubernetes.io/name" || v != app {
			return false
		}
	}
	return true
}

func portAllowed(ports []networkingv1.NetworkPolicyPort, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || p.Port.IntValue() == port {
			return true
		}
	}
	return false
}

func allowsEgress(r *rendered, from, to string, port int) bool {
	for _, np := range r.netpols {
		if !selects(np.Spec.PodSelector, from) {
			continue
		}
		for _, e := range np.Spec.Egress {
			for _, peer := range e.To {
				if peer.NamespaceSelector == nil && peer.PodSelector != nil && selects(*peer.PodSelector, to) && portAllowed(e.Ports, port) {
					return true
				}
			}
		}
	}
	return false
}

func allowsIngress(r *rendered, from, to string, port int) bool {
	for _, np := range r.netpols {
		if !selects(np.Spec.PodSelector, to) {
			continue
		}
		for _, in := range np.Spec.Ingress {
			if len(in.From) == 0 && portAllowed(in.Ports, port) {
				return true
			}
			for _, peer := range in.From {
				if peer.NamespaceSelector == nil && peer.PodSelector != nil && selects(*peer.PodSelector, from) && portAllowed(in.Ports, port) {
					return true
				}
			}
		}
	}
	return false
}

// k8sScheme knows every kind the manifests may hold.
var k8sScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// TestIngressesServeTLS: an Ingress terminates TLS with a named Secret and
// sends every path to a Service of its overlay on a port that Service has;
// the production overlay is reached through one, never through a plain-HTTP
// LoadBalancer Service (passwords and tokens cross the entry point).
func TestIngressesServeTLS(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			for _, ing := range r.ingresses {
				if len(ing.Spec.TLS) == 0 || ing.Spec.TLS[0].SecretName == "" {
					t.Errorf("Ingress %s: no TLS Secret", ing.Name)
				}
				for _, rule := range ing.Spec.Rules {
					if rule.HTTP == nil {
						continue
					}
					for _, path := range rule.HTTP.Paths {
						b := path.Backend.Service
						svc, ok := r.services[b.Name]
						if !ok || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
							return p.Name == b.Port.Name && b.Port.Name != "" || p.Port == b.Port.Number && b.Port.Number != 0
						}) {
							t.Errorf("Ingress %s: backend %s %+v is not a Service port of this overlay", ing.Name, b.Name, b.Port)
						}
					}
				}
			}
			if !strings.HasSuffix(dir, "/prod") {
				return
			}
			if len(r.ingresses) == 0 {
				t.Error("the production overlay has no TLS Ingress")
			}
			for _, svc := range r.services {
				if svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeNodePort {
					t.Errorf("Service %s is %s: plain HTTP from outside, past the TLS Ingress", svc.Name, svc.Spec.Type)
				}
			}
		})
	}
}
