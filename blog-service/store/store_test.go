package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"titanium/blog-service/posts"
	"titanium/platform/sqlitedb"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "posts.db")
	s, err := Open(context.Background(), path, sqlitedb.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func ptr(s string) *string { return &s }

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)

	p, err := s.Create(ctx, "alice", "Hello", "First post")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID <= 0 || p.Author != "alice" || p.Title != "Hello" || p.Content != "First post" {
		t.Fatalf("created %+v", p)
	}
	if p.CreatedAt.IsZero() || !p.CreatedAt.Equal(p.UpdatedAt) || p.CreatedAt.Location() != time.UTC {
		t.Errorf("timestamps: created %v updated %v", p.CreatedAt, p.UpdatedAt)
	}

	got, err := s.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Errorf("get: got %+v, want %+v", got, p)
	}

	// Partial update: only the title changes.
	up, err := s.Update(ctx, p.ID, "alice", posts.Patch{Title: ptr("Hello again")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Title != "Hello again" || up.Content != "First post" || !up.CreatedAt.Equal(p.CreatedAt) || up.UpdatedAt.Before(p.UpdatedAt) {
		t.Errorf("update title: got %+v", up)
	}
	up, err = s.Update(ctx, p.ID, "alice", posts.Patch{Content: ptr("Edited")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Title != "Hello again" || up.Content != "Edited" {
		t.Errorf("update content: got %+v", up)
	}

	if n, err := s.Count(ctx); err != nil || n != 1 {
		t.Errorf("count: got %d, %v; want 1", n, err)
	}
	if err := s.Delete(ctx, p.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, p.ID); !errors.Is(err, posts.ErrNotFound) {
		t.Errorf("get after delete: got %v, want ErrNotFound", err)
	}
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Errorf("count after delete: got %d, %v; want 0", n, err)
	}
}

func TestAuthorship(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	p, err := s.Create(ctx, "alice", "Mine", "Only I may change it")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   int64
		want error
	}{
		{"someone else's post", p.ID, posts.ErrNotAuthor},
		{"missing post", p.ID + 1000, posts.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Update(ctx, tt.id, "mallory", posts.Patch{Title: ptr("pwned")}); !errors.Is(err, tt.want) {
				t.Errorf("update: got %v, want %v", err, tt.want)
			}
			if err := s.Delete(ctx, tt.id, "mallory"); !errors.Is(err, tt.want) {
				t.Errorf("delete: got %v, want %v", err, tt.want)
			}
		})
	}
	got, err := s.Get(ctx, p.ID)
	if err != nil || got != p {
		t.Errorf("post changed by a failed write: got %+v, %v; want %+v", got, err, p)
	}
}

