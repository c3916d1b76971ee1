package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"titanium/devstack"
)

// startProc starts bin with args and extra env on a free port (passed as
// LISTEN_ADDR and in args as {addr}) as a devstack process (own process
// group, killed if the bench dies) and waits until readyPath answers 200.
func startProc(ctx context.Context, name, bin string, args []string, env map[string]string, readyPath string) (*devstack.Proc, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	all := map[string]string{"LISTEN_ADDR": addr, "LOG_LEVEL": "warn"}
	maps.Copy(all, env)
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return devstack.StartProc(rctx, name, bin, args, all, port, readyPath)
}

// startBackend runs the trivial backend as a child of this binary.
func startBackend(ctx context.Context) (*devstack.Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(ctx, "backend", self, []string{"backend", "{addr}"}, nil, "/")
}

// startStockProxy runs a stock httputil.ReverseProxy in front of upstream,
// as a child of this binary.
func startStockProxy(ctx context.Context, upstream string) (*devstack.Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(ctx, "stock-proxy", self, []string{"stock-proxy", "{addr}", upstream}, nil, "/")
}

// startLB runs the load balancer binary alone in front of upstream, with
// its fasthttp front (the default) or on the net/http chain alone.
// extra are more variables as key, value pairs (GOMAXPROCS, say).
func startLB(ctx context.Context, bin, upstream string, trafficStats, fastPath bool, extra ...string) (*devstack.Proc, error) {
	env := map[string]string{
		"INSTANCE_ID":      "bench-lb",
		"LB_API_UPSTREAMS": upstream,
		"LB_UI_UPSTREAMS":  upstream,
		"LB_STATS_TARGETS": "",
		"LB_PEERS":         "",
		"LB_TRAFFIC_STATS": strconv.FormatBool(trafficStats),
		"LB_FAST_PATH":     strconv.FormatBool(fastPath),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return startProc(ctx, "load-balancer", bin+"/load-balancer", nil, env, "/readyz")
}

// procStatusKB reads a "VmRSS"-style field of /proc/<pid>/status in kB.
func procStatusKB(pid int, field string) (int, error) {
	v, err := procFields(fmt.Sprintf("/proc/%d/status", pid), field)
	if err != nil {
		return 0, err
	}
	return int(v[0]), nil
}

// procFields reads the numbers of "name: value [unit]" lines of a /proc
// file (status, io), in the order of names; a missing name is an error.
func procFields(path string, names ...string) ([]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(names))
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		name, v, ok := strings.Cut(line, ":")
		i := slices.Index(names, name)
		if !ok || i < 0 {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if out[i], err = strconv.ParseInt(f[0], 10, 64); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		found++
	}
	if found < len(names) {
		return nil, fmt.Errorf("%s lacks one of %v", path, names)
	}
	return out, nil
}

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on Linux for every architecture we run on.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
