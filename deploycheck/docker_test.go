package deploycheck

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"
)

func parseDockerfile(t *testing.T, name string) []instructions.Stage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s/Dockerfile: %v", name, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s/Dockerfile: %s", name, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("%s/Dockerfile: %v", name, err)
	}
	return stages
}

func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func workspaceModules(t *testing.T) []string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "go.work")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := modfile.ParseWork(p, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, u := range wf.Use {
		dirs = append(dirs, path.Clean(u.Path))
	}
	return dirs
}

// contextFiles lists what a COPY source matches in the build context, with
// .dockerignore applied: a source may be a file, a directory or a glob.
func contextFiles(t *testing.T, pm *patternmatcher.PatternMatcher, src string) []string {
	t.Helper()
	root := repoRoot(t)
	matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(src, "/"))))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range matches {
		rel, _ := filepath.Rel(root, m)
		if ignored, _ := pm.MatchesOrParentMatches(filepath.ToSlash(rel)); ignored {
			continue
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

func TestDockerfiles(t *testing.T) {
	pm := dockerignore(t)
	modules := workspaceModules(t)
	for _, s := range services {
		t.Run(s.Name, func(t *testing.T) {
			stages := parseDockerfile(t, s.Name)
			stageNames := map[string]bool{}
			var build, runtime *instructions.Stage
			for i := range stages {
				st := &stages[i]
				if st.Name == "build" {
					build = st
				}
				if !stageNames[st.BaseName] && !imagePinned(st.BaseName) {
					t.Errorf("stage %q: base image %q is not pinned", st.Name, st.BaseName)
				}
				stageNames[st.Name] = true
				for _, cmd := range st.Commands {
					cp, ok := cmd.(*instructions.CopyCommand)
					if !ok || cp.From != "" {
						continue
					}
					// Every COPY source exists in the build context; a glob
					// may match nothing only beside sources that exist.
					found := 0
					for _, src := range cp.SourcePaths {
						n := len(contextFiles(t, pm, src))
						if n == 0 && !strings.ContainsAny(src, "*?[") {
							t.Errorf("stage %q: COPY source %q is not in the build context (missing or .dockerignored)", st.Name, src)
						}
						found += n
					}
					if found == 0 {
						t.Errorf("stage %q: COPY %v copies nothing", st.Name, cp.SourcePaths)
					}
				}
			}
			runtime = &stages[len(stages)-1]
			if build == nil {
				t.Fatal("no stage named build")
			}
			checkBuildStage(t, s, build, modules)
			checkRuntimeStage(t, s, runtime)
			if s.Name == "dashboard-ui" {
				checkAssetsStage(t, stages)
			}
		})
	}
}

var goBuild = regexp.MustCompile(`CGO_ENABLED=([01]) go build [^&]*?-o /out/bin/ ([^&\\\n]+)`)

func checkBuildStage(t *testing.T, s service, st *instructions.Stage, modules []string) {
	t.Helper()
	if !strings.HasPrefix(st.BaseName, "golang:") || !strings.HasSuffix(st.BaseName, "-bookworm") {
		t.Errorf("build stage FROM %s, want golang:<version>-bookworm (glibc matching distroless debian12)", st.BaseName)
	}
	// The whole context: go.work finds every module it uses, and nothing
	// is listed per module (adding a module edits no Dockerfile).
	copiedAll, built := false, false
	for _, cmd := range st.Commands {
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			if c.From == "" && slices.Equal(c.SourcePaths, []string{"."}) {
				copiedAll = true
			}
		case *instructions.RunCommand:
			line := strings.Join(c.CmdLine, " ")
			if !strings.Contains(line, "go build") {
				continue
			}
			if !copiedAll {
				t.Error("go build before the context is copied (COPY . .)")
			}
			// The mounts are parsed when the instruction is expanded.
			if err := c.Expand(func(word string) (string, error) { return word, nil }); err != nil {
				t.Fatal(err)
			}
			caches := map[string]bool{}
			for _, m := range instructions.GetMounts(c) {
				if m.Type == instructions.MountTypeCache {
					caches[m.Target] = true
				}
			}
			if !caches["/go/pkg/mod"] || !caches["/root/.cache/go-build"] {
				t.Errorf("go build without cache mounts on /go/pkg/mod and /root/.cache/go-build: %v", caches)
			}
			for _, m := range goBuild.FindAllStringSubmatch(line, -1) {
				built = true
				pkgs := strings.Fields(m[2])
				if slices.Contains(pkgs, "./"+s.Name) {
					want := "0"
					if s.CGO {
						want = "1"
					}
					if m[1] != want {
						t.Errorf("%s built with CGO_ENABLED=%s, want %s", s.Name, m[1], want)
					}
				}
				if slices.Contains(pkgs, "./deploycheck/cmd/healthcheck") && m[1] != "0" {
					t.Error("healthcheck must be static (CGO_ENABLED=0)")
				}
			}
		}
	}
	pm := dockerignore(t)
	for _, m := range append([]string{"."}, modules...) {
		for _, f := range []string{"go.work", "go.mod"} {
			if m != "." && f == "go.work" || m == "." && f == "go.mod" {
				continue
			}
			if ignored, _ := pm.MatchesOrParentMatches(path.Join(m, f)); ignored {
				t.Errorf("%s is .dockerignored: go.work needs it", path.Join(m, f))
			}
		}
	}
	if !built {
		t.Errorf("no `CGO_ENABLED=x go build ... -o /out/bin/ ...` line")
	}
	for _, pkg := range buildTargets(t, s) {
		if _, err := os.Stat(filepath.Join(repoRoot(t), pkg)); err != nil {
			t.Errorf("go build target %s: %v", pkg, err)
		}
	}
	if s.Name == "user-service" && !slices.Contains(buildTargets(t, s), "./user-service/cmd/users-backup") {
		t.Error("the user-service image must carry users-backup (the backup CronJob runs it)")
	}
}

// buildTargets returns the packages the build stage compiles.
func buildTargets(t *testing.T, s service) []string {
	t.Helper()
	var out []string
	for _, st := range parseDockerfile(t, s.Name) {
		for _, cmd := range st.Commands {
			if c, ok := cmd.(*instructions.RunCommand); ok {
				for _, m := range goBuild.FindAllStringSubmatch(strings.Join(c.CmdLine, " "), -1) {
					out = append(out, strings.Fields(m[2])...)
				}
			}
		}
	}
	return out
}

func checkRuntimeStage(t *testing.T, s service, st *instructions.Stage) {
	t.Helper()
	wantBase := "gcr.io/distroless/static-debian12:nonroot"
	if s.CGO {
		wantBase = "gcr.io/distroless/base-debian12:nonroot"
	}
	if st.BaseName != wantBase && !strings.HasPrefix(st.BaseName, wantBase+"@sha256:") {
		t.Errorf("runtime FROM %s, want %s", st.BaseName, wantBase)
	}
	var user, entrypoint, health string
	var exposed []string
	env := map[string]string{}
	chowned := chownedDirs(t, s.Name)
	for _, cmd := range st.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = strings.Join(c.CmdLine, " ")
			if c.PrependShell {
				t.Error("ENTRYPOINT in shell form: distroless has no shell, and signals must reach the service")
			}
		case *instructions.HealthCheckCommand:
			health = strings.Join(c.Health.Test, " ")
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
			}
		}
	}
	if user != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532 (numeric, so Kubernetes can verify runAsNonRoot)", user)
	}
	if entrypoint != "/usr/local/bin/"+s.Name {
		t.Errorf("ENTRYPOINT %q, want /usr/local/bin/%s", entrypoint, s.Name)
	}
	if health != "CMD /usr/local/bin/healthcheck" {
		t.Errorf("HEALTHCHECK %q, want CMD /usr/local/bin/healthcheck", health)
	}
	if !slices.Contains(exposed, strconv.Itoa(s.Port)) {
		t.Errorf("EXPOSE %v, want %d", exposed, s.Port)
	}
	if listenPort(env["LISTEN_ADDR"]) != s.Port {
		t.Errorf("ENV LISTEN_ADDR=%q, want :%d (the healthcheck reads it)", env["LISTEN_ADDR"], s.Port)
	}
	reads := readsOf(t, s.Name)
	for k := range env {
		if !reads[k] {
			t.Errorf("ENV %s: %s never reads it", k, s.Name)
		}
	}
	if dataDir(s) != "" {
		if !chowned[dataDir(s)] {
			t.Errorf("%s is not created owned by 65532: a new named volume there would be root's", dataDir(s))
		}
		var dbPath string
		for k, v := range env {
			if strings.HasSuffix(k, "_DB_PATH") {
				dbPath = v
			}
		}
		if filepath.Dir(dbPath) != dataDir(s) {
			t.Errorf("database path %q, want it in %s", dbPath, dataDir(s))
		}
	}
}

