// Package store keeps blog posts in SQLite (posts.db). It owns the schema and
// its migrations, and every query the service runs. Writes go through the
// single writer connection of platform/sqlitedb; reads use the read pool, so
// a slow list never waits behind a write.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"titanium/blog-service/posts"
	"titanium/platform/sqlitedb"
)

var _ posts.Store = (*Store)(nil)

// migrations are applied in order by sqlitedb.Migrate; the database's
// user_version is the number applied. Never edit one that has shipped:
// append a new one.
var migrations = []string{
	// ids are AUTOINCREMENT so they are never reused, even after the newest
	// post is deleted: "newest first" is "id descending", and a cursor (the
	// last id seen) stays meaningful forever. The INTEGER PRIMARY KEY is the
	// rowid, so keyset pagination walks the table's own B-tree: a page costs
	// O(log n + limit) whatever the table size, with no extra index.
	//
	// post_count is maintained by triggers in the same transaction as the
	// write, so /stats reads one row instead of counting the table.
	`CREATE TABLE posts (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		title      TEXT    NOT NULL,
		content    TEXT    NOT NULL,
		author     TEXT    NOT NULL,
		created_at TEXT    NOT NULL,
		updated_at TEXT    NOT NULL
	);
	CREATE TABLE post_count (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		n  INTEGER NOT NULL
	);
	INSERT INTO post_count (id, n) VALUES (1, 0);
	CREATE TRIGGER posts_count_insert AFTER INSERT ON posts
		BEGIN UPDATE post_count SET n = n + 1 WHERE id = 1; END;
	CREATE TRIGGER posts_count_delete AFTER DELETE ON posts
		BEGIN UPDATE post_count SET n = n - 1 WHERE id = 1; END;`,
}

// SchemaVersion is the schema version this binary migrates to.
func SchemaVersion() int { return len(migrations) }

// timeLayout is fixed-width, UTC and sortable as text; microseconds are
// enough to order posts created within the same millisecond for humans
// (the id orders them exactly).
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Store is the posts database.
type Store struct {
	db  *sqlitedb.DB
	now func() time.Time
	// Prepared once, on the pool they run on: database/sql prepares each
	// on a connection the first time it runs there and keeps it, so a
	// request no longer pays sqlite3_prepare (a tenth of a list's CPU).
	get, listFirst, listAfter, count *sql.Stmt // read pool
	insert                           *sql.Stmt // writer, used inside transactions
}

// Open opens (creating when missing) the posts database at path and
// migrates it to the current schema.
func Open(ctx context.Context, path string, sync sqlitedb.Synchronous) (*Store, error) {
	db, err := sqlitedb.OpenMigrated(ctx, path, sync, migrations)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, now: time.Now}
	for _, p := range []struct {
		dst   **sql.Stmt
		pool  *sql.DB
		query string
	}{
		{&s.get, db.Read, getQuery},
		{&s.listFirst, db.Read, listFirstQuery},
		{&s.listAfter, db.Read, listAfterQuery},
		{&s.count, db.Read, countQuery},
		{&s.insert, db.Write, insertQuery},
	} {
		if *p.dst, err = p.pool.PrepareContext(ctx, p.query); err != nil {
			s.Close()
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
	}
	return s, nil
}

// Close closes the prepared statements and the database.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.get, s.listFirst, s.listAfter, s.count, s.insert} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// Ping checks both connection pools with a real query.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

const postColumns = `id, title, content, author, created_at, updated_at`

const (
	getQuery    = `SELECT ` + postColumns + ` FROM posts WHERE id = ?`
	countQuery  = `SELECT n FROM post_count WHERE id = 1`
	insertQuery = `INSERT INTO posts (title, content, author, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?) RETURNING ` + postColumns
)

// Create stores a new post by author and returns it with its id. The post
// is committed (in the WAL) when Create returns.
func (s *Store) Create(ctx context.Context, author, title, content string) (posts.Post, error) {
	ts := s.now().UTC().Format(timeLayout)
	p, err := s.writeReturning(ctx, s.insert, "", title, content, author, ts, ts)
	if err != nil {
		return posts.Post{}, fmt.Errorf("insert post: %w", err)
	}
	return p, nil
}

// writeReturning runs one write statement with a RETURNING clause in an
// explicit transaction: the prepared stmt when there is one, query
// otherwise. The commit is separate so that its error (the one that
// decides whether the write is durable) is seen before the caller
// acknowledges anything; in autocommit mode it would surface only as a
// statement reset.
func (s *Store) writeReturning(ctx context.Context, stmt *sql.Stmt, query string, args ...any) (posts.Post, error) {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return posts.Post{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var row *sql.Row
	if stmt != nil {
		// The writer pool has one connection, where stmt is already
		// prepared: Tx.StmtContext reuses it.
		ts := tx.StmtContext(ctx, stmt)
		defer ts.Close()
		row = ts.QueryRowContext(ctx, args...)
	} else {
		row = tx.QueryRowContext(ctx, query, args...)
	}
	p, err := scanPost(row)
	if err != nil {
		return posts.Post{}, err
	}
	if err := tx.Commit(); err != nil {
		return posts.Post{}, err
	}
	return p, nil
}

// Get returns the post with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (posts.Post, error) {
	row := s.get.QueryRowContext(ctx, id)
	p, err := scanPost(row)
	if errors.Is(err, sql.ErrNoRows) {
		return posts.Post{}, posts.ErrNotFound
	}
	if err != nil {
		return posts.Post{}, fmt.Errorf("get post %d: %w", id, err)
	}
	return p, nil
}

