package upstream

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
)

// Selector picks one available host for a request, or returns nil when none
// is available. Implementations must be safe for concurrent use and cheap:
// they run on every request.
type Selector interface {
	Select(hosts []*Host, r *http.Request) *Host
}

// Interface guards.
var (
	_ Selector = (*RoundRobin)(nil)
	_ Selector = (*LeastRequests)(nil)
)

// RoundRobin takes the available hosts in turn.
type RoundRobin struct{ next atomic.Uint64 }

// Select implements Selector.
func (rr *RoundRobin) Select(hosts []*Host, _ *http.Request) *Host {
	n := uint64(len(hosts))
	if n == 0 {
		return nil
	}
	start := rr.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		if h := hosts[(start+i)%n]; h.Available() {
			return h
		}
	}
	return nil
}

// LeastRequests is "power of two choices": of two random available hosts,
// the one with fewer requests in flight. It is nearly as good as scanning
// every host for the least loaded one, and it avoids the herd effect of
// every balancer picking the same "least loaded" host at once
// (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing").
type LeastRequests struct{}

// Select implements Selector.
func (*LeastRequests) Select(hosts []*Host, _ *http.Request) *Host {
	switch n := len(hosts); n {
	case 0:
		return nil
	case 1:
		if hosts[0].Available() {
			return hosts[0]
		}
		return nil
	default:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++ // two distinct hosts
		}
		a, b := hosts[i], hosts[j]
		switch aok, bok := a.Available(), b.Available(); {
		case aok && bok:
			if b.Inflight() < a.Inflight() {
				return b
			}
			return a
		case aok:
			return a
		case bok:
			return b
		}
		// Both picks are out: scan for the least loaded available host.
		var best *Host
		for _, h := range hosts {
			if h.Available() && (best == nil || h.Inflight() < best.Inflight()) {
				best = h
			}
		}
		return best
	}
}

// NewSelector returns the policy named by s: "round_robin" or
// "least_requests" (also "p2c"). ok is false for an unknown name.
func NewSelector(s string) (sel Selector, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "round_robin", "roundrobin", "rr":
		return &RoundRobin{}, true
	case "least_requests", "leastrequests", "p2c", "":
		return &LeastRequests{}, true
	}
	return nil, false
}
