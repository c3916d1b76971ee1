package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"titanium/blog-service/posts"
	"titanium/platform/pagination"
)

// BenchmarkEncodePage encodes the default list page (20 posts like B1's
// seed) with the hand-written encoder and with encoding/json, which gives
// the same bytes (TestEncodingMatchesEncodingJSON). make bench (B4) sets the
// difference against a whole list request (BenchmarkHandlers/nocache/list):
// the hand-written encoder stays only while it saves more than 5 % of it.
func BenchmarkEncodePage(b *testing.B) {
	now := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.UTC)
	items := make([]posts.Post, 20)
	for i := range items {
		items[i] = posts.Post{ID: int64(1000 - i), Title: "bench seed post", Content: strings.Repeat("Seed post content. ", 10),
			Author: "bench", CreatedAt: now, UpdatedAt: now}
	}
	b.Run("encoder=hand", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodePage(items, 980); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoder=std", func(b *testing.B) {
		for b.Loop() {
			page := pagination.NewPage(items, 980)
			if _, err := json.Marshal(&page); err != nil {
				b.Fatal(err)
			}
		}
	})
}
