package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"titanium/platform/sqlitedb"
)

// liveDB is a users.db in WAL mode, opened the way user-service opens it,
// with one writer goroutine inserting rows at about 200 per second.
type liveDB struct {
	dir, path string
	db        *sqlitedb.DB
	acked     atomic.Int64 // highest id whose INSERT returned success
	stop      context.CancelFunc
	done      chan error
}

const (
	writesPerSecond = 200
	maxWrites       = 2000
	maxWriteTime    = 15 * time.Second
)

func startLiveDB(t *testing.T) *liveDB {
	t.Helper()
	dir := t.TempDir()
	l := &liveDB{dir: dir, path: filepath.Join(dir, "users.db"), done: make(chan error, 1)}
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, l.path, sqlitedb.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	l.db = db
	err = db.Migrate(ctx, []string{`CREATE TABLE users (
		id INTEGER PRIMARY KEY,
		username TEXT NOT NULL UNIQUE,
		email TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		created_at TEXT NOT NULL)`})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, maxWriteTime)
	l.stop = cancel
	go l.write(wctx)
	t.Cleanup(func() {
		if err := l.finish(); err != nil {
			t.Errorf("writer: %v", err)
		}
		db.Close()
	})
	return l
}

// write inserts one row per tick, bounded in count and time, until stopped.
func (l *liveDB) write(ctx context.Context) {
	tick := time.NewTicker(time.Second / writesPerSecond)
	defer tick.Stop()
	for i := 1; i <= maxWrites; i++ {
		select {
		case <-ctx.Done():
			l.done <- nil
			return
		case <-tick.C:
		}
		res, err := l.db.Write.ExecContext(ctx,
			`INSERT INTO users (username, email, password_hash, created_at) VALUES (?, ?, ?, ?)`,
			fmt.Sprintf("user%06d", i), fmt.Sprintf("user%06d@example.com", i), "x", time.Now().UTC().Format(time.RFC3339Nano))
		if err != nil {
			if ctx.Err() != nil {
				l.done <- nil
				return
			}
			l.done <- err
			return
		}
		id, err := res.LastInsertId()
		if err != nil {
			l.done <- err
			return
		}
		l.acked.Store(id)
	}
	l.done <- nil
}

// finish stops the writer and returns its error, if any.
func (l *liveDB) finish() error {
	if l.stop == nil {
		return nil
	}
	l.stop()
	l.stop = nil
	return <-l.done
}

// waitAcked waits until at least n rows are acknowledged.
func (l *liveDB) waitAcked(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.acked.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("writer acknowledged %d rows, want %d", l.acked.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// snapshot is what a backup file holds.
type snapshot struct {
	count, minID, maxID int64
	journalMode         string
}

// inspect checks a backup file on its own, as a restore would use it: it
// must pass integrity_check and hold the ids 1..max with no gap.
func inspect(path string) (snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sqlitedb.IntegrityCheck(ctx, path); err != nil {
		return snapshot{}, err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return snapshot{}, err
	}
	defer db.Close()
	var s snapshot
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&s.journalMode); err != nil {
		return s, err
	}
	err = db.QueryRowContext(ctx, "SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM users").
		Scan(&s.count, &s.minID, &s.maxID)
	return s, err
}

// checkBackup asserts the backup at path is complete up to ackedBefore.
func checkBackup(t *testing.T, path string, ackedBefore int64) snapshot {
	t.Helper()
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Errorf("%s has a -wal file: a backup must be one self-contained file", path)
	}
	s, err := inspect(path)
	if err != nil {
		t.Fatalf("backup %s: %v", filepath.Base(path), err)
	}
	if s.count == 0 || s.minID != 1 || s.maxID != s.count {
		t.Errorf("backup %s: %d rows, ids %d..%d; want the gap-free prefix 1..max", filepath.Base(path), s.count, s.minID, s.maxID)
	}
	if s.maxID < ackedBefore {
		t.Errorf("backup %s: max id %d, but %d rows were acknowledged before it started", filepath.Base(path), s.maxID, ackedBefore)
	}
	if s.journalMode != "delete" {
		t.Errorf("backup %s: journal_mode %q, want delete", filepath.Base(path), s.journalMode)
	}
	return s
}

