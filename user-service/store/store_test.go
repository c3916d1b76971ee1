package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"titanium/platform/sqlitedb"
	"titanium/user-service/users"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, sqlitedb.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCreateAndLookup(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users.db")
	s := open(t, path)
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

	u, err := s.Create(ctx, "Alice", "alice@example.com", "hash", now)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID <= 0 || u.Username != "Alice" || !u.CreatedAt.Equal(now) {
		t.Fatalf("created: got %+v", u)
	}
	tests := []struct {
		name, username, email string
		want                  error
	}{
		{"same username", "Alice", "other@example.com", users.ErrUsernameTaken},
		{"username in another case", "ALICE", "other@example.com", users.ErrUsernameTaken},
		{"same email", "bob", "alice@example.com", users.ErrEmailTaken},
		{"email in another case", "bob", "ALICE@example.com", users.ErrEmailTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Create(ctx, tt.username, tt.email, "h", now); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	rec, err := s.ByUsername(ctx, "aLiCe")
	if err != nil || rec.ID != u.ID || rec.PasswordHash != "hash" {
		t.Fatalf("by username: got %+v, %v", rec, err)
	}
	if _, err := s.ByID(ctx, 999); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("missing id: got %v, want ErrNotFound", err)
	}

	email := "new@example.com"
	up, err := s.Update(ctx, u.ID, &email, nil, now.Add(time.Second))
	if err != nil || up.Email != email || !up.UpdatedAt.After(up.CreatedAt) {
		t.Fatalf("update: got %+v, %v", up, err)
	}
	rec, _ = s.ByID(ctx, u.ID)
	if rec.PasswordHash != "hash" {
		t.Errorf("update of email changed the hash to %q", rec.PasswordHash)
	}
	if _, err := s.Update(ctx, 999, &email, nil, now); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("update missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctx, "carol", "carol@example.com", "h", now); err != nil {
		t.Fatal(err)
	}
	taken := "carol@example.com"
	if _, err := s.Update(ctx, u.ID, &taken, nil, now); !errors.Is(err, users.ErrEmailTaken) {
		t.Errorf("update to a taken email: got %v, want ErrEmailTaken", err)
	}
}

func TestListPages(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "users.db"))
	for i := 0; i < 5; i++ {
		name := "user" + strings.Repeat("x", i+1)
		if _, err := s.Create(ctx, name, name+"@example.com", "h", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	var after int64
	for {
		page, err := s.List(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			got = append(got, u.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Errorf("ids over pages: got %v, want 1..5", got)
	}
	if n, err := s.Count(ctx); err != nil || n != 5 {
		t.Errorf("count: got %d, %v", n, err)
	}
	if st := NewHealth(s).Stats(ctx); st["status"] != "ONLINE" || st["users"] != int64(5) {
		t.Errorf("health: got %v", st)
	}
}

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(ctx, path, sqlitedb.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Create(ctx, "dave", "dave@example.com", "h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, path) // migrations are idempotent
	if _, err := s2.ByID(ctx, u.ID); err != nil {
		t.Errorf("after reopen: %v", err)
	}
}
