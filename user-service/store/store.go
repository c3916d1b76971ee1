// Package store keeps users in SQLite (users.db) through platform/sqlitedb:
// one writer connection, a read pool, pragmas in the DSN, and schema
// migrations applied at open.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"titanium/platform/memo"
	"titanium/platform/sqlitedb"
	"titanium/user-service/users"
)

// migrations are applied in order, once each, tracked by user_version.
// Usernames and emails are unique without regard to case, so "Alice" cannot
// be registered beside "alice".
var migrations = []string{
	`CREATE TABLE users (
		id            INTEGER PRIMARY KEY AUTOINCREMENT,
		username      TEXT NOT NULL COLLATE NOCASE,
		email         TEXT NOT NULL COLLATE NOCASE,
		password_hash TEXT NOT NULL,
		created_at    TEXT NOT NULL,
		updated_at    TEXT NOT NULL
	) STRICT;
	CREATE UNIQUE INDEX users_username ON users(username);
	CREATE UNIQUE INDEX users_email ON users(email);`,
}

// timeFormat is fixed-width so the text columns sort as time does.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// Store is the users table.
type Store struct {
	db *sqlitedb.DB
}

var _ users.Store = (*Store)(nil)

// Open opens (creating if needed) and migrates the database at path.
func Open(ctx context.Context, path string, sync sqlitedb.Synchronous) (*Store, error) {
	db, err := sqlitedb.OpenMigrated(ctx, path, sync, migrations)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks both pools with a query.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Count returns the number of users.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

const userColumns = `id, username, email, password_hash, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (users.Record, error) {
	var (
		r                users.Record
		created, updated string
	)
	if err := row.Scan(&r.ID, &r.Username, &r.Email, &r.PasswordHash, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return users.Record{}, users.ErrNotFound
		}
		return users.Record{}, err
	}
	var err error
	if r.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
		return users.Record{}, fmt.Errorf("user %d created_at: %w", r.ID, err)
	}
	if r.UpdatedAt, err = time.Parse(timeFormat, updated); err != nil {
		return users.Record{}, fmt.Errorf("user %d updated_at: %w", r.ID, err)
	}
	return r, nil
}

// Create inserts a user. The commit returns only once the row is in the WAL,
// so a 201 built on it survives a crash of the process.
func (s *Store) Create(ctx context.Context, username, email, hash string, now time.Time) (users.User, error) {
	ts := now.UTC().Format(timeFormat)
	row := s.db.Write.QueryRowContext(ctx,
		`INSERT INTO users (username, email, password_hash, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?) RETURNING `+userColumns,
		username, email, hash, ts, ts)
	r, err := scanRecord(row)
	if err != nil {
		return users.User{}, duplicate(err)
	}
	return r.User, nil
}

// duplicate turns a UNIQUE violation into the domain error naming the column.
func duplicate(err error) error {
	if !sqlitedb.IsConstraint(err) {
		return err
	}
	switch msg := err.Error(); {
	case strings.Contains(msg, "users.username"):
		return users.ErrUsernameTaken
	case strings.Contains(msg, "users.email"):
		return users.ErrEmailTaken
	}
	return err
}

// ByID returns the user with id.
func (s *Store) ByID(ctx context.Context, id int64) (users.Record, error) {
	return scanRecord(s.db.Read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// ByUsername returns the user called username, in any case.
func (s *Store) ByUsername(ctx context.Context, username string) (users.Record, error) {
	return scanRecord(s.db.Read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
}

// List returns up to limit users with id > afterID, in id order.
func (s *Store) List(ctx context.Context, afterID int64, limit int) ([]users.User, error) {
	rows, err := s.db.Read.QueryContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []users.User{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r.User)
	}
	return out, rows.Err()
}

// Update sets the non-nil fields in one statement (no read-then-write, so no
// lock upgrade) and returns the updated user.
func (s *Store) Update(ctx context.Context, id int64, email, hash *string, now time.Time) (users.User, error) {
	row := s.db.Write.QueryRowContext(ctx,
		`UPDATE users SET email = COALESCE(?, email), password_hash = COALESCE(?, password_hash), updated_at = ?
		 WHERE id = ? RETURNING `+userColumns,
		email, hash, now.UTC().Format(timeFormat), id)
	r, err := scanRecord(row)
	if err != nil {
		return users.User{}, duplicate(err)
	}
	return r.User, nil
}

// Health is the live database status for /stats: a ping and the user count,
// shared by every caller for up to a second so /stats stays cheap.
type Health struct {
	status *memo.Value[map[string]any]
}

// NewHealth returns the /stats reporter for s.
func NewHealth(s *Store) *Health {
	return &Health{status: memo.New(time.Second, func() (map[string]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		out := map[string]any{"status": "OFFLINE", "engine": "sqlite"}
		if err := s.Ping(ctx); err == nil {
			if n, err := s.Count(ctx); err == nil {
				out["status"] = "ONLINE"
				out["users"] = n
			}
		}
		return out, nil
	})}
}

// Stats is the /stats "database" object: status ONLINE or OFFLINE, users.
// The check is shared among callers, so it runs apart from ctx, bounded by
// its own 500 ms.
func (h *Health) Stats(context.Context) map[string]any {
	out, _ := h.status.Get()
	return out
}
