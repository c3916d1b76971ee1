// Package httpapi is user-service's HTTP interface: JSON in and out, one
// function mapping domain errors to statuses, bearer-token checks for
// changes, and the internal authenticate call auth-service uses.
package httpapi

import (
	"context"
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
	"titanium/platform/pagination"
	"titanium/platform/throttle"
	"titanium/user-service/users"
)

// maxBody caps request bodies: the largest valid one is well under 1 KiB.
const maxBody = 64 << 10

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
	errors   apierr.Writer
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
	return &Handler{users: svc, jwt: jwt, register: reg, logger: logger, errors: apierr.Writer{Map: mapError, Logger: logger}}
}

// Routes registers every route on r.
func (h *Handler) Routes(r Router) {
	r.Handle("POST /api/users", h.errors.Handler(h.registerUser))
	r.Handle("GET /api/users", h.errors.Handler(h.list))
	r.Handle("GET /api/users/{id}", h.errors.Handler(h.get))
	r.Handle("GET /api/users/by-username/{username}", h.errors.Handler(h.getByUsername))
	r.Handle("PATCH /api/users/{id}", h.errors.Handler(h.update))
	// Internal: only auth-service calls it, on the internal listener, which
	// neither the gateway nor monitoring reaches (the gateway does not route
	// /internal/* either).
	r.HandleInternal("POST /internal/authenticate", h.errors.Handler(h.authenticate))
}

// mapError is user-service's hook into apierr.Writer: the one place domain
// errors become API errors (bearer-token errors are apierr's own).
func mapError(err error) *apierr.Error {
	switch {
	case errors.Is(err, users.ErrNotFound):
		return apierr.Errorf(apierr.CodeNotFound, "user not found")
	case errors.Is(err, users.ErrUsernameTaken):
		return &apierr.Error{Code: apierr.CodeConflict, Message: "username is already taken", Field: "username"}
	case errors.Is(err, users.ErrEmailTaken):
		return &apierr.Error{Code: apierr.CodeConflict, Message: "email is already registered", Field: "email"}
	case errors.Is(err, users.ErrBadCredentials):
		return apierr.Errorf(apierr.CodeUnauthorized, "invalid username or password")
	case errors.Is(err, bcrypt.ErrPasswordTooLong):
		return apierr.Invalid("password", "password must be at most %d bytes", users.MaxPasswordBytes)
	case errors.Is(err, users.ErrOverloaded), errors.Is(err, context.DeadlineExceeded):
		return apierr.Errorf(apierr.CodeUnavailable, "server busy, retry shortly").WithHeader("Retry-After", "1")
	}
	return nil
}

type registerRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (h *Handler) registerUser(w http.ResponseWriter, r *http.Request) error {
	if lim := h.register.PerIP; lim != nil {
		if ok, wait := lim.Take(h.register.IPs.ClientIP(r).String(), time.Now()); !ok {
			return apierr.Errorf(apierr.CodeRateLimited, "too many registrations, retry later").
				WithHeader("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		}
	}
	var req registerRequest
	if err := apierr.DecodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	u, err := h.users.Register(r.Context(), req.Username, req.Email, req.Password)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/users/"+strconv.FormatInt(u.ID, 10))
	apierr.Respond(w, http.StatusCreated, u)
	return nil
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

func (h *Handler) list(w http.ResponseWriter, r *http.Request) error {
	req, err := pagination.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	items, next, err := h.users.List(r.Context(), req.After, req.Limit)
	if err != nil {
		return err
	}
	viewer := h.viewer(r)
	views := make([]userView, len(items))
	for i, u := range items {
		views[i] = view(u, viewer)
	}
	apierr.Respond(w, http.StatusOK, pagination.NewPage(views, next))
	return nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) error {
	id, err := apierr.PathID(r, users.ErrNotFound)
	if err != nil {
		return err
	}
	u, err := h.users.Get(r.Context(), id)
	if err != nil {
		return err
	}
	apierr.Respond(w, http.StatusOK, view(u, h.viewer(r)))
	return nil
}

func (h *Handler) getByUsername(w http.ResponseWriter, r *http.Request) error {
	u, err := h.users.GetByUsername(r.Context(), r.PathValue("username"))
	if err != nil {
		return err
	}
	apierr.Respond(w, http.StatusOK, view(u, h.viewer(r)))
	return nil
}

type updateRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
	// CurrentPassword is required to set a new password (OWASP ASVS
	// 2.1.6): a stolen token alone must not be a permanent takeover.
	CurrentPassword *string `json:"current_password"`
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) error {
	id, err := apierr.PathID(r, users.ErrNotFound)
	if err != nil {
		return err
	}
	claims, err := h.jwt.Authenticate(r)
	if err != nil {
		if !errors.Is(err, jwtauth.ErrNoToken) {
			h.logger.DebugContext(r.Context(), "rejected token", "err", err)
		}
		return err
	}
	if claims.UserID != id {
		return apierr.Errorf(apierr.CodeForbidden, "you may only change your own account")
	}
	var req updateRequest
	if err := apierr.DecodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	if req.Password != nil {
		if req.CurrentPassword == nil || *req.CurrentPassword == "" {
			return apierr.Invalid("current_password", "current_password is required to change the password")
		}
		if err := h.users.CheckPassword(r.Context(), id, *req.CurrentPassword); err != nil {
			if errors.Is(err, users.ErrBadCredentials) {
				err = &apierr.Error{Code: apierr.CodeForbidden, Message: "current_password is wrong", Field: "current_password"}
			}
			return err
		}
	}
	u, err := h.users.Update(r.Context(), id, req.Email, req.Password)
	if err != nil {
		return err
	}
	apierr.Respond(w, http.StatusOK, u)
	return nil
}

type authenticateRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type authenticateResponse struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) error {
	var req authenticateRequest
	if err := apierr.DecodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	u, err := h.users.Authenticate(r.Context(), req.Username, req.Password)
	if err != nil {
		return err
	}
	apierr.Respond(w, http.StatusOK, authenticateResponse{ID: u.ID, Username: u.Username})
	return nil
}