// fakeClock steps one second per call, so backups taken within one real
// second still get distinct names.
func fakeClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func listBackups(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestBackupDuringWrites(t *testing.T) {
	live := startLiveDB(t)
	backupDir := filepath.Join(t.TempDir(), "backup")
	now := fakeClock()
	const keep, runs = 3, 6
	var want []string
	for i := 0; i < runs; i++ {
		live.waitAcked(t, int64(60*(i+1)))
		ackedBefore := live.acked.Load()
		stamp := now()
		clock := func() time.Time { return stamp }
		args := []string{"-source", live.path, "-dir", backupDir, "-keep", fmt.Sprint(keep)}
		if err := run(context.Background(), args, func(string) string { return "" }, clock, discardLogger()); err != nil {
			t.Fatalf("backup %d: %v", i+1, err)
		}
		name := "users.db." + stamp.Format(stampLayout)
		want = append(want, name)
		s := checkBackup(t, filepath.Join(backupDir, name), ackedBefore)
		t.Logf("backup %d: %d rows (acknowledged before: %d, after: %d)", i+1, s.count, ackedBefore, live.acked.Load())
	}
	if err := live.finish(); err != nil {
		t.Fatal(err)
	}
	got := listBackups(t, backupDir)
	if !slices.Equal(got, want[runs-keep:]) {
		t.Errorf("backups kept = %v, want the newest %d: %v", got, keep, want[runs-keep:])
	}
}

// TestBackupReadOnlySource runs the built binary the way the CronJob does:
// as another user, with the database directory and files read-only (the
// volume is mounted readOnly at /data), while the service keeps writing.
// SQLite then cannot write the -shm file and reads the WAL index from
// private memory; the snapshot must still be consistent.
func TestBackupReadOnlySource(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "users-backup")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	live := startLiveDB(t)
	live.waitAcked(t, 50)
	backupDir := t.TempDir()
	asRoot := os.Geteuid() == 0
	for _, p := range []string{live.path, live.path + "-wal", live.path + "-shm"} {
		if err := os.Chmod(p, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	dirs := []string{live.dir, filepath.Dir(live.dir), filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), filepath.Dir(backupDir)}
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(live.dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(backupDir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(live.dir, 0o755) })

	for i := 0; i < 3; i++ {
		live.waitAcked(t, int64(100*(i+1)))
		ackedBefore := live.acked.Load()
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		cmd := exec.CommandContext(rctx, bin, "-source", live.path, "-dir", backupDir, "-keep", "2")
		if asRoot {
			// Root ignores file modes; run as the images' nonroot user instead.
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		}
		out, err := cmd.CombinedOutput()
		rcancel()
		if err != nil {
			t.Fatalf("users-backup: %v\n%s", err, out)
		}
		if !isJSONLines(out) {
			t.Errorf("users-backup logs are not JSON lines:\n%s", out)
		}
		names := listBackups(t, backupDir)
		if len(names) == 0 {
			t.Fatal("no backup written")
		}
		checkBackup(t, filepath.Join(backupDir, names[len(names)-1]), ackedBefore)
		if len(names) > 2 {
			t.Errorf("backups kept = %v, want at most 2", names)
		}
		// Names have one-second resolution.
		time.Sleep(1100 * time.Millisecond)
	}
	// The tool must not have written into the source directory.
	for _, n := range listBackups(t, live.dir) {
		switch n {
		case "users.db", "users.db-wal", "users.db-shm":
		default:
			t.Errorf("unexpected file %s in the read-only source directory", n)
		}
	}

	// A failure exits non-zero.
	cmd := exec.CommandContext(ctx, bin, "-source", filepath.Join(live.dir, "missing.db"), "-dir", backupDir)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("backup of a missing database exited 0:\n%s", out)
	}
}

func isJSONLines(out []byte) bool {
	lines := 0
	for _, line := range splitLines(out) {
		if len(line) == 0 {
			continue
		}
		lines++
		if line[0] != '{' || line[len(line)-1] != '}' {
			return false
		}
	}
	return lines > 0
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, b[start:i])
			start = i + 1
		}
	}
	return append(out, b[start:])
}

// TestPlainCopyIsUnsafe shows why the tool exists: copying users.db the way
// `cp /data/users.db /backup/` in a cron job would, while the service writes,
// gives a file that misses acknowledged rows (they are still in users.db-wal)
// or is torn by a concurrent checkpoint.
func TestPlainCopyIsUnsafe(t *testing.T) {
	live := startLiveDB(t)
	copyDir := t.TempDir()
	unsafeCopies := 0
	const copies = 5
	for i := 0; i < copies; i++ {
		live.waitAcked(t, int64(80*(i+1)))
		ackedBefore := live.acked.Load()
		dst := filepath.Join(copyDir, fmt.Sprintf("users.db.copy%d", i))
		if err := copyFile(live.path, dst); err != nil {
			t.Fatal(err)
		}
		s, err := inspect(dst)
		switch {
		case err != nil:
			unsafeCopies++
			t.Logf("plain copy %d: unusable: %v", i+1, err)
		case s.maxID < ackedBefore || s.count != s.maxID:
			unsafeCopies++
			t.Logf("plain copy %d: %d rows (ids %d..%d), but %d were acknowledged before the copy started",
				i+1, s.count, s.minID, s.maxID, ackedBefore)
		default:
			t.Logf("plain copy %d: happened to be complete (%d rows)", i+1, s.count)
		}
	}
	if unsafeCopies == 0 {
		t.Errorf("all %d plain copies of the live WAL database were complete; want the test to show the unsafe path", copies)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{name: "defaults", want: config{Source: "/data/users.db", Dir: "/backup", Keep: 7, Timeout: 10 * time.Minute}},
		{name: "env", env: map[string]string{"BACKUP_SOURCE": "/x/u.db", "BACKUP_DIR": "/b", "BACKUP_KEEP": "3"},
			want: config{Source: "/x/u.db", Dir: "/b", Keep: 3, Timeout: 10 * time.Minute}},
		{name: "flags over env", args: []string{"-keep", "2", "-dir", "/c"}, env: map[string]string{"BACKUP_KEEP": "3"},
			want: config{Source: "/data/users.db", Dir: "/c", Keep: 2, Timeout: 10 * time.Minute}},
		{name: "keep zero", args: []string{"-keep", "0"}, wantErr: true},
		{name: "bad env", env: map[string]string{"BACKUP_KEEP": "many"}, wantErr: true},
		{name: "stray argument", args: []string{"now"}, wantErr: true},
		{name: "unknown flag", args: []string{"-force"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		"users.db.2026-01-01-000000", "users.db.2026-01-02-000000", "users.db.2026-01-03-000000",
		"users.db.2026-01-04-000000.tmp",                                             // left by a killed run
		"users.db", "notes.txt", "users.db.2026-01-05", "posts.db.2026-01-01-000000", // not ours
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := prune(dir, "users.db", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the oldest backup and the .tmp", removed)
	}
	got := listBackups(t, dir)
	want := []string{"notes.txt", "posts.db.2026-01-01-000000", "users.db", "users.db.2026-01-02-000000", "users.db.2026-01-03-000000", "users.db.2026-01-05"}
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}
