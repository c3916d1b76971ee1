package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"titanium/blog-service/posts"
	"titanium/platform/apierr"
	"titanium/platform/pagination"
)

// The success bodies (a post, a page of posts) are the service's hot path:
// a page of 20 posts through encoding/json's reflection, plus time.Time's
// MarshalJSON and the re-compaction of its output, costs a list request
// about a fifth more CPU than this encoder (BenchmarkHandlers/nocache/list, see
// docs/blog-service.md). They are encoded here by hand instead, byte for
// byte what encoding/json produces (TestEncodingMatchesEncodingJSON and
// FuzzEncodeString check that), and sent by apierr.RespondFunc.

var errTimeRange = errors.New("time outside the years 0..9999 that RFC 3339 can represent")

// postPage is a page of posts.
type postPage = pagination.Page[posts.Post]

// writePost sends one post.
func writePost(w http.ResponseWriter, status int, p *posts.Post) {
	apierr.RespondFunc(w, status, func(b []byte) ([]byte, error) {
		b, err := appendPost(b, p)
		return append(b, '\n'), err
	})
}

// encodePost is the body of one post, for the read cache
// (posts.Service.GetEncoded). Its array is sized for the usual post (a
// post's JSON is about 130 bytes besides its title and content), as the
// cache counts capacity, not length, against its bound.
func encodePost(p *posts.Post) ([]byte, error) {
	b, err := appendPost(make([]byte, 0, 160+len(p.Title)+len(p.Content)), p)
	return append(b, '\n'), err
}

// encodePage is the body of a page of the list, for the read cache
// (posts.Service.ListEncoded).
func encodePage(items []posts.Post, next int64) ([]byte, error) {
	page := pagination.NewPage(items, next)
	size := 64
	for i := range items {
		size += 160 + len(items[i].Title) + len(items[i].Content)
	}
	b, err := appendPage(make([]byte, 0, size), &page)
	return append(b, '\n'), err
}

// writeEncoded sends a 200 with a body made by encodePost or encodePage.
func writeEncoded(w http.ResponseWriter, body []byte) {
	apierr.RespondFunc(w, http.StatusOK, func(b []byte) ([]byte, error) { return append(b, body...), nil })
}

// appendPage appends page as encoding/json encodes it.
func appendPage(b []byte, page *postPage) ([]byte, error) {
	b = append(b, `{"items":`...)
	if page.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range page.Items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendPost(b, &page.Items[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"next_cursor":`...)
	if page.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *page.NextCursor)
	}
	return append(b, '}'), nil
}

// appendPost appends p as encoding/json encodes posts.Post.
func appendPost(b []byte, p *posts.Post) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"title":`...)
	b = appendString(b, p.Title)
	b = append(b, `,"content":`...)
	b = appendString(b, p.Content)
	b = append(b, `,"author":`...)
	b = appendString(b, p.Author)
	b = append(b, `,"created_at":`...)
	b, err := appendTime(b, p.CreatedAt)
	if err != nil {
		return b, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendTime(b, p.UpdatedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendTime appends t as time.Time's MarshalJSON does: RFC 3339 with
// nanoseconds, trailing zeros trimmed, and an error for a year it cannot
// represent.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, errTimeRange
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, errTimeRange
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// htmlSafe marks the ASCII bytes encoding/json writes as they are (with
// its default HTML escaping): not control characters, '"', '\\', '<', '>'
// or '&'.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string exactly as encoding/json does
// with HTML escaping on (its default): the same short escapes, \u00XX for
// other control characters and <, > and &, U+FFFD for invalid UTF-8, and
// U+2028 and U+2029 escaped. Adapted from encoding/json's appendString
// (Go 1.26).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
