// Package clientip finds the address of the client behind our own proxies.
// X-Forwarded-For is only believed when the direct peer is one of our
// proxies, and then only its rightmost entry that is not itself one of our
// proxies: everything left of that was written by the client and can be
// forged (see MDN "X-Forwarded-For", "Security and privacy concerns").
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"titanium/platform/envconfig"
)

// DefaultTrusted is the TRUSTED_PROXIES default: loopback and the private
// ranges, where the load balancer and the gateway run in every deployment.
const DefaultTrusted = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"

// LoadTrusted reads TRUSTED_PROXIES, the networks of our own proxies.
func LoadTrusted(env *envconfig.Reader) Resolver {
	return Load(env, "TRUSTED_PROXIES", DefaultTrusted, "our proxies' networks (CIDR prefixes or addresses, comma-separated), whose forwarding headers are believed")
}

// Load reads trusted proxies from the variable key: CIDR prefixes or
// addresses, comma-separated; "none" trusts no one.
func Load(env *envconfig.Reader, key, def, help string) Resolver {
	list := env.List(key, def, help)
	if len(list) == 1 && list[0] == "none" {
		list = nil
	}
	r, err := ParseTrusted(list)
	env.Check(err == nil, key, fmt.Sprint(err))
	return r
}

// Resolver resolves a request's client address.
type Resolver struct {
	// Trusted are the networks of our own proxies.
	Trusted []netip.Prefix
}

// ParseTrusted parses CIDR prefixes (a bare address means just that host).
func ParseTrusted(list []string) (Resolver, error) {
	var r Resolver
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return Resolver{}, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			a = a.Unmap()
			r.Trusted = append(r.Trusted, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Resolver{}, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		r.Trusted = append(r.Trusted, p.Masked())
	}
	return r, nil
}

// IsTrusted reports whether a is inside one of the trusted networks.
func (r Resolver) IsTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of req: the direct peer, unless the
// peer is trusted and sent exactly one X-Forwarded-For line, in which case
// the rightmost entry of that line that is not trusted. When every entry is trusted it is the leftmost one (a request
// from inside our own network). An unparsable entry ends the walk at the last
// good address: a trusted proxy never writes one, so it came from outside.
// The zero Addr means RemoteAddr itself was unusable.
func (r Resolver) ClientIP(req *http.Request) netip.Addr {
	return r.FromForwarded(parseAddr(req.RemoteAddr), req.Header.Values("X-Forwarded-For"))
}

// FromForwarded is ClientIP from the direct peer and the X-Forwarded-For
// header lines, for servers that do not use net/http.
func (r Resolver) FromForwarded(peer netip.Addr, values []string) netip.Addr {
	if !peer.IsValid() || !r.IsTrusted(peer) {
		return peer
	}
	if len(values) != 1 {
		// Our proxies write exactly one X-Forwarded-For line. Several lines
		// mean one came from elsewhere: a proxy that replaced only the first
		// copy left a client's own line beside it (RFC 9110 §5.3 would join
		// them into one list, which would make the client's line the
		// rightmost). Believe none of them.
		return peer
	}
	client := peer
	entries := strings.Split(values[0], ",")
	for j := len(entries) - 1; j >= 0; j-- {
		a := parseAddr(strings.TrimSpace(entries[j]))
		if !a.IsValid() {
			return client
		}
		if !r.IsTrusted(a) {
			return a
		}
		client = a
	}
	return client
}

// parseAddr accepts "ip", "ip:port" and "[ipv6]:port", and unmaps IPv4-in-IPv6.
func parseAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}
