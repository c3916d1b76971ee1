// Package envconfig reads a service's configuration from environment
// variables with defaults. Every read is remembered so a service can log its
// effective configuration at start (secrets masked) and fail fast with every
// invalid value listed at once.
package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Reader collects values and parse errors. The zero value is not usable; use New.
type Reader struct {
	getenv func(string) string
	errs   []error
	seen   []slog.Attr
}

// New returns a Reader over getenv; nil means os.Getenv.
func New(getenv func(string) string) *Reader {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Reader{getenv: getenv}
}

func (r *Reader) lookup(key, def string) (string, bool) {
	if v := strings.TrimSpace(r.getenv(key)); v != "" {
		return v, true
	}
	return def, false
}

func (r *Reader) fail(key, v, want string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: want %s", key, v, want))
}

// String returns the variable or def.
func (r *Reader) String(key, def string) string {
	v, _ := r.lookup(key, def)
	r.seen = append(r.seen, slog.String(key, v))
	return v
}

// Secret returns the variable or def; it is logged masked. When the variable
// is unset and KEY_FILE names a file, the secret is that file's content
// without its trailing newline: the convention of Docker and Kubernetes
// secrets mounted as files, which keeps the value out of the environment.
func (r *Reader) Secret(key, def string) string {
	v, set := r.lookup(key, def)
	shown := "(unset)"
	if path, ok := r.lookup(key+"_FILE", ""); !set && ok {
		b, err := os.ReadFile(path)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s_FILE: %w", key, err))
		}
		v = strings.TrimRight(string(b), "\r\n")
		shown = "(from " + path + ")"
	}
	if v != "" && shown == "(unset)" {
		shown = "***"
	}
	r.seen = append(r.seen, slog.String(key, shown))
	return v
}

// List returns the comma-separated variable as trimmed, non-empty items.
func (r *Reader) List(key, def string) []string {
	v := r.String(key, def)
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Int returns the variable parsed as an integer within [min, max], or def.
func (r *Reader) Int(key string, def, min, max int) int {
	v, set := r.lookup(key, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if set && (err != nil || n < min || n > max) {
		r.fail(key, v, fmt.Sprintf("an integer in [%d, %d]", min, max))
		n = def
	}
	r.seen = append(r.seen, slog.Int(key, n))
	return n
}

// Duration returns the variable parsed by time.ParseDuration (>= 0), or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, set := r.lookup(key, def.String())
	d, err := time.ParseDuration(v)
	if set && (err != nil || d < 0) {
		r.fail(key, v, "a non-negative duration such as 250ms or 10s")
		d = def
	}
	r.seen = append(r.seen, slog.Duration(key, d))
	return d
}

// Bool returns the variable parsed by strconv.ParseBool, or def.
func (r *Reader) Bool(key string, def bool) bool {
	v, set := r.lookup(key, strconv.FormatBool(def))
	b, err := strconv.ParseBool(v)
	if set && err != nil {
		r.fail(key, v, "true or false")
		b = def
	}
	r.seen = append(r.seen, slog.Bool(key, b))
	return b
}

// Check records a validation failure when ok is false.
func (r *Reader) Check(ok bool, key, msg string) {
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("%s: %s", key, msg))
	}
}

// Err returns every parse and validation error joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// LogValue lets a Reader be logged as the effective configuration.
func (r *Reader) LogValue() slog.Value { return slog.GroupValue(r.seen...) }
