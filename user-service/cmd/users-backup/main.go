// Command users-backup takes a consistent snapshot of user-service's live
// SQLite database and keeps the newest N. The Kubernetes CronJob runs it
// nightly from the user-service image with the data volume mounted read-only
// at /data and the backup volume at /backup.
//
// A plain file copy of a WAL database is not a backup: the newest commits
// live in users.db-wal, and a copy taken while the service checkpoints can
// be torn (sqlite.org/howtocorrupt.html). This tool uses SQLite's online
// backup API through sqlitedb.Backup, which checks the snapshot with
// PRAGMA integrity_check and renames it into place atomically, so a file
// named users.db.YYYY-mm-dd-HHMMSS is always complete.
//
// Usage:
//
//	users-backup [-source /data/users.db] [-dir /backup] [-keep 7] [-timeout 10m]
//
// Each flag defaults to an environment variable (BACKUP_SOURCE, BACKUP_DIR,
// BACKUP_KEEP, BACKUP_TIMEOUT). Logs are JSON lines on stderr; the exit
// status is non-zero on any failure, so the Job is marked failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"titanium/platform/envconfig"
	"titanium/platform/service"
	"titanium/platform/sqlitedb"
)

// stampLayout names backups users.db.YYYY-mm-dd-HHMMSS (UTC); names sort
// lexicographically in time order, which pruning relies on.
const stampLayout = "2006-01-02-150405"

func main() {
	logger := service.NewLogger(os.Stderr, "users-backup", slog.LevelInfo)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, time.Now, logger); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// -help after any other arguments: they parsed, nothing ran.
			fmt.Println(usage)
			return
		}
		logger.Error("backup failed", "err", err)
		stop()
		os.Exit(1)
	}
}

const usage = "usage: users-backup [-source /data/users.db] [-dir /backup] [-keep 7] [-timeout 10m]\n" +
	"each flag defaults to an environment variable: BACKUP_SOURCE, BACKUP_DIR, BACKUP_KEEP, BACKUP_TIMEOUT"

// config is the tool's configuration, from flags over environment defaults.
type config struct {
	Source  string
	Dir     string
	Keep    int
	Timeout time.Duration
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{
		Source:  env.String("BACKUP_SOURCE", "/data/users.db", "the live database to back up"),
		Dir:     env.String("BACKUP_DIR", "/backup", "where backups are written"),
		Keep:    env.Int("BACKUP_KEEP", 7, 1, 10000, "how many backups to keep, newest first"),
		Timeout: env.Duration("BACKUP_TIMEOUT", 10*time.Minute, "deadline for the whole run"),
	}
	if err := env.Err(); err != nil {
		return c, err
	}
	fs := flag.NewFlagSet("users-backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Source, "source", c.Source, "the live database to back up")
	fs.StringVar(&c.Dir, "dir", c.Dir, "where backups are written")
	fs.IntVar(&c.Keep, "keep", c.Keep, "how many backups to keep (newest first)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "deadline for the whole run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Keep < 1 {
		return c, fmt.Errorf("-keep=%d: keep at least one backup", c.Keep)
	}
	if c.Timeout <= 0 {
		return c, fmt.Errorf("-timeout=%v: want a positive duration", c.Timeout)
	}
	return c, nil
}

// run takes one backup and prunes old ones. now is injected so tests can
// take several backups within one second.
func run(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, logger *slog.Logger) error {
	c, err := parseConfig(args, getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	start := now().UTC()
	target := filepath.Join(c.Dir, filepath.Base(c.Source)+"."+start.Format(stampLayout))
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("%s already exists: refusing to overwrite a backup", target)
	}
	logger.Info("backup started", "source", c.Source, "target", target, "keep", c.Keep)
	t0 := time.Now()
	if err := sqlitedb.Backup(ctx, c.Source, target); err != nil {
		return err
	}
	info, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("stat backup: %w", err)
	}
	logger.Info("backup written", "target", target, "bytes", info.Size(),
		"duration_ms", time.Since(t0).Milliseconds(), "integrity_check", "ok")

	pruned, err := prune(c.Dir, filepath.Base(c.Source), c.Keep)
	for _, p := range pruned {
		logger.Info("backup pruned", "path", p)
	}
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	return nil
}

// prune deletes all but the newest keep backups of base in dir, and leftover
// temporary files of interrupted runs. It touches only names this tool makes.
func prune(dir, base string, keep int) (removed []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	pattern := regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `\.\d{4}-\d{2}-\d{2}-\d{6}(\.tmp)?$`)
	var backups []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !pattern.MatchString(name) {
			continue
		}
		if strings.HasSuffix(name, ".tmp") {
			// Runs never overlap (the CronJob forbids concurrency) and
			// sqlitedb.Backup removes its own temporary file, so a .tmp
			// here is left by a killed run.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, filepath.Join(dir, name))
			continue
		}
		backups = append(backups, name)
	}
	slices.Sort(backups)
	if len(backups) > keep {
		for _, name := range backups[:len(backups)-keep] {
			p := filepath.Join(dir, name)
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, p)
		}
	}
	return removed, errors.Join(errs...)
}