// chownedDirs are the paths the runtime stage of name's Dockerfile copies in
// owned by the runtime user.
func chownedDirs(t *testing.T, name string) map[string]bool {
	t.Helper()
	stages := parseDockerfile(t, name)
	owned := map[string]bool{}
	for _, cmd := range stages[len(stages)-1].Commands {
		if c, ok := cmd.(*instructions.CopyCommand); ok && c.Chown == "65532:65532" {
			owned[c.DestPath] = true
		}
	}
	return owned
}

func checkAssetsStage(t *testing.T, stages []instructions.Stage) {
	t.Helper()
	var ci, vendor, copied bool
	for _, st := range stages {
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				ci = ci || strings.Contains(line, "npm ci")
				vendor = vendor || strings.Contains(line, "scripts/vendor.sh")
			case *instructions.CopyCommand:
				if c.From == "assets" && slices.ContainsFunc(c.SourcePaths, func(p string) bool { return strings.Contains(p, "web/static/vendor") }) {
					copied = true
				}
			}
		}
	}
	if !ci || !vendor || !copied {
		t.Errorf("dashboard-ui: npm ci %v, vendor.sh %v, vendored Chart.js copied into the Go build %v: want all", ci, vendor, copied)
	}
	// vendor.sh must still write where the Dockerfile copies from.
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "dashboard-ui", "scripts", "vendor.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "web/static/vendor") {
		t.Error("dashboard-ui/scripts/vendor.sh no longer writes to web/static/vendor")
	}
}

