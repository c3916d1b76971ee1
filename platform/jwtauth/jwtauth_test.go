package jwtauth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var cfg = Config{
	Secret:   []byte("0123456789abcdef0123456789abcdef"),
	Issuer:   "titanium-auth",
	Audience: "titanium",
	TTL:      time.Minute,
	Leeway:   time.Second,
}

func TestIssueVerify(t *testing.T) {
	tok, exp, err := cfg.Issue("alice", 7, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.UserID != 7 || !c.ExpiresAt.Time.Equal(exp.Truncate(time.Second)) {
		t.Errorf("claims: got %+v, want alice/7 exp %v", c, exp)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := cfg.Authenticate(req); err != nil {
		t.Errorf("Authenticate: %v", err)
	}
	if _, err := cfg.Authenticate(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, ErrNoToken) {
		t.Errorf("no header: got %v, want ErrNoToken", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "alice", "uid": 1, "iss": cfg.Issuer, "aud": cfg.Audience,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct{ name, token string }{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"wrong key", sign(jwt.SigningMethodHS256, []byte("ffffffffffffffffffffffffffffffff"), claims(nil))},
		{"HS384", sign(jwt.SigningMethodHS384, cfg.Secret, claims(nil))},
		{"expired", sign(jwt.SigningMethodHS256, cfg.Secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))},
		{"missing exp", sign(jwt.SigningMethodHS256, cfg.Secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"missing iat", sign(jwt.SigningMethodHS256, cfg.Secret, claims(func(c jwt.MapClaims) { delete(c, "iat") }))},
		{"wrong iss", sign(jwt.SigningMethodHS256, cfg.Secret, claims(func(c jwt.MapClaims) { c["iss"] = "x" }))},
		{"wrong aud", sign(jwt.SigningMethodHS256, cfg.Secret, claims(func(c jwt.MapClaims) { c["aud"] = "x" }))},
		{"no subject", sign(jwt.SigningMethodHS256, cfg.Secret, claims(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"garbage", "garbage"},
		{"100k dots", strings.Repeat(".", 100_000)},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cfg.Verify(tt.token); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("got %v, want ErrInvalidToken", err)
			}
		})
	}
}
