// Package httpapi is user-service's HTTP interface: JSON in and out, one
// function mapping domain errors to statuses, bearer-token checks for
// changes, and the internal authenticate call auth-service uses.
package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"

	"titanium/platform/apierr"
	"titanium/platform/clientip"
	"titanium/platform/jwtauth"
	"titanium/platform/throttle"
	"titanium/user-service/users"
)

// maxBody caps request bodies: the largest valid one is well under 1 KiB.
const maxBody = 64 << 10

// List page sizes.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// Router is where handlers are registered (a *service.Server): public
// routes on the service's port, internal ones on their own listener.
type Router interface {
	Handle(pattern string, h http.Handler)
	HandleInternal(pattern string, h http.Handler)
}

// Handler serves the user API.
type Handler struct {
	users    *users.Service
	jwt      jwtauth.Config
	register Registration
	logger   *slog.Logger
}

// Registration throttles sign-ups per client address: each one costs a
// bcrypt hash, which login needs too.
type Registration struct {
	// PerIP counts registration attempts per client address (nil: no limit).
	PerIP *throttle.Limiter
	// IPs finds the client address behind our own proxies.
	IPs clientip.Resolver
}

// New returns the handlers over svc; jwt verifies bearer tokens on changes.
func New(svc *users.Service, jwt jwtauth.Config, reg Registration, logger *slog.Logger) *Handler {
	return &Handler{users: svc, jwt: jwt, register: reg, logger: logger}
}

// Routes registers every route on r.
func (h *Handler) Routes(r Router) {
	r.Handle("POST /api/users", http.HandlerFunc(h.registerUser))
	r.Handle("GET /api/users", http.HandlerFunc(h.list))
	r.Handle("GET /api/users/{id}", http.HandlerFunc(h.get))
	r.Handle("GET /api/users/by-username/{username}", http.HandlerFunc(h.getByUsername))
	r.Handle("PATCH /api/users/{id}", http.HandlerFunc(h.update))
	// Internal: only auth-service calls it, on the internal listener, which
	// neither the gateway nor monitoring reaches (the gateway does not route
	// /internal/* either).
	r.HandleInternal("POST /internal/authenticate", http.HandlerFunc(h.authenticate))
}

// writeError is the one place where domain errors become HTTP answers.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *users.ValidationError
	switch {
	case errors.As(err, &ve):
		err = apierr.Invalid(ve.Field, "%s", ve.Message)
	case errors.Is(err, users.ErrNotFound):
		err = apierr.Errorf(apierr.CodeNotFound, "user not found")
	case errors.Is(err, users.ErrUsernameTaken):
		err = &apierr.Error{Code: apierr.CodeConflict, Message: "username is already taken", Field: "username"}
	case errors.Is(err, users.ErrEmailTaken):
		err = &apierr.Error{Code: apierr.CodeConflict, Message: "email is already registered", Field: "email"}
	case errors.Is(err, users.ErrBadCredentials):
		err = apierr.Errorf(apierr.CodeUnauthorized, "invalid username or password")
	case errors.Is(err, bcrypt.ErrPasswordTooLong):
		err = apierr.Invalid("password", "password must be at most %d bytes", users.MaxPasswordBytes)
	case errors.Is(err, users.ErrOverloaded), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		err = apierr.Errorf(apierr.CodeUnavailable, "server busy, retry shortly")
	}
	apierr.Write(w, r, h.logger, err)
}

type registerRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (h *Handler) registerUser(w http.ResponseWriter, r *http.Request) {
	if lim := h.register.PerIP; lim != nil {
		if ok, wait := lim.Take(h.register.IPs.ClientIP(r).String(), time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			h.writeError(w, r, apierr.Errorf(apierr.CodeRateLimited, "too many registrations, retry later"))
			return
		}
	}
	var req registerRequest
	if err := apierr.DecodeJSON(w, r, maxBody, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.users.Register(r.Context(), req.Username, req.Email, req.Password)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/users/"+strconv.FormatInt(u.ID, 10))
	apierr.Respond(w, http.StatusCreated, u)
}

type listResponse struct {
	Items      []userView `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// userView is a user as shown to a reader: the e-mail address only to its
// owner (usernames and ids are public, addresses are personal data).
type userView struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// view shows u to the user with id viewer (0: anonymous).
func view(u users.User, viewer int64) userView {
	v := userView{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if viewer != 0 && viewer == u.ID {
		v.Email = u.Email
	}
	return v
}

// viewer is the id of the user a valid bearer token names, 0 without one.
// A bad token reads as anonymous: reads are public, only the e-mail is not.
func (h *Handler) viewer(r *http.Request) int64 {
	claims, err := h.jwt.Authenticate(r)
	if err != nil {
		return 0
	}
	return claims.UserID
}

// Cursors are opaque to clients: the last id of the page, base64url.
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

func decodeCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 20 {
		return 0, false
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	return id, err == nil && id > 0
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			h.writeError(w, r, apierr.Invalid("limit", "limit must be a positive integer (at most %d)", maxLimit))
			return
		}
		limit = min(n, maxLimit)
	}
	var after int64
	if s := q.Get("cursor"); s != "" {
		id, ok := decodeCursor(s)
		if !ok {
			h.writeError(w, r, apierr.Invalid("cursor", "cursor is not one this service issued"))
			return
		}
		after = id
	}
	items, next, err := h.users.List(r.Context(), after, limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	viewer := h.viewer(r)
	resp := listResponse{Items: make([]userView, len(items))}
	for i, u := range items {
		resp.Items[i] = view(u, viewer)
	}
	if next > 0 {
		resp.NextCursor = encodeCursor(next)
	}
	apierr.Respond(w, http.StatusOK, resp)
}

// pathID parses the {id} path segment; a non-numeric id is a 404 (no such
// resource), not a validation error.
func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.writeError(w, r, users.ErrNotFound)
		return
	}
	u, err := h.users.Get(r.Context(), id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	apierr.Respond(w, http.StatusOK, view(u, h.viewer(r)))
}

func (h *Handler) getByUsername(w http.ResponseWriter, r *http.Request) {
	u, err := h.users.GetByUsername(r.Context(), r.PathValue("username"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	apierr.Respond(w, http.StatusOK, view(u, h.viewer(r)))
}

type updateRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
	// CurrentPassword is required to set a new password (OWASP ASVS
	// 2.1.6): a stolen token alone must not be a permanent takeover.
	CurrentPassword *string `json:"current_password"`
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.writeError(w, r, users.ErrNotFound)
		return
	}
	claims, err := h.jwt.Authenticate(r)
	if err != nil {
		if !errors.Is(err, jwtauth.ErrNoToken) {
			h.logger.DebugContext(r.Context(), "rejected token", "err", err)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="titanium"`)
		h.writeError(w, r, apierr.Errorf(apierr.CodeUnauthorized, "a valid bearer token is required"))
		return
	}
	if claims.UserID != id {
		h.writeError(w, r, apierr.Errorf(apierr.CodeForbidden, "you may only change your own account"))
		return
	}
	var req updateRequest
	if err := apierr.DecodeJSON(w, r, maxBody, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.Password != nil {
		if req.CurrentPassword == nil || *req.CurrentPassword == "" {
			h.writeError(w, r, apierr.Invalid("current_password", "current_password is required to change the password"))
			return
		}
		if err := h.users.CheckPassword(r.Context(), id, *req.CurrentPassword); err != nil {
			if errors.Is(err, users.ErrBadCredentials) {
				err = &apierr.Error{Code: apierr.CodeForbidden, Message: "current_password is wrong", Field: "current_password"}
			}
			h.writeError(w, r, err)
			return
		}
	}
	u, err := h.users.Update(r.Context(), id, req.Email, req.Password)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	apierr.Respond(w, http.StatusOK, u)
}

type authenticateRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type authenticateResponse struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) {
	var req authenticateRequest
	if err := apierr.DecodeJSON(w, r, maxBody, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.users.Authenticate(r.Context(), req.Username, req.Password)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	apierr.Respond(w, http.StatusOK, authenticateResponse{ID: u.ID, Username: u.Username})
}
