package service

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

// TestPlatformStats: with no /stats of its own, a service answers the
// platform's per-process /stats, and /stats is not counted as traffic.
func TestPlatformStats(t *testing.T) {
	s := newTestServer(t, map[string]string{})
	s.HandleFunc("GET /work", func(http.ResponseWriter, *http.Request) {})
	h := s.Handler()
	w := serve(h, http.MethodGet, "/stats")
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusOK || body["service"] != "test-service" {
		t.Fatalf("GET /stats: %d %s, want the platform's 200 with service test-service", w.Code, w.Body)
	}
	serve(h, http.MethodGet, "/work")
	if n := s.RequestStats(time.Now()).Requests; n != 1 {
		t.Errorf("window counted %d requests, want 1 (the /work call, not /stats)", n)
	}
	if w := serve(h, http.MethodPost, "/stats"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /stats: got %d, want 405", w.Code)
	}
}

// TestServiceOwnsStats: a service registers its own /stats like any route;
// it is served for every method, labelled by its pattern, and kept out of
// the window as the platform's is.
func TestServiceOwnsStats(t *testing.T) {
	s := newTestServer(t, map[string]string{})
	s.Handle("/stats", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"service":"own","method":"` + r.Method + `"}`))
	}))
	h := s.Handler()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		if w := serve(h, method, "/stats"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"own","method":"`+method+`"`) {
			t.Errorf("%s /stats: %d %s, want the service's own handler", method, w.Code, w.Body)
		}
	}
	if n := s.RequestStats(time.Now()).Requests; n != 0 {
		t.Errorf("window counted %d /stats requests, want 0", n)
	}
	metrics := serve(h, http.MethodGet, "/metrics").Body.String()
	if !strings.Contains(metrics, `http_requests_total{code="200",method="GET",route="/stats"} 1`) {
		t.Errorf("metrics do not label the service's /stats by its pattern:\n%s", metrics)
	}
}
