package deploycheck

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml the way `docker compose` does
// (schema validation, interpolation, merge keys), with an empty
// environment: the first `docker-compose up --build` on a new machine.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := repoRoot(t)
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("titanium", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func TestCompose(t *testing.T) {
	p := loadCompose(t, map[string]string{})
	root := repoRoot(t)
	for _, s := range services {
		t.Run(s.Name, func(t *testing.T) {
			c, ok := p.Services[s.Name]
			if !ok {
				t.Fatalf("no compose service %s", s.Name)
			}
			if c.Build == nil || c.Build.Context != root || c.Build.Dockerfile != s.Name+"/Dockerfile" {
				t.Errorf("build %+v, want context . and dockerfile %s/Dockerfile", c.Build, s.Name)
			}
			if c.Image != "titanium/"+s.Name+":local" {
				t.Errorf("image %q, want titanium/%s:local", c.Image, s.Name)
			}
			if s.Name == "load-balancer" {
				// Published on loopback only unless the user asks otherwise.
				if len(c.Ports) != 1 || c.Ports[0].Target != 7100 || c.Ports[0].Published != "7100" || c.Ports[0].HostIP != "127.0.0.1" {
					t.Errorf("ports %+v, want 127.0.0.1:7100:7100", c.Ports)
				}
			} else if len(c.Ports) != 0 {
				t.Errorf("ports %+v: only the load balancer is published", c.Ports)
			}
			if c.HealthCheck == nil || !slices.Equal(c.HealthCheck.Test, []string{"CMD", "/usr/local/bin/healthcheck"}) {
				t.Errorf("healthcheck %+v, want CMD /usr/local/bin/healthcheck", c.HealthCheck)
			}
			for dep, d := range c.DependsOn {
				if dep == "secrets" {
					// The one-shot secret maker: wait for it to finish.
					if d.Condition != types.ServiceConditionCompletedSuccessfully {
						t.Errorf("depends_on secrets: condition %q, want service_completed_successfully", d.Condition)
					}
					continue
				}
				if d.Condition != types.ServiceConditionHealthy {
					t.Errorf("depends_on %s: condition %q, want service_healthy", dep, d.Condition)
				}
				if dc, ok := p.Services[dep]; !ok || dc.HealthCheck == nil || dc.HealthCheck.Disable {
					t.Errorf("depends_on %s: it has no healthcheck", dep)
				}
			}
			env := map[string]string{}
			for k, v := range c.Environment {
				if v == nil {
					t.Errorf("environment %s has no value", k)
					continue
				}
				env[k] = *v
			}
			reads := readsOf(t, s.Name)
			for _, k := range sortedKeys(env) {
				// A secret KEY is also read from the file KEY_FILE names.
				if base, ok := strings.CutSuffix(k, "_FILE"); ok && reads[base] {
					continue
				}
				if !reads[k] {
					t.Errorf("sets %s, which %s never reads", k, s.Name)
				}
			}
			for _, k := range wiringOf(t, s.Name) {
				if _, ok := env[k]; !ok && k != "LB_PEERS" {
					t.Errorf("%s is not set (devstack wires it)", k)
				}
			}
			if listenPort(env["LISTEN_ADDR"]) != s.Port {
				t.Errorf("LISTEN_ADDR %q, want :%d", env["LISTEN_ADDR"], s.Port)
			}
			if reads["JWT_SECRET"] {
				// The first run works without a key and without the public
				// development key: the per-deployment key secretgen made.
				if env["JWT_SECRET"] != "" || env["JWT_DEV_MODE"] != "" || env["JWT_SECRET_FILE"] != "/secrets/jwt-secret" {
					t.Errorf("with no JWT_SECRET in the environment: JWT_SECRET %q, JWT_DEV_MODE %q, JWT_SECRET_FILE %q; want the generated key file only",
						env["JWT_SECRET"], env["JWT_DEV_MODE"], env["JWT_SECRET_FILE"])
				}
				if !slices.ContainsFunc(c.Volumes, func(v types.ServiceVolumeConfig) bool {
					return v.Source == "secrets" && v.Target == "/secrets" && v.ReadOnly
				}) {
					t.Errorf("volumes %+v, want the secrets volume read-only at /secrets", c.Volumes)
				}
			}
			for k, v := range env {
				checkComposeURLs(t, p, k, v)
			}
			if dataDir(s) != "" {
				if !slices.ContainsFunc(c.Volumes, func(v types.ServiceVolumeConfig) bool {
					return v.Type == types.VolumeTypeVolume && v.Target == dataDir(s) && !v.ReadOnly && p.Volumes[v.Source].Name != ""
				}) {
					t.Errorf("volumes %+v, want a named volume at %s", c.Volumes, dataDir(s))
				}
			}
			if !c.ReadOnly || !slices.Contains(c.CapDrop, "ALL") {
				t.Error("want read_only and cap_drop ALL, as in Kubernetes")
			}
		})
	}
	// A new named volume takes the ownership of the image's directory it
	// is mounted on: every writable one must be the runtime user's.
	for name, c := range p.Services {
		if c.Build == nil || c.User != "" {
			continue
		}
		owned := chownedDirs(t, strings.TrimSuffix(c.Build.Dockerfile, "/Dockerfile"))
		for _, v := range c.Volumes {
			if v.Type == types.VolumeTypeVolume && !v.ReadOnly && !owned[v.Target] {
				t.Errorf("%s: writable volume at %s, which %s does not create owned by 65532", name, v.Target, c.Build.Dockerfile)
			}
		}
	}
	redis, ok := p.Services["redis"]
	if !ok || !pinned(redis.Image) || redis.HealthCheck == nil || len(redis.Ports) != 0 {
		t.Errorf("redis: %+v, want a pinned image with a healthcheck, not published", redis)
	}
	// The one-shot secret maker: secretgen from the auth-service image, no network.
	if sg, ok := p.Services["secrets"]; !ok || !slices.Contains(sg.Entrypoint, "/usr/local/bin/secretgen") ||
		sg.NetworkMode != "none" || !slices.ContainsFunc(sg.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Source == "secrets" && !v.ReadOnly }) {
		t.Errorf("secrets: %+v, want secretgen writing the secrets volume, with no network", sg)
	}
	if got := len(p.Volumes); got < 2 {
		t.Errorf("named volumes %v, want users and posts", p.Volumes)
	}
	// A real key given in the environment reaches every service that signs or verifies.
	p = loadCompose(t, map[string]string{"JWT_SECRET": strings.Repeat("k", 64)})
	for _, name := range []string{"user-service", "auth-service", "blog-service"} {
		if v := p.Services[name].Environment["JWT_SECRET"]; v == nil || *v != strings.Repeat("k", 64) {
			t.Errorf("%s: JWT_SECRET from the environment not passed through", name)
		}
	}
	// The backup tool runs on demand against the live volume, read-only.
	b, ok := p.Services["users-backup"]
	if !ok || len(b.Profiles) == 0 || !slices.Contains(b.Entrypoint, "/usr/local/bin/users-backup") {
		t.Errorf("users-backup: %+v, want an on-demand service running /usr/local/bin/users-backup", b)
	} else if checkArgs(t, "compose users-backup", b.Command); !slices.ContainsFunc(b.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" && v.ReadOnly }) {
		t.Error("users-backup must mount the users volume read-only at /data")
	}
}

// checkComposeURLs: every URL names a compose service on its listen port.
func checkComposeURLs(t *testing.T, p *types.Project, key, value string) {
	t.Helper()
	if _, ok := upstreamOf[key]; !ok && key != "LB_STATS_TARGETS" {
		return
	}
	for _, e := range endpoints(key, value) {
		target, raw := e[0], e[1]
		host, port, _, err := splitEndpoint(key, raw)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if host != target {
			t.Errorf("%s: %q reaches %q, want %s", key, raw, host, target)
		}
		// The ports the target listens on: redis's, or the service's
		// LISTEN_ADDR and, for user-service, its INTERNAL_ADDR.
		want := []int{6379}
		if s, ok := serviceNamed(target); ok {
			want = []int{s.Port}
			if c, ok := p.Services[host]; ok {
				if v := c.Environment["INTERNAL_ADDR"]; v != nil {
					want = append(want, listenPort(*v))
				}
			}
		}
		if _, ok := p.Services[host]; !ok || !slices.Contains(want, port) {
			t.Errorf("%s: %q: want compose service %s on port %v", key, raw, target, want)
		}
	}
}
