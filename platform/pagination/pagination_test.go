package pagination

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"titanium/platform/apierr"
)

func TestParseLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int // 0: a 400
	}{
		{"", DefaultLimit}, {"1", 1}, {"7", 7}, {"100", 100}, {"101", MaxLimit},
		{"99999999999999999999999", MaxLimit},
		{"0", 0}, {"-1", 0}, {"+5", 0}, {" 5", 0}, {"1.5", 0}, {"ten", 0}, {"0x10", 0},
	} {
		got, err := ParseLimit(tt.in)
		if tt.want == 0 {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Field != "limit" || e.Status() != 400 {
				t.Errorf("ParseLimit(%q) = %d, %v; want a 400 naming limit", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestCursorRoundTripAndRejects(t *testing.T) {
	for _, key := range []int64{1, 42, 1<<63 - 1} {
		got, err := DecodeCursor(EncodeCursor(key))
		if err != nil || got != key {
			t.Errorf("round trip of %d: got %d, %v", key, got, err)
		}
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, c := range []string{
		"!!!",                // not base64url
		b64([]byte("42")),    // unversioned (the old users cursor)
		b64([]byte("p2:42")), // another version
		b64([]byte("p1:")), b64([]byte("p1:0")), b64([]byte("p1:-3")), b64([]byte("p1:4x")),
		b64([]byte("p1:99999999999999999999")), // overflow
		b64([]byte("p1:" + string(make([]byte, 60)))),
	} {
		if _, err := DecodeCursor(c); err == nil || apierr.Code(err) != apierr.CodeValidation {
			t.Errorf("DecodeCursor(%q): got %v, want a 400 naming cursor", c, err)
		}
	}
	if got, err := DecodeCursor(""); got != 0 || err != nil {
		t.Errorf(`DecodeCursor(""): got %d, %v; want 0 (the start)`, got, err)
	}
}

func TestParse(t *testing.T) {
	r, err := Parse(url.Values{"limit": {"5"}, "cursor": {EncodeCursor(9)}})
	if err != nil || r != (Request{Limit: 5, After: 9}) {
		t.Fatalf("got %+v, %v", r, err)
	}
	if _, err := Parse(url.Values{"cursor": {"nope"}}); apierr.Code(err) != apierr.CodeValidation {
		t.Errorf("bad cursor: got %v", err)
	}
}

func TestPageJSON(t *testing.T) {
	for _, tt := range []struct {
		page Page[int]
		want string
	}{
		{NewPage([]int(nil), 0), `{"items":[],"next_cursor":null}`},
		{NewPage([]int{3, 2}, 2), `{"items":[3,2],"next_cursor":"` + EncodeCursor(2) + `"}`},
	} {
		b, err := json.Marshal(tt.page)
		if err != nil || string(b) != tt.want {
			t.Errorf("got %s, %v; want %s", b, err, tt.want)
		}
	}
}

// FuzzParse: any limit and cursor a client sends either parse to a page
// request within the contract or are a 400 naming the parameter.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "0", "20", "101", "99999999999999999999", "-1", "+5", EncodeCursor(7), "!!!", "cDE6"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		r, err := Parse(url.Values{"limit": {limit}, "cursor": {cursor}})
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status() != 400 || e.Field != "limit" && e.Field != "cursor" {
				t.Fatalf("Parse(%q, %q): %v, want a 400 naming limit or cursor", limit, cursor, err)
			}
			return
		}
		if r.Limit < 1 || r.Limit > MaxLimit || r.After < 0 {
			t.Fatalf("Parse(%q, %q) = %+v, outside the contract", limit, cursor, r)
		}
		if r.After > 0 {
			if again, err := DecodeCursor(EncodeCursor(r.After)); err != nil || again != r.After {
				t.Fatalf("cursor %q: key %d does not round-trip (%d, %v)", cursor, r.After, again, err)
			}
		}
	})
}
