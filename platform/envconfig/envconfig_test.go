package envconfig

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestReaderDefaultsParsingAndMasking(t *testing.T) {
	env := map[string]string{"PORT_N": "12", "BAD_N": "x", "D": "250ms", "BAD_D": "-1s", "B": "true", "L": " a, ,b ", "S": "hunter2"}
	r := New(func(k string) string { return env[k] })
	if got := r.Int("PORT_N", 1, 0, 100); got != 12 {
		t.Errorf("Int: got %d, want 12", got)
	}
	if got := r.Int("MISSING_N", 7, 0, 100); got != 7 {
		t.Errorf("Int default: got %d, want 7", got)
	}
	r.Int("BAD_N", 1, 0, 100)
	if got := r.Duration("D", time.Second); got != 250*time.Millisecond {
		t.Errorf("Duration: got %v", got)
	}
	r.Duration("BAD_D", time.Second)
	if !r.Bool("B", false) {
		t.Error("Bool: got false")
	}
	if got := r.List("L", ""); strings.Join(got, "|") != "a|b" {
		t.Errorf("List: got %q", got)
	}
	if got := r.Secret("S", ""); got != "hunter2" {
		t.Errorf("Secret: got %q", got)
	}
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "BAD_N") || !strings.Contains(err.Error(), "BAD_D") {
		t.Fatalf("Err: got %v, want both BAD_N and BAD_D", err)
	}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("cfg", "config", r)
	if strings.Contains(sb.String(), "hunter2") || !strings.Contains(sb.String(), "S=***") {
		t.Errorf("logged config must mask secrets: %s", sb.String())
	}
}
