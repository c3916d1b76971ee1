package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"titanium/blog-service/posts"
)

// BenchmarkHandlers measures the B1 requests (`make bench`) in-process
// through blog-service's whole handler chain (platform middleware,
// routing, store, JSON), without the network: list (the default page),
// detail and create over a table of 200 posts like B1's seed, and mix,
// B1's 16:3:1 of the three (details over the seed's ids), with the read
// cache off and on. list and detail alone read one key again and again,
// so with the cache on they measure its hits; mix has a create every 20
// requests, each dropping the first pages, as B1 does.
func BenchmarkHandlers(b *testing.B) {
	for _, mode := range []struct {
		name  string
		cache func() *posts.Cache
	}{
		{"nocache", func() *posts.Cache { return nil }},
		{"cache", func() *posts.Cache { return posts.NewCache(4096, 32<<20) }},
	} {
		b.Run(mode.name, func(b *testing.B) { benchmarkHandlers(b, mode.cache()) })
	}
}

func benchmarkHandlers(b *testing.B, cache *posts.Cache) {
	srv, st := newChain(b, cache)
	h := srv.Handler()
	var seeded []int64
	for i := 0; i < 200; i++ {
		p, err := st.Create(context.Background(), "bench", fmt.Sprintf("bench seed %d", i), strings.Repeat("Seed post content. ", 10))
		if err != nil {
			b.Fatal(err)
		}
		seeded = append(seeded, p.ID)
	}
	auth := "Bearer " + token(b, "bench")
	body := `{"title":"bench post","content":"Created by the mixed-load benchmark."}`
	type request struct {
		method, path string
		body         string
		want         int
	}
	list := request{http.MethodGet, "/api/posts?limit=20", "", http.StatusOK}
	detail := request{http.MethodGet, "/api/posts/100", "", http.StatusOK}
	create := request{http.MethodPost, "/api/posts", body, http.StatusCreated}
	serve := func(b *testing.B, c request) {
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
	for _, c := range []struct {
		name string
		req  request
	}{{"list", list}, {"detail", detail}, {"create", create}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serve(b, c.req)
			}
		})
	}
	b.Run("mix", func(b *testing.B) {
		b.ReportAllocs()
		i, d := 0, 0
		for b.Loop() {
			switch n := i % 20; {
			case n < 16:
				serve(b, list)
			case n < 19:
				d = (d + 7) % len(seeded)
				serve(b, request{http.MethodGet, fmt.Sprintf("/api/posts/%d", seeded[d]), "", http.StatusOK})
			default:
				serve(b, create)
			}
			i++
		}
	})
}
