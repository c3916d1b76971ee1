// Package httpapi is blog-service's HTTP API: the /api/posts handlers and
// the mapping of domain errors (blog-service/posts) to JSON errors.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"titanium/blog-service/posts"
	"titanium/platform/apierr"
	"titanium/platform/jwtauth"
	"titanium/platform/pagination"
)

// MaxBodyBytes caps a request body; a longer one gets 413. It leaves room
// for a maximal ASCII post (posts.MaxContentChars) with JSON escaping;
// content in scripts of 3 or 4 bytes per character meets this cap before
// the character cap. Documented in docs/blog-service.md.
const MaxBodyBytes = 64 << 10

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
	posts  *posts.Service
	auth   Authenticator
	errors apierr.Writer
}

// New returns the API over the posts database, trusting tokens that auth
// accepts. Reads of posts and pages are served from cache (nil: none); the
// API must be the database's only writer (docs/blog-service.md).
func New(store posts.Store, cache *posts.Cache, auth Authenticator, logger *slog.Logger) *API {
	return &API{posts: posts.NewService(store, cache), auth: auth, errors: apierr.Writer{Map: mapError, Logger: logger}}
}

// Register adds the API's routes to r. The method-less patterns answer
// every other method with a JSON 405 rather than ServeMux's plain text.
func (a *API) Register(r Router) {
	h := a.errors.Handler
	r.Handle("GET /api/posts", h(a.list))
	r.Handle("POST /api/posts", h(a.create))
	r.Handle("GET /api/posts/{id}", h(a.get))
	r.Handle("PATCH /api/posts/{id}", h(a.update))
	r.Handle("DELETE /api/posts/{id}", h(a.delete))
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

// mapError is blog-service's hook into apierr.Writer: the one place domain
// errors become API errors (bearer-token errors are apierr's own).
func mapError(err error) *apierr.Error {
	switch {
	case errors.Is(err, posts.ErrNotFound):
		return apierr.Errorf(apierr.CodeNotFound, "post not found")
	case errors.Is(err, posts.ErrNotAuthor):
		return apierr.Errorf(apierr.CodeForbidden, "only the author may change this post")
	}
	return nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	req, err := pagination.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	body, err := a.posts.ListEncoded(r.Context(), req.After, req.Limit, encodePage)
	if err != nil {
		return err
	}
	writeEncoded(w, body)
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	id, err := apierr.PathID(r, posts.ErrNotFound)
	if err != nil {
		return err
	}
	body, err := a.posts.GetEncoded(r.Context(), id, encodePost)
	if err != nil {
		return err
	}
	writeEncoded(w, body)
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
	p, err := a.posts.Create(r.Context(), claims.Subject, in.Title, in.Content)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/posts/"+strconv.FormatInt(p.ID, 10))
	writePost(w, http.StatusCreated, &p)
	return nil
}

// authorOf authenticates the caller of a request on one post: the token
// first (a 401 says nothing about the post), then the id.
func (a *API) authorOf(r *http.Request) (author string, id int64, err error) {
	claims, err := a.auth.Authenticate(r)
	if err != nil {
		return "", 0, err
	}
	id, err = apierr.PathID(r, posts.ErrNotFound)
	return claims.Subject, id, err
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	author, id, err := a.authorOf(r)
	if err != nil {
		return err
	}
	var in postInput
	if err := apierr.DecodeJSON(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	p, err := a.posts.Update(r.Context(), id, author, in.Title, in.Content)
	if err != nil {
		return err
	}
	writePost(w, http.StatusOK, &p)
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	author, id, err := a.authorOf(r)
	if err != nil {
		return err
	}
	if err := a.posts.Delete(r.Context(), id, author); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseID reads the {id} path value: a positive decimal integer.
