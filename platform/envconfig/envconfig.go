// Package envconfig reads a service's configuration from environment
// variables with defaults. Every read declares its variable (name, default,
// meaning), so the one function that reads a service's configuration also
// describes it: -help and -env-list print the declarations, the effective
// configuration is logged at start with secrets masked, and every invalid
// value is reported at once.
package envconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Var describes one variable a service reads.
type Var struct {
	Name string `json:"name"`
	// Type is string, secret, list, int, duration or bool.
	Type    string `json:"type"`
	Default string `json:"default"`
	Help    string `json:"help"`
	// File is the variable naming a file that holds a secret (NAME_FILE).
	File string `json:"file,omitempty"`
}

// Reader collects values, declarations and parse errors. The zero value is
// not usable; use New.
type Reader struct {
	getenv func(string) string
	errs   []error
	seen   []slog.Attr
	vars   []Var
	names  map[string]bool
}

// New returns a Reader over getenv; nil means os.Getenv.
func New(getenv func(string) string) *Reader {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Reader{getenv: getenv, names: map[string]bool{}}
}

// declare records a variable; a variable is declared once per service.
func (r *Reader) declare(v Var) {
	if r.names[v.Name] {
		r.errs = append(r.errs, fmt.Errorf("%s: read twice (declare each variable once)", v.Name))
		return
	}
	r.names[v.Name] = true
	r.vars = append(r.vars, v)
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
func (r *Reader) String(key, def, help string) string {
	r.declare(Var{Name: key, Type: "string", Default: def, Help: help})
	v, _ := r.lookup(key, def)
	r.seen = append(r.seen, slog.String(key, v))
	return v
}

// Secret returns the variable or def; it is logged masked. When the variable
// is unset and KEY_FILE names a file, the secret is that file's content
// without its trailing newline: the convention of Docker and Kubernetes
// secrets mounted as files, which keeps the value out of the environment.
func (r *Reader) Secret(key, def, help string) string {
	r.declare(Var{Name: key, Type: "secret", Help: help, File: key + "_FILE"})
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
func (r *Reader) List(key, def, help string) []string {
	r.declare(Var{Name: key, Type: "list", Default: def, Help: help})
	v, _ := r.lookup(key, def)
	r.seen = append(r.seen, slog.String(key, v))
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Int returns the variable parsed as an integer within [min, max], or def.
func (r *Reader) Int(key string, def, min, max int, help string) int {
	r.declare(Var{Name: key, Type: "int", Default: strconv.Itoa(def), Help: fmt.Sprintf("%s (%d to %d)", help, min, max)})
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
func (r *Reader) Duration(key string, def time.Duration, help string) time.Duration {
	r.declare(Var{Name: key, Type: "duration", Default: def.String(), Help: help})
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
func (r *Reader) Bool(key string, def bool, help string) bool {
	r.declare(Var{Name: key, Type: "bool", Default: strconv.FormatBool(def), Help: help})
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

// Vars returns the declared variables in the order they were read.
func (r *Reader) Vars() []Var { return append([]Var(nil), r.vars...) }

// WriteHelp prints the declared variables, their defaults and meanings.
func (r *Reader) WriteHelp(w io.Writer, name string) error {
	fmt.Fprintf(w, "%s is configured by environment variables; a secret NAME may instead be read from the file NAME_FILE names.\n\n", name)
	fmt.Fprintf(w, "Flags:\n  -help      this text\n  -env-list  the variables as JSON\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range r.vars {
		def := v.Default
		switch {
		case v.Type == "secret":
			def = "(secret)"
		case def == "":
			def = "(empty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, v.Help)
	}
	return tw.Flush()
}

// WriteJSON prints the declared variables as a JSON array.
func (r *Reader) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.Vars())
}
