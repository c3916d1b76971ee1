package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbeURL(t *testing.T) {
	tests := []struct {
		addr, want string
		wantErr    bool
	}{
		{addr: ":8001", want: "http://127.0.0.1:8001/readyz"},
		{addr: "0.0.0.0:7100", want: "http://127.0.0.1:7100/readyz"},
		{addr: "[::]:8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "127.0.0.1:8090", want: "http://127.0.0.1:8090/readyz"},
		{addr: "", wantErr: true},
		{addr: "8001", wantErr: true},
		{addr: ":0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := probeURL(tt.addr, "/readyz")
			if (err != nil) != tt.wantErr {
				t.Fatalf("probeURL(%q) error = %v, want error %v", tt.addr, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("probeURL(%q) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	}))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	hung := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hung)

	// A port nothing listens on: taken, then released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	if err := probe(ready.URL+"/readyz", 2*time.Second); err != nil {
		t.Errorf("ready service: %v, want nil", err)
	}
	if err := probe(notReady.URL+"/readyz", 2*time.Second); err == nil {
		t.Error("503 service: nil error, want failure")
	}
	if err := probe(dead+"/readyz", 2*time.Second); err == nil {
		t.Error("dead port: nil error, want failure")
	}
	start := time.Now()
	if err := probe(slow.URL+"/readyz", 300*time.Millisecond); err == nil {
		t.Error("hung service: nil error, want timeout")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hung service took %v, want the timeout to bound it", d)
	}
}
