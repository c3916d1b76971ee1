// Package jwtauth issues and verifies the HS256 access tokens that
// auth-service hands out and every other service trusts. Verification is
// strict (golang-jwt v5 defaults are not): the method is pinned, exp and iat
// are required, and issuer and audience are checked.
package jwtauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"titanium/platform/envconfig"
)

// ErrInvalidToken is returned for every token that must not be trusted; the
// wrapped error says why, for logs only.
var ErrInvalidToken = errors.New("invalid token")

// ErrNoToken means the request carried no bearer token.
var ErrNoToken = errors.New("missing bearer token")

// MinSecretBytes is the shortest HS256 secret accepted (RFC 7518 §3.2: a key
// at least as long as the hash output).
const MinSecretBytes = 32

// maxTokenBytes bounds the token before any parsing: a real token is a few
// hundred bytes, and hostile ones (CVE-2025-30204, 100k dots) never reach the parser.
const maxTokenBytes = 4096

// Config holds the shared token settings.
type Config struct {
	Secret   []byte
	Issuer   string
	Audience string
	TTL      time.Duration
	Leeway   time.Duration
}

// devSecret is used only when JWT_DEV_MODE=true and JWT_SECRET is unset. It is
// public by design: tokens signed with it prove nothing.
const devSecret = "titanium-insecure-development-secret-not-for-production"

// LoadConfig reads JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE, JWT_TTL and
// JWT_DEV_MODE. With no secret it refuses to start unless JWT_DEV_MODE=true,
// in which case it uses a public development secret and says so loudly.
func LoadConfig(env *envconfig.Reader, logger *slog.Logger) Config {
	c := Config{
		Secret:   []byte(env.Secret("JWT_SECRET", "", fmt.Sprintf("HS256 token key shared by the services that sign or verify tokens, at least %d bytes; required", MinSecretBytes))),
		Issuer:   env.String("JWT_ISSUER", "titanium-auth", "token issuer (iss), set and checked"),
		Audience: env.String("JWT_AUDIENCE", "titanium", "token audience (aud), set and checked"),
		TTL:      env.Duration("JWT_TTL", 15*time.Minute, "lifetime of an issued token"),
		Leeway:   env.Duration("JWT_LEEWAY", 5*time.Second, "clock skew allowed on exp, iat and nbf"),
	}
	dev := env.Bool("JWT_DEV_MODE", false, "with no JWT_SECRET, use a public development key (never in production)")
	if len(c.Secret) == 0 && dev {
		logger.Warn("JWT_DEV_MODE=true and no JWT_SECRET: using the PUBLIC development secret; tokens are forgeable, never run this way in production")
		c.Secret = []byte(devSecret)
	}
	env.Check(len(c.Secret) > 0, "JWT_SECRET", "is required (set JWT_DEV_MODE=true to run with an insecure development secret)")
	env.Check(len(c.Secret) == 0 || len(c.Secret) >= MinSecretBytes, "JWT_SECRET", fmt.Sprintf("must be at least %d bytes", MinSecretBytes))
	env.Check(c.TTL > 0, "JWT_TTL", "must be positive")
	return c
}

// Claims are the token's claims: the registered ones plus the user id.
type Claims struct {
	jwt.RegisteredClaims
	UserID int64 `json:"uid,omitempty"`
}

// Issue signs a token for subject (the username) and user id.
func (c Config) Issue(subject string, userID int64, now time.Time) (token string, expires time.Time, err error) {
	expires = now.Add(c.TTL)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   subject,
			Issuer:    c.Issuer,
			Audience:  jwt.ClaimStrings{c.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
		UserID: userID,
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.Secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return token, expires, nil
}

// Verify parses and validates token. Every failure wraps ErrInvalidToken.
func (c Config) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(token) > maxTokenBytes || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	claims := &Claims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience),
		jwt.WithLeeway(c.Leeway),
	)
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		// Belt and braces with WithValidMethods: never let the token pick the key type.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return c.Secret, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	// WithIssuedAt checks iat only when present; ours always carry it.
	if claims.IssuedAt == nil {
		return nil, fmt.Errorf("%w: no iat", ErrInvalidToken)
	}
	return claims, nil
}

// BearerToken returns the token from an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoToken
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: Authorization header is not a bearer token", ErrInvalidToken)
	}
	return strings.TrimSpace(token), nil
}

// Authenticate verifies the request's bearer token and returns its claims.
func (c Config) Authenticate(r *http.Request) (*Claims, error) {
	token, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	return c.Verify(token)
}
