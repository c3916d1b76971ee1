// Package httpapi is blog-service's HTTP API: the /api/posts handlers, their
// input validation and the mapping of store errors to JSON errors.
package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"titanium/blog-service/store"
	"titanium/platform/apierr"
	"titanium/platform/jwtauth"
)

// Limits of the API, documented in docs/blog-service.md.
const (
	DefaultLimit    = 20
	MaxLimit        = 100
	MaxTitleChars   = 200
	MaxContentChars = 20000
	// MaxBodyBytes caps a request body; a longer one gets 413. It leaves
	// room for a maximal ASCII post with JSON escaping; content in scripts
	// of 3 or 4 bytes per character meets this cap before the character cap.
	MaxBodyBytes = 64 << 10
)

// Posts is the storage the handlers need.
type Posts interface {
	Create(ctx context.Context, author, title, content string) (store.Post, error)
	Get(ctx context.Context, id int64) (store.Post, error)
	List(ctx context.Context, before int64, limit int) ([]store.Post, bool, error)
	Update(ctx context.Context, id int64, author string, patch store.Patch) (store.Post, error)
	Delete(ctx context.Context, id int64, author string) error
}

// Authenticator verifies a request's bearer token (jwtauth.Config does).
type Authenticator interface {
	Authenticate(r *http.Request) (*jwtauth.Claims, error)
}

var _ Authenticator = jwtauth.Config{}

// Router is where routes are registered (service.Server and http.ServeMux are).
type Router interface {
	Handle(pattern string, h http.Handler)
}

// API serves /api/posts.
type API struct {
	posts  Posts
	auth   Authenticator
	logger *slog.Logger
}

// New returns the API over posts, trusting tokens that auth accepts.
func New(posts Posts, auth Authenticator, logger *slog.Logger) *API {
	return &API{posts: posts, auth: auth, logger: logger}
}

// Register adds the API's routes to r. The method-less patterns answer
// every other method with a JSON 405 rather than ServeMux's plain text.
func (a *API) Register(r Router) {
	r.Handle("GET /api/posts", a.handler(a.list))
	r.Handle("POST /api/posts", a.handler(a.create))
	r.Handle("GET /api/posts/{id}", a.handler(a.get))
	r.Handle("PATCH /api/posts/{id}", a.handler(a.update))
	r.Handle("DELETE /api/posts/{id}", a.handler(a.delete))
	r.Handle("/api/posts", methodNotAllowed("GET, HEAD, POST"))
	r.Handle("/api/posts/{id}", methodNotAllowed("GET, HEAD, PATCH, DELETE"))
}

// NotFound answers every request with a JSON 404; register it at "/" so
// that unknown paths do not get ServeMux's plain-text 404.
func NotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		apierr.WriteCode(w, apierr.CodeNotFound, "no such route")
	})
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		apierr.WriteCode(w, apierr.CodeMethodNotAllowed, "method "+r.Method+" is not allowed here")
	})
}

// handler adapts a handler that returns an error to http.Handler.
func (a *API) handler(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// writeError is the one place store and auth errors become responses.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = apierr.Errorf(apierr.CodeNotFound, "post not found")
	case errors.Is(err, store.ErrNotAuthor):
		err = apierr.Errorf(apierr.CodeForbidden, "only the author may change this post")
	case errors.Is(err, jwtauth.ErrNoToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="titanium"`)
		err = apierr.Errorf(apierr.CodeUnauthorized, "a bearer token is required")
	case errors.Is(err, jwtauth.ErrInvalidToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="titanium", error="invalid_token"`)
		err = apierr.Errorf(apierr.CodeUnauthorized, "the bearer token is invalid or expired")
	}
	apierr.Write(w, r, a.logger, err)
}

