// Package userclient calls user-service's internal authenticate endpoint
// through an upstream.Pool, the instance pool the gateway and the load
// balancer use: USER_SERVICE_URL has their grammar (base URLs, or
// dns+http://name:port for one instance per address, re-resolved), calls
// go to a ready instance, and a call that could not connect is sent once
// more, to another instance when there is one, so one dead instance never
// fails a login.
package userclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"titanium/platform/memo"
	"titanium/platform/service"
	"titanium/platform/upstream"
)

// Errors callers switch on.
var (
	// ErrBadCredentials: the user does not exist or the password is wrong
	// (user-service does not say which, and neither do we).
	ErrBadCredentials = errors.New("invalid username or password")
	// ErrUnavailable: no user-service instance could answer.
	ErrUnavailable = errors.New("user-service unavailable")
)

// Identity is who a successful authentication proved.
type Identity struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

const (
	// AttemptTimeout bounds the wait for one instance's answer. user-service
	// may queue a password check for up to 2 s when its hashing slots are
	// busy, then ~100 ms of bcrypt; past that it is not coming.
	AttemptTimeout = 3 * time.Second
	// DialTimeout bounds a connect; a failed one is the retry's cue.
	DialTimeout = time.Second
	// callTimeout bounds a whole call: a failed connect, then one attempt.
	callTimeout = DialTimeout + AttemptTimeout
	// probeTimeout bounds one /readyz check for /stats.
	probeTimeout = 500 * time.Millisecond
)

// Client is a user-service client over a pool of instances.
type Client struct {
	pool  *upstream.Pool
	http  *http.Client // through the pool
	probe *http.Client // straight to one instance, for /stats
	reach *memo.Value[[]InstanceStatus]
}

// New returns a client for instance specs in the upstream grammar
// ("http://127.0.0.1:8101", "dns+http://user-service-headless:8101").
// Instances are health-checked on /readyz and DNS names re-resolved while
// Run runs.
func New(specs []string, logger *slog.Logger) (*Client, error) {
	pool, err := upstream.New("user-service", specs, upstream.Options{HealthPath: "/readyz", Logger: logger})
	if err != nil {
		return nil, err
	}
	c := &Client{
		pool: pool,
		http: &http.Client{
			Timeout: callTimeout,
			Transport: upstream.NewTransport(pool, upstream.ProxyOptions{
				ResponseHeaderTimeout: AttemptTimeout,
				DialTimeout:           DialTimeout,
				MaxIdleConnsPerHost:   64, // the default 2 churns connections under load
				Retry:                 true,
			}),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		probe: &http.Client{Timeout: probeTimeout},
	}
	c.reach = memo.New(time.Second, func() ([]InstanceStatus, error) { return c.checkAll(), nil })
	return c, nil
}

// Run keeps the instance set and its health current until ctx ends.
func (c *Client) Run(ctx context.Context) { c.pool.Run(ctx) }

// Authenticate checks username and password with user-service.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return Identity{}, err
	}
	// The pool's transport puts the instance in the URL.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://user-service/internal/authenticate", bytes.NewReader(body))
	if err != nil {
		return Identity{}, err
	}
	req.Host = ""
	req.Header.Set("Content-Type", "application/json")
	if rid := service.RequestID(ctx); rid != "" {
		req.Header.Set(service.RequestIDHeader, rid)
	}
	// Only a call that never reached an instance is sent again: one that
	// timed out may have cost it a bcrypt already.
	resp, err := c.http.Do(req)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: read response: %w", ErrUnavailable, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var id Identity
		if err := json.Unmarshal(data, &id); err != nil || id.ID <= 0 || id.Username == "" {
			return Identity{}, fmt.Errorf("%w: malformed authenticate answer", ErrUnavailable)
		}
		return id, nil
	case http.StatusUnauthorized:
		return Identity{}, ErrBadCredentials
	default:
		// 503 is user-service's "hashing saturated, retry shortly".
		return Identity{}, fmt.Errorf("%w: answered %d", ErrUnavailable, resp.StatusCode)
	}
}

// InstanceStatus is one user-service instance as /stats reports it.
type InstanceStatus struct {
	URL       string  `json:"url"`
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
}

// Reachability checks every instance's /readyz in parallel (500 ms each),
// at most once per second whatever the number of callers. The check is
// shared among callers, so it runs apart from any caller's context.
func (c *Client) Reachability(context.Context) []InstanceStatus {
	out, _ := c.reach.Get()
	return out
}

func (c *Client) checkAll() []InstanceStatus {
	hosts := c.pool.Hosts()
	out := make([]InstanceStatus, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		base := h.URL().String()
		out[i] = InstanceStatus{URL: base, Status: "OFFLINE"}
		wg.Go(func() {
			start := time.Now()
			resp, err := c.probe.Get(base + "/readyz")
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			out[i].LatencyMS = float64(time.Since(start).Microseconds()) / 1000
			if resp.StatusCode == http.StatusOK {
				out[i].Status = "ONLINE"
			}
		})
	}
	wg.Wait()
	return out
}
