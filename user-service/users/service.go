package users

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"titanium/platform/validation"
)

// Store is the durable user database.
type Store interface {
	// Create inserts a user; ErrUsernameTaken or ErrEmailTaken on a duplicate.
	Create(ctx context.Context, username, email, passwordHash string, now time.Time) (User, error)
	// ByID and ByUsername return ErrNotFound when there is no such user.
	ByID(ctx context.Context, id int64) (Record, error)
	ByUsername(ctx context.Context, username string) (Record, error)
	// List returns up to limit users with id > afterID, by id.
	List(ctx context.Context, afterID int64, limit int) ([]User, error)
	// Update changes the non-nil fields; ErrNotFound, ErrEmailTaken.
	Update(ctx context.Context, id int64, email, passwordHash *string, now time.Time) (User, error)
}

// Cache is an optional, lossy cache. It never returns errors: a cache that
// does not answer is a miss, and the caller goes to the Store.
type Cache interface {
	// Get returns the value under key and the key's version token, read
	// together. hit is false on a miss or any failure.
	Get(ctx context.Context, key string) (val []byte, version string, hit bool)
	// SetIfVersion stores val only if key's version is still version, so a
	// value read from the database before a concurrent change is never
	// cached after that change's invalidation (the stale-set race).
	SetIfVersion(ctx context.Context, key string, val []byte, version string)
	// Invalidate bumps the version of each key and deletes it. Call it after
	// the database commit.
	Invalidate(ctx context.Context, keys ...string)
}

// Hasher hashes and checks passwords, with bounded concurrency.
type Hasher interface {
	// Hash returns the password's hash; ErrOverloaded when saturated.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches hash. An empty hash is
	// checked against a dummy hash of the same cost, so that an unknown
	// user costs as much time as a wrong password.
	Verify(ctx context.Context, hash, password string) (bool, error)
}

// Service is user-service's use cases.
type Service struct {
	store  Store
	cache  Cache
	hasher Hasher
	logger *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// NewService wires a Service. cache may be nil (no caching).
func NewService(store Store, cache Cache, hasher Hasher, logger *slog.Logger) *Service {
	if cache == nil {
		cache = noCache{}
	}
	return &Service{store: store, cache: cache, hasher: hasher, logger: logger, Now: time.Now}
}

type noCache struct{}

func (noCache) Get(context.Context, string) ([]byte, string, bool)   { return nil, "", false }
func (noCache) SetIfVersion(context.Context, string, []byte, string) {}
func (noCache) Invalidate(context.Context, ...string)                {}

// Cache keys. Usernames are case-insensitive, so their key is lower-cased.
func idKey(id int64) string      { return "user:id:" + strconv.FormatInt(id, 10) }
func nameKey(name string) string { return "user:name:" + strings.ToLower(name) }

// Register creates a user from validated input.
func (s *Service) Register(ctx context.Context, username, email, password string) (User, error) {
	if err := ValidateUsername(username); err != nil {
		return User{}, err
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	// A taken name is refused before the hash: replaying one must not cost
	// a bcrypt each time (hashing is bounded, and login needs it too). The
	// store's unique index still decides a race between two registrations.
	switch _, err := s.store.ByUsername(ctx, username); {
	case err == nil:
		return User{}, ErrUsernameTaken
	case !errors.Is(err, ErrNotFound):
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, err
	}
	// Nothing to invalidate: misses are never cached, so no entry exists
	// for a user that did not exist.
	return s.store.Create(ctx, username, email, hash, s.Now().UTC())
}

// Get returns the user with id, from the cache when it has it.
func (s *Service) Get(ctx context.Context, id int64) (User, error) {
	return s.cached(ctx, idKey(id), func() (Record, error) { return s.store.ByID(ctx, id) })
}

// GetByUsername returns the user called name (any case).
func (s *Service) GetByUsername(ctx context.Context, name string) (User, error) {
	if ValidateUsername(name) != nil {
		return User{}, ErrNotFound
	}
	return s.cached(ctx, nameKey(name), func() (Record, error) { return s.store.ByUsername(ctx, name) })
}

// cached is cache-aside: the cache first; on a miss the database, then the
// cache is filled unless the key was invalidated meanwhile.
func (s *Service) cached(ctx context.Context, key string, load func() (Record, error)) (User, error) {
	val, version, hit := s.cache.Get(ctx, key)
	if hit {
		var u User
		if err := json.Unmarshal(val, &u); err == nil {
			return u, nil
		}
	}
	rec, err := load()
	if err != nil {
		return User{}, err
	}
	if val, err := json.Marshal(rec.User); err == nil {
		s.cache.SetIfVersion(ctx, key, val, version)
	}
	return rec.User, nil
}

// List returns a page of users by id, and the id to continue after (0 when
// this is the last page).
func (s *Service) List(ctx context.Context, afterID int64, limit int) ([]User, int64, error) {
	// One extra row tells whether there is a next page.
	items, err := s.store.List(ctx, afterID, limit+1)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(items) > limit {
		items = items[:limit]
		next = items[len(items)-1].ID
	}
	return items, next, nil
}

// Update changes a user's email and/or password.
func (s *Service) Update(ctx context.Context, id int64, email, password *string) (User, error) {
	if email == nil && password == nil {
		return User{}, validation.Errorf("email", "nothing to update: give email and/or password")
	}
	if email != nil {
		e, err := NormalizeEmail(*email)
		if err != nil {
			return User{}, err
		}
		email = &e
	}
	var hash *string
	if password != nil {
		if err := ValidatePassword(*password); err != nil {
			return User{}, err
		}
		h, err := s.hasher.Hash(ctx, *password)
		if err != nil {
			return User{}, err
		}
		hash = &h
	}
	u, err := s.store.Update(ctx, id, email, hash, s.Now().UTC())
	if err != nil {
		return User{}, err
	}
	// After the commit, and even if the client has gone: the change is
	// durable, so the cache must not keep the old value.
	s.cache.Invalidate(context.WithoutCancel(ctx), idKey(u.ID), nameKey(u.Username))
	return u, nil
}

// CheckPassword checks password against the stored hash of user id:
// ErrBadCredentials when it does not match, ErrNotFound without the user.
func (s *Service) CheckPassword(ctx context.Context, id int64, password string) error {
	if password == "" || len(password) > MaxPasswordBytes {
		return ErrBadCredentials
	}
	rec, err := s.store.ByID(ctx, id)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, rec.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok || rec.PasswordHash == "" {
		return ErrBadCredentials
	}
	return nil
}

// Authenticate checks a username and password. Unknown users and wrong
// passwords both return ErrBadCredentials after a bcrypt comparison of the
// same cost, so neither the answer nor its timing tells them apart.
func (s *Service) Authenticate(ctx context.Context, username, password string) (User, error) {
	if username == "" || password == "" || len(password) > MaxPasswordBytes || len(username) > 256 {
		return User{}, ErrBadCredentials
	}
	rec, err := s.store.ByUsername(ctx, username)
	hash := rec.PasswordHash
	switch {
	case errors.Is(err, ErrNotFound):
		hash = "" // the hasher compares against its dummy hash
	case err != nil:
		return User{}, err
	}
	ok, err := s.hasher.Verify(ctx, hash, password)
	if err != nil {
		return User{}, err
	}
	if !ok || hash == "" {
		return User{}, ErrBadCredentials
	}
	return rec.User, nil
}
