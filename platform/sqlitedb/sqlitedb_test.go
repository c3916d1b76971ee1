package sqlitedb

import (
	"context"
	"path/filepath"
	"testing"
)

func TestEveryPooledConnectionHasThePragmas(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Hold several read connections at once so the pool must open new ones.
	var conns []interface{ Close() error }
	for i := 0; i < 4; i++ {
		c, err := db.Read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var busy, fk, sync, queryOnly int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		_ = c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
		_ = c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
		_ = c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
		_ = c.QueryRowContext(ctx, "PRAGMA query_only").Scan(&queryOnly)
		if mode != "wal" || busy != 5000 || fk != 1 || sync != 1 || queryOnly != 1 {
			t.Errorf("conn %d: journal=%s busy=%d fk=%d sync=%d query_only=%d, want wal 5000 1 1(NORMAL) 1", i, mode, busy, fk, sync, queryOnly)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if _, err := db.Read.ExecContext(ctx, "CREATE TABLE nope (id INTEGER)"); err == nil {
		t.Error("read pool accepted a write")
	}
}

func TestMigrateIsIdempotentAndRefusesNewerSchemas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	migrations := []string{
		`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)`,
		`CREATE INDEX items_name ON items(name)`,
	}
	db, err := Open(ctx, path, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := db.Migrate(ctx, migrations); err != nil {
			t.Fatalf("migrate run %d: %v", i+1, err)
		}
	}
	if err := db.Migrate(ctx, migrations[:1]); err == nil {
		t.Error("an older binary migrated a newer schema")
	}
	db.Close()
}

func TestBackupIsConsistentAndChecked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, filepath.Join(dir, "src.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, []string{`CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)`}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if _, err := db.Write.ExecContext(ctx, "INSERT INTO items (v) VALUES (?)", "x"); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, db.Path, dst); err != nil {
		t.Fatal(err)
	}
	if err := IntegrityCheck(ctx, dst); err != nil {
		t.Fatal(err)
	}
	copyDB, err := Open(ctx, dst, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var n int
	if err := copyDB.Read.QueryRowContext(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 500 {
		t.Errorf("backup rows: got %d (%v), want 500", n, err)
	}
	if err := Backup(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "b2.db")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
}
