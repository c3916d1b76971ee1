// Package httpapi is auth-service's HTTP interface: login (throttled per
// client address and per account) and token verification.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"titanium/auth-service/userclient"
	"titanium/platform/apierr"
	"titanium/platform/clientip"
	"titanium/platform/jwtauth"
	"titanium/platform/throttle"
)

// Authenticator checks credentials (user-service, through userclient).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (userclient.Identity, error)
}

// Body caps. A verify body must hold a hostile token (100k dots) so that it
// gets its 401 from the verifier rather than a 413.
const (
	maxLoginBody  = 64 << 10
	maxVerifyBody = apierr.DefaultMaxBody
	// maxAccountKey bounds the per-account limiter key; usernames are 32 at most.
	maxAccountKey = 64
)

// Limits are the login throttles.
type Limits struct {
	// PerIP counts every login attempt from one client address.
	PerIP *throttle.Limiter
	// PerAccount counts failed attempts on one username from one client
	// address (a token is taken before the check and given back on
	// success). Keyed by the account alone, it would let anyone lock any
	// user out, usernames being public; keyed by both, a guesser locks only
	// themselves out, and PerIP bounds what one address tries in all.
	PerAccount *throttle.Limiter
}

// Handler serves login and verify.
type Handler struct {
	auth   Authenticator
	jwt    jwtauth.Config
	limits Limits
	ips    clientip.Resolver
	logger *slog.Logger
	errors apierr.Writer
	now    func() time.Time

	loginsOK, loginsFailed, loginsThrottled, loginsUnavailable atomic.Int64
	verifyValid, verifyInvalid                                 atomic.Int64
}

// New returns the handlers.
func New(auth Authenticator, jwt jwtauth.Config, limits Limits, ips clientip.Resolver, logger *slog.Logger) *Handler {
	return &Handler{auth: auth, jwt: jwt, limits: limits, ips: ips, logger: logger, errors: apierr.Writer{Logger: logger}, now: time.Now}
}

// Router is where handlers are registered (a *service.Server or *http.ServeMux).
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Routes registers every route on r.
func (h *Handler) Routes(r Router) {
	e := h.errors.Handler
	r.Handle("POST /api/auth/login", e(h.login))
	r.Handle("GET /api/auth/verify", e(h.verify))
	r.Handle("POST /api/auth/verify", e(h.verify))
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (h *Handler) throttled(retryAfter time.Duration) error {
	h.loginsThrottled.Add(1)
	return apierr.Errorf(apierr.CodeRateLimited, "too many login attempts, retry later").
		WithHeader("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	now := h.now()
	ip := h.ips.ClientIP(r).String()
	if ok, wait := h.limits.PerIP.Take(ip, now); !ok {
		return h.throttled(wait)
	}
	var req loginRequest
	if err := apierr.DecodeJSON(w, r, maxLoginBody, &req); err != nil {
		return err
	}
	if req.Username == "" {
		return apierr.Invalid("username", "username is required")
	}
	if req.Password == "" {
		return apierr.Invalid("password", "password is required")
	}
	account := strings.ToLower(req.Username)
	if len(account) > maxAccountKey {
		account = account[:maxAccountKey]
	}
	account += "|" + ip
	if ok, wait := h.limits.PerAccount.Take(account, now); !ok {
		return h.throttled(wait)
	}
	id, err := h.auth.Authenticate(r.Context(), req.Username, req.Password)
	switch {
	case err == nil:
		h.limits.PerAccount.Refund(account, now)
	case errors.Is(err, userclient.ErrBadCredentials):
		h.loginsFailed.Add(1)
		return apierr.Errorf(apierr.CodeUnauthorized, "invalid username or password")
	case errors.Is(err, context.Canceled):
		h.limits.PerAccount.Refund(account, now)
		return err
	default:
		h.limits.PerAccount.Refund(account, now)
		h.loginsUnavailable.Add(1)
		h.logger.WarnContext(r.Context(), "login: user-service unavailable", "err", err)
		return apierr.Errorf(apierr.CodeUnavailable, "login is temporarily unavailable").WithHeader("Retry-After", "1")
	}
	token, expires, err := h.jwt.Issue(id.Username, id.ID, now)
	if err != nil {
		return err
	}
	h.loginsOK.Add(1)
	w.Header().Set("Cache-Control", "no-store") // RFC 6749 §5.1
	apierr.Respond(w, http.StatusOK, loginResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(expires.Sub(now).Seconds()),
	})
	return nil
}

type verifyRequest struct {
	Token string `json:"token"`
}

type verifyResponse struct {
	Valid  bool   `json:"valid"`
	Sub    string `json:"sub"`
	UID    int64  `json:"uid"`
	Exp    int64  `json:"exp"`
	Issuer string `json:"iss"`
}

// verify takes the token from a POST body {token} or, failing that, from
// the Authorization header. A missing or bad token gets the 401 every
// service sends (apierr.Unauthorized), which never says what was wrong.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) error {
	var token string
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		var req verifyRequest
		if err := apierr.DecodeJSON(w, r, maxVerifyBody, &req); err != nil {
			return err
		}
		token = req.Token
	}
	var claims *jwtauth.Claims
	var err error
	if token == "" {
		claims, err = h.jwt.Authenticate(r)
	} else {
		claims, err = h.jwt.Verify(token)
	}
	if err != nil {
		h.verifyInvalid.Add(1)
		if !errors.Is(err, jwtauth.ErrNoToken) {
			h.logger.DebugContext(r.Context(), "rejected token", "err", err)
		}
		return apierr.Unauthorized(err)
	}
	h.verifyValid.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	apierr.Respond(w, http.StatusOK, verifyResponse{
		Valid: true, Sub: claims.Subject, UID: claims.UserID,
		Exp: claims.ExpiresAt.Unix(), Issuer: claims.Issuer,
	})
	return nil
}

// Stats is auth-service's part of /stats.
func (h *Handler) Stats() map[string]any {
	return map[string]any{
		"logins": map[string]int64{
			"ok":          h.loginsOK.Load(),
			"failed":      h.loginsFailed.Load(),
			"throttled":   h.loginsThrottled.Load(),
			"unavailable": h.loginsUnavailable.Load(),
		},
		"verifications": map[string]int64{
			"valid":   h.verifyValid.Load(),
			"invalid": h.verifyInvalid.Load(),
		},
		"throttle": map[string]int{
			"tracked_addresses": h.limits.PerIP.Len(),
			"tracked_accounts":  h.limits.PerAccount.Len(),
		},
	}
}
