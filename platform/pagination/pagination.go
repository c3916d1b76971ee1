// Package pagination is the one page contract of Titanium's list APIs
// (docs/api-conventions.md): keyset pages walked with an opaque, versioned
// cursor.
//
//   - limit: default DefaultLimit; a number above MaxLimit is clamped to it
//     (the client gets the largest page rather than an error); 0, a negative
//     number or anything that is not a decimal integer is a 400 naming
//     "limit".
//   - cursor: "" starts at the beginning; otherwise it must be a
//     next_cursor this contract issued, of the current version, or it is a
//     400 naming "cursor".
//   - next_cursor: the cursor of the next page, null on the last page.
package pagination

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"titanium/platform/apierr"
)

// Page sizes.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Request is a page request: at most Limit items that follow the item with
// key After (0: from the start).
type Request struct {
	Limit int
	After int64
}

// Parse reads the limit and cursor query parameters. Its errors are
// *apierr.Error (400, field named).
func Parse(q url.Values) (Request, error) {
	limit, err := ParseLimit(q.Get("limit"))
	if err != nil {
		return Request{}, err
	}
	after, err := DecodeCursor(q.Get("cursor"))
	if err != nil {
		return Request{}, err
	}
	return Request{Limit: limit, After: after}, nil
}

// ParseLimit reads a limit parameter: "" is DefaultLimit, a decimal number
// above MaxLimit (however large) is MaxLimit, anything else that is not a
// positive decimal integer is a 400.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	if !isDigits(s) {
		return 0, errLimit()
	}
	n, err := strconv.Atoi(s)
	if err != nil { // only digits: too large for an int
		return MaxLimit, nil
	}
	if n < 1 {
		return 0, errLimit()
	}
	return min(n, MaxLimit), nil
}

func errLimit() error {
	return apierr.Invalid("limit", "limit must be a positive integer (at most %d)", MaxLimit)
}

// Page is one page of a list. NextCursor is null on the last page.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// NewPage makes a page of items; next is the key the next page continues
// after, 0 when this is the last page. Items is never null.
func NewPage[T any](items []T, next int64) Page[T] {
	if items == nil {
		items = []T{}
	}
	p := Page[T]{Items: items}
	if next > 0 {
		c := EncodeCursor(next)
		p.NextCursor = &c
	}
	return p
}

// cursorVersion tags the cursor format, so it can change without old
// cursors being misread: a cursor of another version is refused.
const cursorVersion = "p1:"

// maxCursor bounds what DecodeCursor reads; a valid cursor is about 30 bytes.
const maxCursor = 64

// EncodeCursor makes the opaque cursor of the page that follows key.
func EncodeCursor(key int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + strconv.FormatInt(key, 10)))
}

func errCursor() error {
	return apierr.Invalid("cursor", "cursor is not valid: use next_cursor from a previous page")
}

// DecodeCursor returns the key a cursor continues after; "" is 0 (the
// start). A cursor that is malformed, of another version or not issued by
// EncodeCursor is a 400.
func DecodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	if len(c) > maxCursor {
		return 0, errCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, errCursor()
	}
	digits, ok := strings.CutPrefix(string(raw), cursorVersion)
	if !ok || !isDigits(digits) {
		return 0, errCursor()
	}
	key, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || key <= 0 {
		return 0, errCursor()
	}
	return key, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
