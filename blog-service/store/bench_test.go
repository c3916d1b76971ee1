package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"titanium/platform/sqlitedb"
)

// benchRows are the table sizes compared: list latency must not grow with
// the table (target: 10^6 rows within 1.5x of 10^3).
var benchRows = []int{1000, 1000000}

// BenchmarkListPosts measures one page of the list (the default limit,
// newest first). Iterations alternate the first page and a deep-cursor page
// at a spread of positions, so ns/op is the mean page latency of a walk.
// The names (BenchmarkListPosts/rows=N) are read by `make bench`; keep them.
func BenchmarkListPosts(b *testing.B) {
	for _, rows := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			s := openFixture(b, rows)
			cursors := deepCursors(rows)
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var before int64
				if i%2 == 1 {
					before = cursors[(i/2)%len(cursors)]
				}
				listPage(b, ctx, s, before)
			}
		})
	}
}

// BenchmarkPageDepth splits the same measurement into the first page and
// deep-cursor pages (a name that -bench 'BenchmarkListPosts' does not pick).
func BenchmarkPageDepth(b *testing.B) {
	for _, rows := range benchRows {
		for _, depth := range []string{"first", "deep"} {
			b.Run(fmt.Sprintf("rows=%d/page=%s", rows, depth), func(b *testing.B) {
				s := openFixture(b, rows)
				cursors := deepCursors(rows)
				ctx := context.Background()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					var before int64
					if depth == "deep" {
						before = cursors[i%len(cursors)]
					}
					listPage(b, ctx, s, before)
				}
			})
		}
	}
}

const benchLimit = 20

func listPage(b *testing.B, ctx context.Context, s *Store, before int64) {
	posts, more, err := s.List(ctx, before, benchLimit)
	if err != nil {
		b.Fatal(err)
	}
	if len(posts) != benchLimit || !more {
		b.Fatalf("page before %d: %d posts (more %v), want a full page", before, len(posts), more)
	}
}

// deepCursors are cursor positions spread over the whole table (from near
// the newest to near the oldest), so deep pages touch different B-tree
// leaves rather than one cached page.
func deepCursors(rows int) []int64 {
	const n = 64
	out := make([]int64, n)
	for i := range out {
		// Multiplicative spread, never below a full page from the bottom.
		pos := (int64(i)*2654435761)%int64(rows-2*benchLimit) + 2*benchLimit
		out[i] = pos
	}
	return out
}

// fixtureVersion changes when the fixture's content does, so a cached file
// from an older shape is rebuilt.
const fixtureVersion = 1

// openFixture opens a posts database with rows posts, built once and cached
// in the system temp directory, keyed by schema and fixture version, so a
// rerun does not rebuild 10^6 rows.
func openFixture(b *testing.B, rows int) *Store {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("titanium-blog-bench-s%d-f%d-rows%d.db", SchemaVersion(), fixtureVersion, rows))
	if !fixtureOK(ctx, path, rows) {
		start := time.Now()
		if err := buildFixture(ctx, path, rows); err != nil {
			b.Fatalf("build fixture: %v", err)
		}
		b.Logf("built %d-row fixture in %v: %s", rows, time.Since(start).Round(time.Millisecond), path)
	}
	s, err := Open(ctx, path, sqlitedb.SyncNormal)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// fixtureOK reports whether path holds a complete fixture of rows posts.
func fixtureOK(ctx context.Context, path string, rows int) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return false
	}
	defer db.Close()
	var version, n int
	if db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version) != nil ||
		db.QueryRowContext(ctx, "SELECT n FROM post_count WHERE id = 1").Scan(&n) != nil {
		return false
	}
	return version == SchemaVersion() && n == rows
}

// buildFixture writes rows posts into a temporary file and renames it into
// place. The schema comes from the real migrations; the bulk load runs with
// no journal and no fsync (a throwaway file), in one transaction with one
// prepared statement: ~10^6 rows in seconds rather than minutes.
func buildFixture(ctx context.Context, path string, rows int) error {
	// A name of its own, so two benchmark runs building at once cannot
	// write into the same file; the rename publishes a complete fixture.
	tmp := fmt.Sprintf("%s.building-%d", path, os.Getpid())
	defer func() {
		for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"} {
			_ = os.Remove(f)
		}
	}()
	s, err := Open(ctx, tmp, sqlitedb.SyncNormal)
	if err != nil {
		return err
	}
	s.Close()

	db, err := sql.Open("sqlite3", "file:"+tmp+"?_journal_mode=OFF&_synchronous=OFF")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO posts (title, content, author, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	// A realistic short post: about 200 bytes of content.
	content := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 4)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= rows; i++ {
		ts := t0.Add(time.Duration(i) * time.Second).Format(timeLayout)
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("Post number %d", i), content, fmt.Sprintf("user%d", i%997), ts, ts); err != nil {
			return err
		}
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