// imagePinned: a digest, an exact x.y.z version tag, or a distroless
// debian12 nonroot image (distroless publishes no version tags; pin its
// digest for reproducible builds).
func imagePinned(image string) bool {
	if strings.HasPrefix(image, "gcr.io/distroless/") && strings.Contains(image, "-debian12:nonroot") {
		return true
	}
	return pinned(image)
}

// TestDockerBuildContextIsEnough replays each build stage's COPY lines into
// an empty directory (with .dockerignore applied) and compiles the stage's
// go build targets there with the module proxy off: it proves the image
// build copies everything the build needs, short of running Docker.
func TestDockerBuildContextIsEnough(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles every service")
	}
	pm := dockerignore(t)
	for _, s := range services {
		t.Run(s.Name, func(t *testing.T) {
			dir := t.TempDir()
			var build *instructions.Stage
			stages := parseDockerfile(t, s.Name)
			for i := range stages {
				if stages[i].Name == "build" {
					build = &stages[i]
				}
			}
			for _, cmd := range build.Commands {
				cp, ok := cmd.(*instructions.CopyCommand)
				if !ok || cp.From != "" {
					continue
				}
				for _, src := range cp.SourcePaths {
					for _, rel := range contextFiles(t, pm, src) {
						replayCopy(t, pm, rel, filepath.Join(dir, filepath.FromSlash(cp.DestPath)), strings.HasSuffix(cp.DestPath, "/"))
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cgo := "0"
			if s.CGO {
				cgo = "1"
			}
			args := append([]string{"build", "-trimpath", "-o", filepath.Join(dir, "out") + "/"}, buildTargets(t, s)...)
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=", "CGO_ENABLED="+cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build in the replayed context: %v\n%s", err, out)
			}
		})
	}
}

// replayCopy copies one context path to dest as COPY does: a directory's
// contents into dest, a file into dest (a directory when it ends in /).
func replayCopy(t *testing.T, pm *patternmatcher.PatternMatcher, rel, dest string, destIsDir bool) {
	t.Helper()
	root := repoRoot(t)
	src := filepath.Join(root, filepath.FromSlash(rel))
	info, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() {
		if destIsDir {
			dest = filepath.Join(dest, filepath.Base(src))
		}
		copyOne(t, src, dest)
		return
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		if ignored, _ := pm.MatchesOrParentMatches(filepath.ToSlash(r)); ignored {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		sub, _ := filepath.Rel(src, p)
		copyOne(t, p, filepath.Join(dest, sub))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyOne(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