func TestIDsAreNeverReused(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a, _ := s.Create(ctx, "alice", "a", "a")
	if err := s.Delete(ctx, a.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, "alice", "b", "b")
	if err != nil {
		t.Fatal(err)
	}
	if b.ID <= a.ID {
		t.Errorf("id after deleting the newest post: got %d, want > %d (a cursor would point at a different post)", b.ID, a.ID)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	const n = 25
	for i := 1; i <= n; i++ {
		if _, err := s.Create(ctx, "alice", fmt.Sprintf("post %d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	var before int64
	for page := 0; ; page++ {
		posts, more, err := s.List(ctx, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range posts {
			ids = append(ids, p.ID)
		}
		if wantLen := min(10, n-page*10); len(posts) != wantLen {
			t.Fatalf("page %d: got %d posts, want %d", page, len(posts), wantLen)
		}
		if !more {
			break
		}
		before = posts[len(posts)-1].ID
	}
	if len(ids) != n {
		t.Fatalf("walk returned %d posts, want %d", len(ids), n)
	}
	for i, id := range ids {
		if want := int64(n - i); id != want {
			t.Fatalf("position %d: got id %d, want %d (newest first)", i, id, want)
		}
	}
	if _, _, err := s.List(ctx, 0, 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

// TestListWalkWhileCreating walks every page while other goroutines keep
// creating posts: every post that existed when the walk began is returned
// exactly once, and no post is returned twice.
func TestListWalkWhileCreating(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	const initial = 300
	existing := map[int64]bool{}
	for i := 0; i < initial; i++ {
		p, err := s.Create(ctx, "alice", fmt.Sprintf("seed %d", i), "x")
		if err != nil {
			t.Fatal(err)
		}
		existing[p.ID] = true
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var created sync.Map
	var made atomic.Int64
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ { // bounded even if the walk hangs
				select {
				case <-stop:
					return
				default:
				}
				p, err := s.Create(ctx, "bob", "concurrent", "x")
				if err != nil {
					t.Error(err)
					return
				}
				created.Store(p.ID, true)
				made.Add(1)
			}
		}()
	}
	// A page is fast: without these waits the walk can end before any
	// writer has committed, and then the test proves nothing.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the writers to start", func() bool { return made.Load() > 0 })

	seen := map[int64]int{}
	var before int64
	pages := 0
	atStart := made.Load()
	for {
		posts, more, err := s.List(ctx, before, 7)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if pages == 1 {
			waitFor("a post created during the walk", func() bool { return made.Load() > atStart })
		}
		for _, p := range posts {
			seen[p.ID]++
		}
		if !more {
			break
		}
		before = posts[len(posts)-1].ID
		if pages > 10000 {
			t.Fatal("walk does not end")
		}
	}
	close(stop)
	wg.Wait()

	for id, n := range seen {
		if n != 1 {
			t.Errorf("post %d returned %d times", id, n)
		}
		_, isNew := created.Load(id)
		if !existing[id] && !isNew {
			t.Errorf("post %d returned but never created", id)
		}
	}
	for id := range existing {
		if seen[id] != 1 {
			t.Errorf("post %d existed before the walk but was returned %d times", id, seen[id])
		}
	}
	n := 0
	created.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Error("no post was created during the walk: the test proved nothing")
	}
}

// TestAcknowledgedPostsSurviveReopen closes and reopens the database file:
// everything Create returned is there, and the schema is not re-applied.
func TestAcknowledgedPostsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posts.db")
	s, err := Open(ctx, path, sqlitedb.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := 0; i < 20; i++ {
		p, err := s.Create(ctx, "alice", "t", "c")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	s.Close()
	s, err = Open(ctx, path, sqlitedb.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range ids {
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("post %d after reopen: %v", id, err)
		}
	}
	if n, _ := s.Count(ctx); n != int64(len(ids)) {
		t.Errorf("count after reopen: got %d, want %d", n, len(ids))
	}
}

func TestClosedStoreFailsPing(t *testing.T) {
	s, _ := openTest(t)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	s.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Error("ping on a closed store succeeded")
	}
}

// TestListQueriesUseTheRowidOrder checks the query plans: pages come
// straight off the primary key in order (a range search from the cursor),
// never from a sort of the whole table, so page cost does not grow with it.
func TestListQueriesUseTheRowidOrder(t *testing.T) {
	s, _ := openTest(t)
	tests := []struct {
		name, query string
		args        []any
		want        string
	}{
		{"first page", listFirstQuery, []any{21}, "SCAN posts"},
		{"after a cursor", listAfterQuery, []any{1000, 21}, "USING INTEGER PRIMARY KEY (rowid<?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := s.db.Read.Query("EXPLAIN QUERY PLAN "+tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			joined := strings.Join(plan, "; ")
			if !strings.Contains(joined, tt.want) || strings.Contains(joined, "TEMP B-TREE") {
				t.Errorf("plan: got %q, want %q and no TEMP B-TREE sort", joined, tt.want)
			}
		})
	}
}

func TestParseTimeIsTimeParse(t *testing.T) {
	cases := []string{
		"2026-11-25T11:27:08.123456Z", "2026-11-25T11:27:08.000000Z", "0000-01-01T00:00:00.000000Z",
		"9999-12-31T23:59:59.999999Z", "2024-02-29T12:00:00.000001Z", "2023-02-29T12:00:00.000000Z",
		"2100-02-29T00:00:00.000000Z", "2000-02-29T00:00:00.000000Z", "2026-04-31T00:00:00.000000Z",
		"2026-13-01T00:00:00.000000Z", "2026-00-01T00:00:00.000000Z", "2026-01-00T00:00:00.000000Z",
		"2026-01-01T24:00:00.000000Z", "2026-01-01T00:60:00.000000Z", "2026-01-01T00:00:60.000000Z",
		"2026-01-01T00:00:00.00000aZ", "2026-01-01T00:00:00.000000+", "2026-01-01 00:00:00.000000Z",
		"+026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.12345Z", "2026-01-01T00:00:00Z", "",
	}
	for _, s := range cases {
		got, err := parseTime(s)
		want, werr := time.Parse(timeLayout, s)
		if (err == nil) != (werr == nil) || !got.Equal(want) || got.Location() != want.Location() {
			t.Errorf("parseTime(%q) = %v, %v; time.Parse gives %v, %v", s, got, err, want, werr)
		}
	}
	// Every day of a leap and a common year, at varied times of day.
	for _, start := range []time.Time{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for d := 0; d < 366; d++ {
			ts := start.AddDate(0, 0, d).Add(time.Duration(d) * 3797 * time.Second).Add(time.Duration(d*7919) * time.Microsecond)
			s := ts.Format(timeLayout)
			got, err := parseTime(s)
			if err != nil || !got.Equal(ts) || got != ts {
				t.Errorf("parseTime(%q) = %v, %v; want %v", s, got, err, ts)
			}
		}
	}
}
