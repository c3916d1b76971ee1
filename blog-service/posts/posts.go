// Package posts is blog-service's domain: the Post type, its validation
// rules, the errors callers switch on, and Service, which validates input
// before it reaches the Store. The HTTP layer maps these errors to statuses
// in one place; the store (blog-service/store) implements Store.
package posts

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"titanium/platform/validation"
)

// Post is one blog post.
type Post struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Content   string    `json:"content"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Patch is a partial update: nil fields are left as they are.
type Patch struct {
	Title   *string
	Content *string
}

// Domain errors. The store returns them (wrapped or not).
var (
	// ErrNotFound means no post has the id.
	ErrNotFound = errors.New("post not found")
	// ErrNotAuthor means the post exists but belongs to someone else.
	ErrNotAuthor = errors.New("not the author of the post")
)

// Input limits, documented in docs/blog-service.md.
const (
	MaxTitleChars   = 200
	MaxContentChars = 20000
)

// Store is the posts database.
type Store interface {
	// Create stores a new post by author and returns it with its id.
	Create(ctx context.Context, author, title, content string) (Post, error)
	// Get returns the post with id, or ErrNotFound.
	Get(ctx context.Context, id int64) (Post, error)
	// List returns up to limit posts, newest first, with ids below before
	// (before <= 0: from the newest); more reports whether older ones remain.
	List(ctx context.Context, before int64, limit int) (posts []Post, more bool, err error)
	// Update applies patch if author wrote the post: ErrNotFound, ErrNotAuthor.
	Update(ctx context.Context, id int64, author string, patch Patch) (Post, error)
	// Delete removes the post if author wrote it: ErrNotFound, ErrNotAuthor.
	Delete(ctx context.Context, id int64, author string) error
}

// Service is blog-service's use cases.
type Service struct {
	store Store
	cache *Cache
}

// NewService returns the use cases over store. Reads through GetEncoded and
// ListEncoded are kept in cache (nil: none); every write through the
// Service drops what it changed, so store must have no other writer.
func NewService(store Store, cache *Cache) *Service { return &Service{store: store, cache: cache} }

// Create validates a new post by author and stores it. Both fields are
// required; the title is stored trimmed.
func (s *Service) Create(ctx context.Context, author string, title, content *string) (Post, error) {
	if title == nil {
		return Post{}, validation.Errorf("title", "title is required")
	}
	if content == nil {
		return Post{}, validation.Errorf("content", "content is required")
	}
	t, err := ValidTitle(*title)
	if err != nil {
		return Post{}, err
	}
	if err := ValidContent(*content); err != nil {
		return Post{}, err
	}
	p, err := s.store.Create(ctx, author, t, *content)
	// Whatever the outcome, the store may hold a new post: it is newer
	// than all, so it changes pages from the newest (an error gives no id:
	// every page goes).
	s.cache.changed(p.ID)
	return p, err
}

// Get returns the post with id, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (Post, error) { return s.store.Get(ctx, id) }

// List returns a page of posts, newest first, after the post before (0:
// from the newest), and the id the next page continues after (0 on the
// last page).
func (s *Service) List(ctx context.Context, before int64, limit int) ([]Post, int64, error) {
	ps, more, err := s.store.List(ctx, before, limit)
	if err != nil || !more || len(ps) == 0 {
		return ps, 0, err
	}
	return ps, ps[len(ps)-1].ID, nil
}

// Update validates the given fields (at least one) and applies them if
// author wrote the post.
func (s *Service) Update(ctx context.Context, id int64, author string, title, content *string) (Post, error) {
	if title == nil && content == nil {
		return Post{}, validation.Errorf("", "nothing to update: give title, content or both")
	}
	var patch Patch
	if title != nil {
		t, err := ValidTitle(*title)
		if err != nil {
			return Post{}, err
		}
		patch.Title = &t
	}
	if content != nil {
		if err := ValidContent(*content); err != nil {
			return Post{}, err
		}
		patch.Content = content
	}
	p, err := s.store.Update(ctx, id, author, patch)
	s.cache.changed(id)
	return p, err
}

// Delete removes the post with id if author wrote it.
func (s *Service) Delete(ctx context.Context, id int64, author string) error {
	err := s.store.Delete(ctx, id, author)
	s.cache.changed(id)
	return err
}

// GetEncoded returns the post with id as encode renders it, from the cache
// when it holds it (errors, ErrNotFound among them, are not cached). encode
// must be the same rendering on every call of a Service, and the bytes it
// returns, which the cache may keep and hand to other callers, must not be
// changed by anyone.
func (s *Service) GetEncoded(ctx context.Context, id int64, encode func(*Post) ([]byte, error)) ([]byte, error) {
	return s.cache.get(cacheKey{id: id}, func() ([]byte, error) {
		p, err := s.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		return encode(&p)
	})
}

// ListEncoded is List's page as encode renders it (items and the next
// page's cursor, as List returns them), cached as GetEncoded's result is.
func (s *Service) ListEncoded(ctx context.Context, before int64, limit int, encode func(items []Post, next int64) ([]byte, error)) ([]byte, error) {
	return s.cache.get(cacheKey{list: true, id: max(before, 0), limit: limit}, func() ([]byte, error) {
		items, next, err := s.List(ctx, before, limit)
		if err != nil {
			return nil, err
		}
		return encode(items, next)
	})
}

// ValidTitle trims the title and checks it: 1..MaxTitleChars characters on
// one line, no control characters.
func ValidTitle(s string) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", validation.Errorf("title", "title must not be empty")
	}
	if n > MaxTitleChars {
		return "", validation.Errorf("title", "title must be at most %d characters", MaxTitleChars)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", validation.Errorf("title", "title must be one line without control characters")
	}
	return s, nil
}

// ValidContent checks the content: not blank, at most MaxContentChars
// characters, no NUL (line breaks and tabs are fine).
func ValidContent(s string) error {
	if strings.TrimSpace(s) == "" {
		return validation.Errorf("content", "content must not be empty")
	}
	if utf8.RuneCountInString(s) > MaxContentChars {
		return validation.Errorf("content", "content must be at most %d characters", MaxContentChars)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return validation.Errorf("content", "content must not contain NUL characters")
	}
	return nil
}
