package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"titanium/blog-service/posts"
	"titanium/platform/pagination"
)

// hardStrings are the cases where a hand-written JSON string encoder can
// differ from encoding/json.
var hardStrings = []string{
	"", "plain", `quote " and backslash \`, "<script>&amp;</script>",
	"controls \x00\x01\b\f\n\r\t\x1f\x7f", "é ü 한국어 🎉", "\u2028\u2029 separators",
	"invalid \xff\xfe utf-8 \xc3", "truncated \xe2\x82", "\xed\xa0\x80 surrogate",
	strings.Repeat("Seed post content. ", 10),
}

func TestEncodingMatchesEncodingJSON(t *testing.T) {
	seoul := time.FixedZone("KST", 9*3600)
	times := []time.Time{
		time.Date(2026, 11, 25, 11, 27, 8, 123456000, time.UTC),
		time.Date(2026, 11, 25, 11, 27, 8, 120000000, time.UTC), // trailing zeros trimmed
		time.Date(2026, 11, 25, 11, 27, 8, 0, time.UTC),         // no fraction at all
		time.Date(1, 1, 1, 0, 0, 0, 1, seoul),
		{},
	}
	var items []posts.Post
	for i, s := range hardStrings {
		items = append(items, posts.Post{ID: int64(i*1000 + 1), Title: s, Content: s + "!", Author: s,
			CreatedAt: times[i%len(times)], UpdatedAt: times[(i+1)%len(times)]})
	}
	cursor := pagination.EncodeCursor(42)
	pages := []postPage{
		{Items: items, NextCursor: &cursor},
		{Items: items[:1]},
		{Items: []posts.Post{}},
		{},
	}
	for i := range items {
		got, err := appendPost(nil, &items[i])
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(items[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("post %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
	for i := range pages {
		got, err := appendPage(nil, &pages[i])
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(pages[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("page %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
}

func TestEncodingRejectsWhatEncodingJSONRejects(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		p := posts.Post{ID: 1, CreatedAt: ts, UpdatedAt: ts}
		_, err := appendPost(nil, &p)
		_, jerr := json.Marshal(p)
		if (err == nil) != (jerr == nil) {
			t.Errorf("%v: got error %v, encoding/json %v", ts, err, jerr)
		}
	}
}

func FuzzEncodeString(f *testing.F) {
	for _, s := range hardStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q:\ngot  %s\nwant %s", s, got, want)
		}
	})
}