// listResponse is a page of posts; NextCursor is null on the last page.
type listResponse struct {
	Items      []store.Post `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	before, err := DecodeCursor(q.Get("cursor"))
	if err != nil {
		return err
	}
	posts, more, err := a.posts.List(r.Context(), before, limit)
	if err != nil {
		return err
	}
	resp := listResponse{Items: posts}
	if more {
		c := EncodeCursor(posts[len(posts)-1].ID)
		resp.NextCursor = &c
	}
	a.writePage(w, r, &resp)
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r)
	if err != nil {
		return err
	}
	p, err := a.posts.Get(r.Context(), id)
	if err != nil {
		return err
	}
	a.writePost(w, r, http.StatusOK, &p)
	return nil
}

// postInput is the body of POST and PATCH. Pointers tell a missing field
// from an empty one.
type postInput struct {
	Title   *string `json:"title"`
	Content *string `json:"content"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	claims, err := a.auth.Authenticate(r)
	if err != nil {
		return err
	}
	var in postInput
	if err := apierr.DecodeJSON(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	if in.Title == nil {
		return apierr.Invalid("title", "title is required")
	}
	if in.Content == nil {
		return apierr.Invalid("content", "content is required")
	}
	title, err := validTitle(*in.Title)
	if err != nil {
		return err
	}
	if err := validContent(*in.Content); err != nil {
		return err
	}
	p, err := a.posts.Create(r.Context(), claims.Subject, title, *in.Content)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/posts/"+strconv.FormatInt(p.ID, 10))
	a.writePost(w, r, http.StatusCreated, &p)
	return nil
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	claims, err := a.auth.Authenticate(r)
	if err != nil {
		return err
	}
	id, err := parseID(r)
	if err != nil {
		return err
	}
	var in postInput
	if err := apierr.DecodeJSON(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	if in.Title == nil && in.Content == nil {
		return apierr.Errorf(apierr.CodeValidation, "nothing to update: give title, content or both")
	}
	var patch store.Patch
	if in.Title != nil {
		title, err := validTitle(*in.Title)
		if err != nil {
			return err
		}
		patch.Title = &title
	}
	if in.Content != nil {
		if err := validContent(*in.Content); err != nil {
			return err
		}
		patch.Content = in.Content
	}
	p, err := a.posts.Update(r.Context(), id, claims.Subject, patch)
	if err != nil {
		return err
	}
	a.writePost(w, r, http.StatusOK, &p)
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	claims, err := a.auth.Authenticate(r)
	if err != nil {
		return err
	}
	id, err := parseID(r)
	if err != nil {
		return err
	}
	if err := a.posts.Delete(r.Context(), id, claims.Subject); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseID reads the {id} path value: a positive decimal integer.
func parseID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, apierr.Invalid("id", "post id must be a positive integer")
	}
	return id, nil
}

// parseLimit reads the limit parameter: absent means DefaultLimit, a value
// above MaxLimit is clamped to it (a client asking for "everything" gets
// the largest page, as with most paginated APIs), and anything that is not
// a positive integer is rejected.
func parseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		if err != nil && isDigits(s) {
			return MaxLimit, nil // a huge number: clamp like any other large one
		}
		return 0, apierr.Invalid("limit", "limit must be a positive integer (at most %d)", MaxLimit)
	}
	return min(n, MaxLimit), nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// cursorPrefix versions the cursor format, so it can change without old
// cursors being misread.
const cursorPrefix = "p1:"

// EncodeCursor makes the opaque cursor that continues a walk after the post with id.
func EncodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(id, 10)))
}

// DecodeCursor returns the id a cursor continues after; "" means the
// newest post (0). Anything this service did not produce is a 400.
func DecodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	bad := apierr.Invalid("cursor", "cursor is not valid: use next_cursor from a previous page")
	if len(c) > 64 {
		return 0, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, bad
	}
	digits, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok || !isDigits(digits) {
		return 0, bad
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 {
		return 0, bad
	}
	return id, nil
}

// validTitle trims the title and checks it: 1..MaxTitleChars characters on
// one line, no control characters.
func validTitle(s string) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", apierr.Invalid("title", "title must not be empty")
	}
	if n > MaxTitleChars {
		return "", apierr.Invalid("title", "title must be at most %d characters", MaxTitleChars)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", apierr.Invalid("title", "title must be one line without control characters")
	}
	return s, nil
}

// validContent checks the content: not blank, at most MaxContentChars
// characters, no NUL (line breaks and tabs are fine).
func validContent(s string) error {
	if strings.TrimSpace(s) == "" {
		return apierr.Invalid("content", "content must not be empty")
	}
	if utf8.RuneCountInString(s) > MaxContentChars {
		return apierr.Invalid("content", "content must be at most %d characters", MaxContentChars)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return apierr.Invalid("content", "content must not contain NUL characters")
	}
	return nil
}
