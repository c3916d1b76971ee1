package httpapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"titanium/devstack"
)

// The tests log in against the real user-service binary, built once per
// test process from this workspace and run with its own SQLite file.

var (
	buildOnce sync.Once
	userBin   string
	buildErr  error
)

func buildUserService(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		root, err := devstack.FindRoot(".")
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "auth-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		userBin = filepath.Join(dir, "user-service")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", userBin, "./user-service")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build user-service: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return userBin
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// userService is a running user-service: its public base URL (the API)
// and its internal one (/internal/authenticate, what auth-service calls).
type userService struct{ public, internal string }

// startUserService runs user-service without Redis (the cache is optional)
// and returns its base URL; it is stopped at cleanup.
func startUserService(tb testing.TB) userService {
	tb.Helper()
	bin := buildUserService(tb)
	port, internal := freePort(tb), freePort(tb)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("INTERNAL_ADDR=127.0.0.1:%d", internal),
		"USERS_DB_PATH="+filepath.Join(tb.TempDir(), "users.db"),
		fmt.Sprintf("REDIS_ADDR=127.0.0.1:%d", freePort(tb)), // nothing listens: cache OFFLINE
		"JWT_SECRET="+string(testJWT.Secret),
		"LOG_LEVEL=warn",
	)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return userService{public: url, internal: fmt.Sprintf("http://127.0.0.1:%d", internal)}
			}
		}
		select {
		case <-done:
			tb.Fatal("user-service exited during start")
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("user-service not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registerUser creates a user through user-service's API.
func registerUser(tb testing.TB, base, name, password string) {
	tb.Helper()
	body := fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password":%q}`, name, name, password)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(base+"/api/users", "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("register %s: %d %s", name, resp.StatusCode, b)
	}
}
