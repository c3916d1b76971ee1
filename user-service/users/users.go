// Package users is user-service's domain: the User type, its validation
// rules, the errors callers switch on, and Service, which ties the database,
// the cache and the password hasher together (cache-aside reads,
// invalidation after every committed change, constant-time-ish login).
package users

import (
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"titanium/platform/validation"
)

// User is a user as the API shows it: never with the password hash.
type User struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Record is a stored user with its password hash.
type Record struct {
	User
	PasswordHash string
}

// Domain errors. Storage and cache adapters return them (wrapped or not) and
// the HTTP layer maps them to statuses in one place.
var (
	ErrNotFound       = errors.New("user not found")
	ErrUsernameTaken  = errors.New("username is taken")
	ErrEmailTaken     = errors.New("email is taken")
	ErrBadCredentials = errors.New("invalid username or password")
	// ErrOverloaded means password hashing is saturated: retry shortly.
	ErrOverloaded = errors.New("password hashing is saturated")
)

// Input limits.
const (
	MinUsername = 3
	MaxUsername = 32
	MaxEmail    = 254 // RFC 5321 path limit
	MinPassword = 8
	// MaxPasswordBytes is bcrypt's input limit. Longer passwords are refused,
	// never truncated: a silently truncated password would accept any string
	// sharing its first 72 bytes.
	MaxPasswordBytes = 72
)

// ValidateUsername: 3 to 32 of [A-Za-z0-9_.-], starting with a letter or digit.
// Usernames are unique without regard to case.
func ValidateUsername(s string) error {
	if s == "" {
		return validation.Errorf("username", "username is required")
	}
	if len(s) < MinUsername || len(s) > MaxUsername {
		return validation.Errorf("username", "username must be %d to %d characters", MinUsername, MaxUsername)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return validation.Errorf("username", "username may contain only letters, digits, '_', '.' and '-', and must start with a letter or digit")
		}
	}
	return nil
}

// NormalizeEmail validates an email address and returns it lower-cased (the
// form it is stored and compared in).
func NormalizeEmail(s string) (string, error) {
	if s == "" {
		return "", validation.Errorf("email", "email is required")
	}
	if len(s) > MaxEmail {
		return "", validation.Errorf("email", "email must be at most %d bytes", MaxEmail)
	}
	a, err := mail.ParseAddress(s)
	// Only a bare address is accepted: no display names, comments or spaces.
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, " \t\r\n<>") {
		return "", validation.Errorf("email", "email must be an address like name@example.com")
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", validation.Errorf("email", "email must be an address like name@example.com")
	}
	return strings.ToLower(s), nil
}

// ValidatePassword checks a new password: at least 8 characters and at most
// 72 bytes (bcrypt's limit, refused rather than truncated).
func ValidatePassword(s string) error {
	if s == "" {
		return validation.Errorf("password", "password is required")
	}
	if !utf8.ValidString(s) {
		return validation.Errorf("password", "password must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) < MinPassword {
		return validation.Errorf("password", "password must be at least %d characters", MinPassword)
	}
	if len(s) > MaxPasswordBytes {
		return validation.Errorf("password", "password must be at most %d bytes", MaxPasswordBytes)
	}
	return nil
}
