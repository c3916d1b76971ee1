package deploycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"titanium/platform/envconfig"
	"titanium/platform/topology"
)

// The checks here take each service's variables from the service itself:
// its binary, built once, prints them with -env-list (service.Main).

// binDir holds the binaries once built, for TestMain to remove.
var binDir string

// buildBinaries builds every service and users-backup into a temp dir.
var buildBinaries = sync.OnceValues(func() (string, error) {
	root, err := findRoot()
	if err != nil {
		return "", err
	}
	if binDir, err = os.MkdirTemp("", "deploycheck-bin-"); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", binDir + string(os.PathSeparator), "./user-service/cmd/users-backup"}
	for _, s := range services {
		args = append(args, "./"+s.Name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err, out}
	}
	return binDir, nil
})

// binaries is the directory of the built binaries.
func binaries(t *testing.T) string {
	t.Helper()
	dir, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	declMu    sync.Mutex
	declCache = map[string][]envconfig.Var{}
)

// declared is the variable list service name prints with -env-list.
func declared(t *testing.T, name string) []envconfig.Var {
	t.Helper()
	declMu.Lock()
	defer declMu.Unlock()
	if v, ok := declCache[name]; ok {
		return v
	}
	bin := filepath.Join(binaries(t), name) // the build is not the run's deadline
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-env-list")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -env-list: %v\n%s", name, err, stderr.String())
	}
	var vars []envconfig.Var
	if err := json.Unmarshal(out, &vars); err != nil {
		t.Fatalf("%s -env-list: %v\n%s", name, err, out)
	}
	if len(vars) == 0 {
		t.Fatalf("%s -env-list: no variables", name)
	}
	declCache[name] = vars
	return vars
}

// readsOf is the set of variables service name reads: each declared one,
// and for a secret NAME also NAME_FILE.
func readsOf(t *testing.T, name string) map[string]bool {
	t.Helper()
	reads := map[string]bool{}
	for _, v := range declared(t, name) {
		reads[v.Name] = true
		if v.File != "" {
			reads[v.File] = true
		}
	}
	return reads
}

// defaultOf is the default a service declares for a variable.
func defaultOf(t *testing.T, name, key string) (string, bool) {
	t.Helper()
	for _, v := range declared(t, name) {
		if v.Name == key {
			return v.Default, true
		}
	}
	return "", false
}

// wiringOf returns the variables that connect a service to the rest of the
// system, from the topology (devstack sets each of them): every deployment
// must set them.
func wiringOf(t *testing.T, name string) []string {
	t.Helper()
	s := topology.Get(name)
	var keys []string
	for _, u := range s.Upstreams {
		keys = append(keys, u.Var)
	}
	if s.InternalVar != "" {
		keys = append(keys, s.InternalVar)
	}
	if s.Data != nil {
		keys = append(keys, s.Data.Var)
	}
	if s.JWT {
		keys = append(keys, "JWT_SECRET")
	}
	slices.Sort(keys)
	return keys
}

// defaultPort is the port of the listen address a service declares as
// LISTEN_ADDR's default.
func defaultPort(t *testing.T, name string) int {
	t.Helper()
	def, ok := defaultOf(t, name, "LISTEN_ADDR")
	if !ok {
		t.Fatalf("%s does not declare LISTEN_ADDR", name)
	}
	return listenPort(def)
}

// TestDeclaredVariablesMatchTopology: each binary declares what the
// topology says about it (its port, internal listener, database, token key
// and wiring variables), with the defaults of a one-host run.
func TestDeclaredVariablesMatchTopology(t *testing.T) {
	for _, s := range services {
		t.Run(s.Name, func(t *testing.T) {
			if got := defaultPort(t, s.Name); got != s.Port {
				t.Errorf("LISTEN_ADDR default port %d, want %d", got, s.Port)
			}
			reads := readsOf(t, s.Name)
			for _, k := range wiringOf(t, s.Name) {
				if !reads[k] {
					t.Errorf("does not declare %s, which the topology wires", k)
				}
			}
			if got := reads["JWT_SECRET"]; got != s.JWT {
				t.Errorf("reads JWT_SECRET %v, topology says JWT %v", got, s.JWT)
			}
			for _, u := range s.Upstreams {
				if def, _ := defaultOf(t, s.Name, u.Var); def != s.LocalDefault(u.Var) {
					t.Errorf("%s default %q, want %q (every service on this host)", u.Var, def, s.LocalDefault(u.Var))
				}
			}
			if s.InternalVar != "" {
				if def, _ := defaultOf(t, s.Name, s.InternalVar); listenPort(def) != s.InternalPort {
					t.Errorf("%s default %q, want port %d", s.InternalVar, def, s.InternalPort)
				}
			}
			for _, v := range declared(t, s.Name) {
				if strings.TrimSpace(v.Help) == "" {
					t.Errorf("%s has no meaning in -help", v.Name)
				}
			}
		})
	}
}

