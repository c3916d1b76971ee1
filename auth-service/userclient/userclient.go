// Package userclient calls user-service's internal authenticate endpoint.
// USER_SERVICE_URL may list several instances: calls are spread across them
// round-robin, and a call that could not reach one (connection refused, an
// instance draining or overloaded) is tried on the next, so one dead
// instance never fails a login.
package userclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"titanium/platform/service"
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

// AttemptTimeout bounds one call to one instance. user-service may queue a
// password check for up to 2 s when its hashing slots are busy, then ~100 ms
// of bcrypt; past that it is not coming.
const AttemptTimeout = 3 * time.Second

// Client is a user-service client over one or more base URLs.
type Client struct {
	bases []string
	http  *http.Client
	next  atomic.Uint64

	mu        sync.Mutex
	checkedAt time.Time
	last      []InstanceStatus
}

// New returns a client for the given base URLs (e.g. http://127.0.0.1:8001).
func New(bases []string) (*Client, error) {
	if len(bases) == 0 {
		return nil, errors.New("no user-service URL")
	}
	for i, b := range bases {
		b = strings.TrimRight(b, "/")
		if !strings.HasPrefix(b, "http://") && !strings.HasPrefix(b, "https://") {
			return nil, fmt.Errorf("user-service URL %q: want http:// or https://", b)
		}
		bases[i] = b
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64, // the default 2 churns connections under load
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: AttemptTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{bases: bases, http: &http.Client{Transport: tr, Timeout: AttemptTimeout}}, nil
}

// Authenticate checks username and password with user-service.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return Identity{}, err
	}
	start := int(c.next.Add(1) % uint64(len(c.bases)))
	var lastErr error
	for i := range c.bases {
		base := c.bases[(start+i)%len(c.bases)]
		id, retry, err := c.authenticateOnce(ctx, base, body)
		if err == nil || !retry {
			return id, err
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return Identity{}, fmt.Errorf("%w: %w", ErrUnavailable, lastErr)
}

// authenticateOnce makes one call; retry says whether another instance may
// answer where this one could not.
func (c *Client) authenticateOnce(ctx context.Context, base string, body []byte) (id Identity, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/internal/authenticate", bytes.NewReader(body))
	if err != nil {
		return Identity{}, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if rid := service.RequestID(ctx); rid != "" {
		req.Header.Set(service.RequestIDHeader, rid)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Only a call that never reached the instance is retried: one that
		// timed out may have cost it a bcrypt already.
		return Identity{}, isConnectError(err), err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Identity{}, false, fmt.Errorf("%w: read response: %w", ErrUnavailable, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(data, &id); err != nil || id.ID <= 0 || id.Username == "" {
			return Identity{}, false, fmt.Errorf("%w: malformed authenticate answer", ErrUnavailable)
		}
		return id, false, nil
	case http.StatusUnauthorized:
		return Identity{}, false, ErrBadCredentials
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// Draining or saturated: another instance may have room.
		return Identity{}, true, fmt.Errorf("%s answered %d", base, resp.StatusCode)
	default:
		return Identity{}, false, fmt.Errorf("%w: %s answered %d", ErrUnavailable, base, resp.StatusCode)
	}
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// InstanceStatus is one user-service instance as /stats reports it.
type InstanceStatus struct {
	URL       string  `json:"url"`
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
}

// Reachability checks every instance's /readyz in parallel (500 ms each),
// at most once per second whatever the number of callers.
func (c *Client) Reachability(ctx context.Context) []InstanceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && time.Since(c.checkedAt) < time.Second {
		return c.last
	}
	out := make([]InstanceStatus, len(c.bases))
	var wg sync.WaitGroup
	for i, base := range c.bases {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			out[i] = InstanceStatus{URL: base, Status: "OFFLINE"}
			start := time.Now()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
			if err != nil {
				return
			}
			resp, err := c.http.Do(req)
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
	c.checkedAt, c.last = time.Now(), out
	return out
}
