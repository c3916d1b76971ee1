// Package password hashes and checks passwords with bcrypt, with at most
// GOMAXPROCS hashes running at once: a bcrypt at cost 10 is ~50 ms of one
// core, so an unbounded login or registration flood would starve every
// other request of CPU. Waiting for a slot is bounded, and a request that
// cannot get one is answered "overloaded" (503) instead of queueing forever.
package password

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/bcrypt"

	"titanium/user-service/users"
)

// MinCost is the lowest cost accepted in production (OWASP: bcrypt ≥ 10).
const MinCost = 10

// DefaultMaxWait bounds how long a request waits for a hashing slot.
const DefaultMaxWait = 2 * time.Second

// Hasher is a bcrypt hasher with bounded concurrency.
type Hasher struct {
	cost    int
	slots   chan struct{}
	maxWait time.Duration
	// dummy is a hash of a random secret at the same cost: unknown users
	// are compared against it so they take as long as a wrong password.
	dummy []byte
}

var _ users.Hasher = (*Hasher)(nil)

// New returns a hasher of the given cost running at most parallel hashes
// (GOMAXPROCS when parallel <= 0). Tests may pass bcrypt.MinCost; the
// service enforces MinCost in its configuration.
func New(cost, parallel int, maxWait time.Duration) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range", cost)
	}
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	dummy, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(secret)), cost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return &Hasher{cost: cost, slots: make(chan struct{}, parallel), maxWait: maxWait, dummy: dummy}, nil
}

// acquire takes a hashing slot, waiting at most maxWait and never past ctx.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	default:
	}
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-t.C:
		return nil, users.ErrOverloaded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Hash returns the bcrypt hash of password. Passwords over 72 bytes are an
// error (bcrypt.ErrPasswordTooLong), never truncated.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > users.MaxPasswordBytes {
		return "", bcrypt.ErrPasswordTooLong
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return string(b), nil
}

// Verify reports whether password matches hash; an empty hash is compared
// against the dummy hash (and never matches).
func (h *Hasher) Verify(ctx context.Context, hash, password string) (bool, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	stored := []byte(hash)
	if hash == "" {
		stored = h.dummy
	}
	err = bcrypt.CompareHashAndPassword(stored, []byte(password))
	switch {
	case err == nil:
		return hash != "", nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
		return false, nil
	default:
		return false, fmt.Errorf("bcrypt compare: %w", err)
	}
}
