package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHandlers measures the B1 requests (`make bench`) in-process
// through blog-service's whole handler chain (platform middleware,
// routing, store, JSON), without the network: list (the default page),
// detail and create over a table of 200 posts like B1's seed.
func BenchmarkHandlers(b *testing.B) {
	srv, st := newChain(b)
	h := srv.Handler()
	for i := 0; i < 200; i++ {
		if _, err := st.Create(context.Background(), "bench", fmt.Sprintf("bench seed %d", i), strings.Repeat("Seed post content. ", 10)); err != nil {
			b.Fatal(err)
		}
	}
	auth := "Bearer " + token(b, "bench")
	body := `{"title":"bench post","content":"Created by the mixed-load benchmark."}`
	cases := []struct {
		name, method, path string
		body               string
		want               int
	}{
		{"list", http.MethodGet, "/api/posts?limit=20", "", http.StatusOK},
		{"detail", http.MethodGet, "/api/posts/100", "", http.StatusOK},
		{"create", http.MethodPost, "/api/posts", body, http.StatusCreated},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var rd io.Reader
				if c.body != "" {
					rd = strings.NewReader(c.body)
				}
				req := httptest.NewRequest(c.method, c.path, rd)
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", auth)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != c.want {
					b.Fatalf("%s %s: got %d %s, want %d", c.method, c.path, w.Code, w.Body, c.want)
				}
			}
		})
	}
}
