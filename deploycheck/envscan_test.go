package deploycheck

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// envReaders are the envconfig.Reader methods that read a variable.
var envReaders = map[string]bool{"String": true, "Secret": true, "Int": true, "Duration": true, "Bool": true, "List": true}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

var (
	readsMu    sync.Mutex
	readsCache = map[string]map[string]bool{}
)

// readsOf returns the environment variables the binary built from pkg (a
// path relative to the repository root, such as ./user-service) reads. It
// follows the code: every workspace package the binary links is scanned for
// calls env.String("X", ...), env.Secret, env.Int, env.Duration, env.Bool,
// env.List (the envconfig.Reader every service gets is named env) and
// os.Getenv/os.LookupEnv. A call whose name is not a literal (a table of
// names) makes every VARIABLE_LIKE string literal of that file count.
func readsOf(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	readsMu.Lock()
	defer readsMu.Unlock()
	if r, ok := readsCache[pkg]; ok {
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f",
		`{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .GoFiles " "}} {{join .CgoFiles " "}}`, pkg)
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
	}
	reads := map[string]bool{}
	fset := token.NewFileSet()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[0], "titanium/") {
			continue
		}
		for _, name := range strings.Fields(parts[2]) {
			path := filepath.Join(parts[1], name)
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			scanFile(f, reads)
		}
	}
	if len(reads) == 0 {
		t.Fatalf("no environment reads found for %s: the scanner no longer matches the code", pkg)
	}
	readsCache[pkg] = reads
	return reads
}

func scanFile(f *ast.File, reads map[string]bool) {
	dynamic := false
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		recv, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		isEnv := recv.Name == "env" && envReaders[sel.Sel.Name]
		isOS := recv.Name == "os" && (sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv")
		if !isEnv && !isOS {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if name, err := strconv.Unquote(lit.Value); err == nil {
				reads[name] = true
			}
		} else if isEnv {
			dynamic = true
		}
		return true
	})
	if !dynamic {
		return
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if name, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(name) {
				reads[name] = true
			}
		}
		return true
	})
}

var (
	wiringOnce sync.Once
	wiring     map[string][]string
	wiringErr  error
)

// wiringOf returns the variables that connect a service to the rest of the
// system, taken from devstack/stack.go's serviceEnv (the local run's wiring,
// exercised by every whole-stack test): every deployment must set them.
func wiringOf(t *testing.T, name string) []string {
	t.Helper()
	wiringOnce.Do(func() {
		path := filepath.Join(repoRoot(t), "devstack", "stack.go")
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			wiringErr = err
			return
		}
		wiring = map[string][]string{}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "serviceEnv" {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				cc, ok := n.(*ast.CaseClause)
				if !ok {
					return true
				}
				var keys []string
				ast.Inspect(&ast.BlockStmt{List: cc.Body}, func(n ast.Node) bool {
					if as, ok := n.(*ast.AssignStmt); ok {
						for _, lhs := range as.Lhs {
							if ix, ok := lhs.(*ast.IndexExpr); ok {
								if lit, ok := ix.Index.(*ast.BasicLit); ok && lit.Kind == token.STRING {
									k, _ := strconv.Unquote(lit.Value)
									keys = append(keys, k)
								}
							}
						}
					}
					return true
				})
				for _, v := range cc.List {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						svc, _ := strconv.Unquote(lit.Value)
						wiring[svc] = append(wiring[svc], keys...)
					}
				}
				return false
			})
		}
		if len(wiring) == 0 {
			wiringErr = fmt.Errorf("%s: no serviceEnv switch found", path)
		}
	})
	if wiringErr != nil {
		t.Fatal(wiringErr)
	}
	keys := slices.Clone(wiring[name])
	slices.Sort(keys)
	return slices.Compact(keys)
}

func TestEnvScanFindsKnownReads(t *testing.T) {
	// The scanner must see the platform's variables through every service,
	// and the JWT ones only where jwtauth is linked.
	for _, s := range services {
		reads := readsOf(t, "./"+s.Name)
		for _, v := range []string{"LISTEN_ADDR", "INSTANCE_ID", "LOG_LEVEL", "SHUTDOWN_DELAY", "SHUTDOWN_TIMEOUT"} {
			if !reads[v] {
				t.Errorf("%s: scanner did not find %s", s.Name, v)
			}
		}
	}
	for _, name := range []string{"user-service", "auth-service", "blog-service"} {
		if !readsOf(t, "./"+name)["JWT_SECRET"] {
			t.Errorf("%s: scanner did not find JWT_SECRET", name)
		}
	}
	if readsOf(t, "./dashboard-ui")["JWT_SECRET"] {
		t.Error("dashboard-ui: scanner claims JWT_SECRET, which it does not read")
	}
	if w := wiringOf(t, "load-balancer"); !slices.Contains(w, "LB_STATS_TARGETS") {
		t.Errorf("wiring of load-balancer = %v, want LB_STATS_TARGETS among it", w)
	}
}

// defaultPort is the port of the default address a service passes to
// service.Start in its main.go.
func defaultPort(t *testing.T, name string) int {
	t.Helper()
	path := filepath.Join(repoRoot(t), name, "main.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := 0
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 4 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Start" {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "service" {
			return true
		}
		if lit, ok := call.Args[3].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			addr, _ := strconv.Unquote(lit.Value)
			port = listenPort(addr)
		}
		return false
	})
	if port == 0 {
		t.Fatalf("%s: no service.Start(..., \":port\") call found", path)
	}
	return port
}

// flagsOf returns the command-line flags the main package in dir defines
// (flag.X("name", ...) and fs.XVar(&v, "name", ...) calls).
func flagsOf(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), dir))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot(t), dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	flags := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			idx := 0
			if strings.HasSuffix(sel.Sel.Name, "Var") {
				idx = 1
			}
			switch strings.TrimSuffix(sel.Sel.Name, "Var") {
			case "String", "Int", "Int64", "Uint", "Bool", "Duration", "Float64":
			default:
				return true
			}
			if recv, ok := sel.X.(*ast.Ident); !ok || (recv.Name != "fs" && recv.Name != "flag") || len(call.Args) <= idx {
				return true
			}
			if lit, ok := call.Args[idx].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, _ := strconv.Unquote(lit.Value)
				flags[name] = true
			}
			return true
		})
	}
	if len(flags) == 0 {
		t.Fatalf("%s: no flags found", dir)
	}
	return flags
}

// checkArgs fails on any -flag=value or -flag argument the tool does not define.
func checkArgs(t *testing.T, where string, args []string, flags map[string]bool) {
	t.Helper()
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: argument %q: the tool has no flag %q", where, a, name)
		}
	}
}