// The list queries walk the rowid B-tree backwards from the top or from
// the cursor: no sort, no OFFSET, so a page reads limit+1 rows whatever the
// table size (TestListQueriesUseTheRowidOrder checks the plan).
const (
	listFirstQuery = `SELECT ` + postColumns + ` FROM posts ORDER BY id DESC LIMIT ?`
	listAfterQuery = `SELECT ` + postColumns + ` FROM posts WHERE id < ? ORDER BY id DESC LIMIT ?`
)

// List returns up to limit posts, newest first, with ids below before
// (before <= 0 starts at the newest). more reports whether older posts
// remain. Posts created during a walk have higher ids than any cursor, so a
// walk never returns a post twice and never skips one that existed when it
// began.
func (s *Store) List(ctx context.Context, before int64, limit int) (page []posts.Post, more bool, err error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("list posts: limit %d must be positive", limit)
	}
	var rows *sql.Rows
	// One extra row tells whether there is a next page without a COUNT.
	if before > 0 {
		rows, err = s.listAfter.QueryContext(ctx, before, limit+1)
	} else {
		rows, err = s.listFirst.QueryContext(ctx, limit+1)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list posts: %w", err)
	}
	defer rows.Close()
	page = make([]posts.Post, 0, limit+1)
	ps := newPostScan()
	for rows.Next() {
		p, err := ps.scan(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list posts: %w", err)
		}
		page = append(page, p)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list posts: %w", err)
	}
	if len(page) > limit {
		return page[:limit], true, nil
	}
	return page, false, nil
}

// Update applies patch to the post with id if author wrote it. It returns
// ErrNotFound when there is no such post and ErrNotAuthor when someone else
// wrote it. The authorship check and the write are one statement, so a
// concurrent change of hands cannot slip between them.
func (s *Store) Update(ctx context.Context, id int64, author string, patch posts.Patch) (posts.Post, error) {
	ts := s.now().UTC().Format(timeLayout)
	p, err := s.writeReturning(ctx, nil,
		`UPDATE posts SET title = coalesce(?, title), content = coalesce(?, content), updated_at = ?
		 WHERE id = ? AND author = ? RETURNING `+postColumns,
		nullable(patch.Title), nullable(patch.Content), ts, id, author)
	if errors.Is(err, sql.ErrNoRows) {
		return posts.Post{}, s.whyNoMatch(ctx, id)
	}
	if err != nil {
		return posts.Post{}, fmt.Errorf("update post %d: %w", id, err)
	}
	return p, nil
}

// Delete removes the post with id if author wrote it; errors as Update.
func (s *Store) Delete(ctx context.Context, id int64, author string) error {
	res, err := s.db.Write.ExecContext(ctx, `DELETE FROM posts WHERE id = ? AND author = ?`, id, author)
	if err != nil {
		return fmt.Errorf("delete post %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete post %d: %w", id, err)
	}
	if n == 0 {
		return s.whyNoMatch(ctx, id)
	}
	return nil
}

// whyNoMatch tells apart the two reasons a conditional write matched no
// row. It reads through the writer connection so it sees the latest commit.
func (s *Store) whyNoMatch(ctx context.Context, id int64) error {
	var one int
	err := s.db.Write.QueryRowContext(ctx, `SELECT 1 FROM posts WHERE id = ?`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return posts.ErrNotFound
	case err != nil:
		return fmt.Errorf("check post %d: %w", id, err)
	}
	return posts.ErrNotAuthor
}

// Count is the number of posts, read from the trigger-maintained counter.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.count.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("count posts: %w", err)
	}
	return n, nil
}

func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

type scanner interface{ Scan(dest ...any) error }

func scanPost(sc scanner) (posts.Post, error) { return newPostScan().scan(sc) }

// postScan holds the destinations of a row's Scan. A page reuses one for
// all its rows, so that a row costs only its strings, not a fresh set of
// escaping destinations.
type postScan struct {
	p                posts.Post
	created, updated string
	dest             [6]any
}

func newPostScan() *postScan {
	ps := &postScan{}
	ps.dest = [6]any{&ps.p.ID, &ps.p.Title, &ps.p.Content, &ps.p.Author, &ps.created, &ps.updated}
	return ps
}

func (ps *postScan) scan(sc scanner) (posts.Post, error) {
	if err := sc.Scan(ps.dest[:]...); err != nil {
		return posts.Post{}, err
	}
	p := ps.p
	var err error
	if p.CreatedAt, err = parseTime(ps.created); err != nil {
		return posts.Post{}, fmt.Errorf("post %d created_at %q: %w", p.ID, ps.created, err)
	}
	if p.UpdatedAt, err = parseTime(ps.updated); err != nil {
		return posts.Post{}, fmt.Errorf("post %d updated_at %q: %w", p.ID, ps.updated, err)
	}
	return p, nil
}

// parseTime is time.Parse(timeLayout, s) with a fast path: every row read
// parses two of these, and the general parser was a tenth of a page's CPU.
// A string of exactly the layout's shape with every field in range is
// decoded directly; anything else (including what the fast path would
// have to normalise, such as February 30) goes to time.Parse, so the
// results and errors are time.Parse's.
func parseTime(s string) (time.Time, error) {
	if len(s) == len(timeLayout) && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
		s[16] == ':' && s[19] == '.' && s[26] == 'Z' {
		year, ok1 := digits(s[0:4])
		month, ok2 := digits(s[5:7])
		day, ok3 := digits(s[8:10])
		hour, ok4 := digits(s[11:13])
		minute, ok5 := digits(s[14:16])
		sec, ok6 := digits(s[17:19])
		micro, ok7 := digits(s[20:26])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 &&
			month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, year) &&
			hour < 24 && minute < 60 && sec < 60 {
			return time.Date(year, time.Month(month), day, hour, minute, sec, micro*1000, time.UTC), nil
		}
	}
	return time.Parse(timeLayout, s)
}

// digits decodes a string of ASCII digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn is the number of days in month of year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
