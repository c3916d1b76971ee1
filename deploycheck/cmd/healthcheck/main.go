// Command healthcheck is the container health probe baked into every
// Titanium image. The runtime images are distroless (no shell, curl or wget),
// so Docker's HEALTHCHECK and docker-compose run this tiny static binary
// instead: it GETs http://127.0.0.1:<port>/readyz with a 2 s timeout and exits
// 0 on 200 OK, 1 otherwise. The port comes from -addr or, by default, from the
// service's own LISTEN_ADDR, which the container shares with this process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "", "the service's listen address, such as :8001 (default $LISTEN_ADDR)")
	path := flag.String("path", "/readyz", "the route to GET")
	timeout := flag.Duration("timeout", 2*time.Second, "the whole check's deadline")
	flag.Parse()
	if *addr == "" {
		*addr = os.Getenv("LISTEN_ADDR")
	}
	url, err := probeURL(*addr, *path)
	if err == nil {
		err = probe(url, *timeout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// probeURL turns a listen address into the URL to probe. A wildcard or empty
// host means the service listens on every interface, loopback included.
func probeURL(listenAddr, path string) (string, error) {
	if listenAddr == "" {
		return "", errors.New("no address: pass -addr or set LISTEN_ADDR")
	}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listenAddr, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("listen address %q has no fixed port", listenAddr)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// probe GETs url and wants 200 OK within timeout.
func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
