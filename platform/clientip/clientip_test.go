package clientip

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrusted(t *testing.T) {
	r, err := ParseTrusted(strings.Split(DefaultTrusted+", 203.0.113.7 ,", ","))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(r.Trusted), 6; got != want {
		t.Fatalf("got %d prefixes, want %d", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "1.2.3.4/x"} {
		if _, err := ParseTrusted([]string{bad}); err == nil {
			t.Errorf("ParseTrusted(%q): got nil error, want one", bad)
		}
	}
}

func TestClientIP(t *testing.T) {
	r, err := ParseTrusted(strings.Split(DefaultTrusted, ","))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer, no header", "203.0.113.9:5555", nil, "203.0.113.9"},
		{"untrusted peer ignores spoofed header", "203.0.113.9:5555", []string{"1.1.1.1"}, "203.0.113.9"},
		{"trusted peer, no header", "127.0.0.1:4000", nil, "127.0.0.1"},
		{"trusted peer, one client", "10.0.0.5:4000", []string{"198.51.100.20"}, "198.51.100.20"},
		{"spoof left of the real client is ignored", "10.0.0.5:4000", []string{"6.6.6.6, 198.51.100.20"}, "198.51.100.20"},
		{"chain of trusted proxies", "127.0.0.1:4000", []string{"198.51.100.20, 10.1.1.1, 192.168.3.3"}, "198.51.100.20"},
		// A proxy that replaced only the first copy leaves the client's
		// second line beside its own: neither is believed.
		{"several header lines are not believed", "127.0.0.1:4000", []string{"127.0.0.1", "203.0.113.7"}, "127.0.0.1"},
		{"several lines, client's first", "10.0.0.5:4000", []string{"203.0.113.7", "198.51.100.20, 10.1.1.1"}, "10.0.0.5"},
		{"everything internal gives the leftmost", "127.0.0.1:4000", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"garbage stops at the last good address", "127.0.0.1:4000", []string{"198.51.100.20, garbage, 10.1.1.1"}, "10.1.1.1"},
		{"entry with port", "127.0.0.1:4000", []string{"198.51.100.20:1234"}, "198.51.100.20"},
		{"ipv6 client", "[::1]:4000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv6 entry with port", "[::1]:4000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"mapped ipv4 peer is trusted", "[::ffff:127.0.0.1]:4000", []string{"198.51.100.20"}, "198.51.100.20"},
		{"172.32 is not private", "172.32.0.1:4000", []string{"198.51.100.20"}, "172.32.0.1"},
		{"empty entries are garbage", "127.0.0.1:4000", []string{" , "}, "127.0.0.1"},
		{"bad remote addr", "nonsense", []string{"198.51.100.20"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := r.ClientIP(req).String(); got != tt.want {
				t.Errorf("ClientIP: got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNoTrustedProxies(t *testing.T) {
	var r Resolver
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.20")
	if got, want := r.ClientIP(req), netip.MustParseAddr("127.0.0.1"); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
