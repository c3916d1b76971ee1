// Package nginx runs a throwaway nginx reverse proxy (the one from apt) for
// the proxy comparison: its own prefix and config in a temp dir, loopback
// only, keepalive to the upstream, no access log, in the foreground.
package nginx

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"titanium/devstack"
)

// Proxy is a running nginx.
type Proxy struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

// Binary is nginx's path: $NGINX, else /usr/sbin/nginx, else from PATH.
func Binary() (string, error) {
	if p := os.Getenv("NGINX"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return exec.LookPath("nginx")
}

// Config is the nginx.conf for a proxy on 127.0.0.1:port to upstream
// (host:port), with every path inside dir.
func Config(dir string, port int, upstream string, workers int) string {
	user := ""
	if os.Geteuid() == 0 {
		// As root nginx would switch workers to "nobody", who cannot use
		// our private temp dir.
		user = "user root;\n"
	}
	return fmt.Sprintf(`%sworker_processes %d;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path %[3]s/client_body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    keepalive_requests 100000;
    upstream backend {
        server %[4]s;
        keepalive 256;
        keepalive_requests 100000;
    }
    server {
        listen 127.0.0.1:%[5]d;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`, user, workers, dir, upstream, port)
}

// Start writes the config into a new temp dir and starts nginx in the
// foreground; it returns once the port answers.
func Start(ctx context.Context, port int, upstream string, workers int) (*Proxy, error) {
	bin, err := Binary()
	if err != nil {
		return nil, fmt.Errorf("nginx not found (apt-get install nginx-light): %w", err)
	}
	dir, err := os.MkdirTemp("", "titanium-bench-nginx-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(Config(dir, port, upstream, workers)), 0o644); err != nil {
		return nil, err
	}
	// -e sets the error log before the config is read, so nginx never
	// touches /var/log/nginx.
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.SysProcAttr = devstack.SysProcAttr()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &Proxy{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{}), dir: dir}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := (&netDialer{}).dial(ctx, port); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx exited: %s %s", out.String(), log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("nginx did not listen on %d within 10 s", port)
		}
	}
}

// Pids are the master and worker processes (for CPU/RSS accounting).
func (p *Proxy) Pid() int { return p.cmd.Process.Pid }

// Stop asks nginx to quit (SIGQUIT: graceful), kills it after 5 s, and
// removes its temp dir.
func (p *Proxy) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	os.RemoveAll(p.dir)
}
