// Package sqlitedb opens SQLite databases the way every Titanium service
// needs them: pragmas in the DSN so every pooled connection has them, one
// writer connection (SQLite has one writer; several writing connections only
// trade SQLITE_BUSY), a separate read pool, migrations by user_version, and
// a consistent online backup.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"titanium/platform/envconfig"
)

// Synchronous is SQLite's synchronous pragma.
type Synchronous string

// NORMAL in WAL mode never corrupts and survives a process crash (kill -9):
// a commit is in the WAL, in the OS page cache, before it is acknowledged.
// Only a power loss or kernel crash can lose the last commits. FULL adds an
// fsync per commit and costs ~35x in write throughput on this class of
// machine. Services default to NORMAL and let operators choose FULL.
const (
	SyncNormal Synchronous = "NORMAL"
	SyncFull   Synchronous = "FULL"
)

// ParseSynchronous accepts NORMAL or FULL, any case.
func ParseSynchronous(s string) (Synchronous, error) {
	switch Synchronous(strings.ToUpper(s)) {
	case SyncNormal:
		return SyncNormal, nil
	case SyncFull:
		return SyncFull, nil
	}
	return "", fmt.Errorf("synchronous %q: want NORMAL or FULL", s)
}

// Config is a service's database: its file and synchronous mode.
type Config struct {
	Path string
	Sync Synchronous
}

// LoadConfig reads the database path from pathVar (def by default) and
// SQLITE_SYNCHRONOUS (NORMAL by default, see Synchronous).
func LoadConfig(env *envconfig.Reader, pathVar, def string) Config {
	c := Config{Path: env.String(pathVar, def, "the SQLite file; its directory is created when missing")}
	name := env.String("SQLITE_SYNCHRONOUS", string(SyncNormal), "NORMAL (a process crash loses nothing acknowledged) or FULL (an fsync per commit: survives a power loss, ~35x slower writes)")
	s, err := ParseSynchronous(name)
	env.Check(err == nil, "SQLITE_SYNCHRONOUS", "want NORMAL or FULL")
	c.Sync = s
	if err != nil {
		c.Sync = SyncNormal
	}
	return c
}

// DB is a SQLite database with a single-connection writer pool and a read pool.
type DB struct {
	// Write has exactly one connection; its transactions BEGIN IMMEDIATE so
	// read-then-write never upgrades a lock (no SQLITE_BUSY mid-transaction).
	Write *sql.DB
	// Read is for queries only (query_only=1).
	Read *sql.DB
	Path string
}

// DSN is the connection string for path with the pragmas every connection needs.
func DSN(path string, sync Synchronous, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_synchronous", string(sync))
	q.Set("_foreign_keys", "1")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating when missing) the database at path.
func Open(ctx context.Context, path string, sync Synchronous) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	w, err := sql.Open("sqlite3", DSN(path, sync, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// Open the writer first: it sets WAL mode, which readers then see.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", DSN(path, sync, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s (read pool): %w", path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &DB{Write: w, Read: r, Path: path}, nil
}

// OpenMigrated opens the database at path and migrates it to the schema
// that migrations describe: what every service does at start.
func OpenMigrated(ctx context.Context, path string, sync Synchronous, migrations []string) (*DB, error) {
	db, err := Open(ctx, path, sync)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.Read.Close(), db.Write.Close())
}

// Ping checks that both pools can run a query: the live check behind
// /readyz and database.status.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.Read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("read pool: %w", err)
	}
	if err := db.Write.PingContext(ctx); err != nil {
		return fmt.Errorf("write pool: %w", err)
	}
	return nil
}

// Migrate applies migrations[v:] where v is the database's user_version, each
// in its own transaction together with the version bump.
func (db *DB) Migrate(ctx context.Context, migrations []string) error {
	var version int
	if err := db.Write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := db.Write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		// PRAGMA takes no bind parameters; i+1 is an int we control.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// IsConstraint reports whether err is a UNIQUE (or other constraint) violation.
func IsConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// IsBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED.
func IsBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// Backup writes a consistent snapshot of the live database at src to dst.
// It uses SQLite's online backup API in a single step (Step(-1)): a
// step-by-step backup restarts whenever another connection writes, and a
// plain file copy of a WAL database can be torn. The snapshot goes to a
// temporary file beside dst, passes PRAGMA integrity_check, is fsynced, and
// is renamed into place, so dst is either absent or complete.
func Backup(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup source: %w", err)
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	defer os.Remove(tmp)

	// The source is opened read-only: a backup never writes to the live database.
	srcDB, err := sql.Open("sqlite3", "file:"+src+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", "file:"+tmp+"?_busy_timeout=5000")
	if err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	defer dstDB.Close()

	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("source connection: %w", err)
	}
	defer srcConn.Close()
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("target connection: %w", err)
	}
	defer dstConn.Close()

	err = dstConn.Raw(func(dc any) error {
		return srcConn.Raw(func(sc any) error {
			d, ok1 := dc.(*sqlite3.SQLiteConn)
			s, ok2 := sc.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a go-sqlite3 connection")
			}
			b, err := d.Backup("main", s, "main")
			if err != nil {
				return fmt.Errorf("start backup: %w", err)
			}
			for {
				done, err := b.Step(-1)
				if err != nil {
					b.Finish()
					return fmt.Errorf("backup step: %w", err)
				}
				if done {
					break
				}
				select {
				case <-ctx.Done():
					b.Finish()
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
			return b.Finish()
		})
	})
	if err != nil {
		return err
	}
	// The snapshot is a plain rollback-journal file: switch it out of WAL so
	// the backup is one self-contained file.
	if _, err := dstConn.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return fmt.Errorf("finalize backup: %w", err)
	}
	dstConn.Close()
	dstDB.Close()
	if err := IntegrityCheck(ctx, tmp); err != nil {
		return err
	}
	if err := fsyncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename backup into place: %w", err)
	}
	return fsyncDir(filepath.Dir(dst))
}

// IntegrityCheck runs PRAGMA integrity_check on the database file at path.
func IntegrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		return fmt.Errorf("integrity check %s: %w", path, err)
	}
	if result != "ok" {
		return fmt.Errorf("integrity check %s: %s", path, result)
	}
	return nil
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