var docVar = regexp.MustCompile("`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")

// TestDocsListEveryVariable: every variable a service declares is in a
// table of README.md or docs/*.md, and every variable those tables name is
// one some service (or users-backup) reads, so docs and -help agree.
func TestDocsListEveryVariable(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	documented := map[string]string{}
	docDefaults := map[string][][2]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "|") {
				continue
			}
			// The first cell names the variables a row describes.
			cells := strings.Split(line, "|")
			if len(cells) < 3 {
				continue
			}
			for _, m := range docVar.FindAllStringSubmatch(cells[1], -1) {
				documented[m[1]] = filepath.Base(f)
			}
			// A row of one variable with one `value` as its default: the
			// third column of README's table (variable, service, default,
			// meaning), the second of the others (variable, default, meaning).
			col := 2
			if len(cells) >= 6 {
				col = 3
			}
			name, def := docOne.FindStringSubmatch(strings.TrimSpace(cells[1])), docOne.FindStringSubmatch(strings.TrimSpace(cells[col]))
			if name != nil && def != nil {
				docDefaults[name[1]] = append(docDefaults[name[1]], [2]string{filepath.Base(f), def[1]})
			}
		}
	}
	// A documented default is that of a service the file is about (of any
	// service for the others) that declares the variable.
	for name, docs := range docDefaults {
		for _, d := range docs {
			var found []string
			ok := false
			for _, s := range services {
				if about, known := docAbout[d[0]]; known && !slices.Contains(about, s.Name) {
					continue
				}
				for _, v := range declared(t, s.Name) {
					if v.Name == name {
						found = append(found, s.Name+": "+v.Default)
						ok = ok || sameDefault(v, d[1])
					}
				}
			}
			if len(found) > 0 && !ok {
				t.Errorf("%s says %s defaults to %q; the code: %v", d[0], name, d[1], found)
			}
		}
	}
	read := map[string]bool{}
	for _, s := range services {
		for k := range readsOf(t, s.Name) {
			read[k] = true
		}
		for _, v := range declared(t, s.Name) {
			if _, ok := documented[v.Name]; !ok {
				t.Errorf("%s reads %s, which no table in README.md or docs/*.md lists", s.Name, v.Name)
			}
		}
	}
	for k, f := range documented {
		if !read[k] && !strings.HasPrefix(k, "BACKUP_") && !slices.Contains(toolVars, k) {
			t.Errorf("%s lists %s in a table's first column, which no service reads", f, k)
		}
	}
}

// docAbout names the services each service document is about.
var docAbout = map[string][]string{
	"api-gateway.md":   {"api-gateway"},
	"user-auth.md":     {"user-service", "auth-service"},
	"blog-service.md":  {"blog-service"},
	"load-balancer.md": {"load-balancer"},
	"dashboard.md":     {"dashboard-ui"},
}

// docOne matches a cell that is one `value`.
var docOne = regexp.MustCompile("^`([^`]*)`$")

// sameDefault: the documented default is the declared one (durations
// compared as durations: 60s is 1m0s).
func sameDefault(v envconfig.Var, doc string) bool {
	if v.Default == doc {
		return true
	}
	if v.Type == "duration" {
		a, err1 := time.ParseDuration(v.Default)
		b, err2 := time.ParseDuration(doc)
		return err1 == nil && err2 == nil && a == b
	}
	return false
}

// toolVars are variables of the repository's tools and deployments, not
// of a service, that the docs' tables list.
var toolVars = []string{"TITANIUM_PUBLISH_ADDR", "K8S_VERIFY_OVERLAYS", "K8S_VERIFY_CACHE"}

// checkArgs runs users-backup with a manifest's arguments followed by
// -help: it exits 0 only when every argument before is a flag it defines
// with a valid value.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	bin := filepath.Join(binaries(t), "users-backup")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(slices.Clone(args), "-help")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: users-backup %q: %v\n%s", where, args, err, out)
	}
}
