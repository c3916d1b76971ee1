package envconfig

import (
	"log/slog"
	"os"
	"path/filepath"
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

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwt-secret")
	if err := os.WriteFile(path, []byte("from-the-file\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"file only", map[string]string{"S_FILE": path}, "from-the-file", false},
		{"variable wins over file", map[string]string{"S": "direct", "S_FILE": path}, "direct", false},
		{"missing file is an error", map[string]string{"S_FILE": filepath.Join(dir, "nope")}, "", true},
		{"neither: default", map[string]string{}, "def", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(func(k string) string { return tt.env[k] })
			if got := r.Secret("S", "def"); got != tt.want {
				t.Errorf("Secret: got %q, want %q", got, tt.want)
			}
			if gotErr := r.Err() != nil; gotErr != tt.wantErr {
				t.Errorf("Err: got %v, want error %v", r.Err(), tt.wantErr)
			}
			var logged strings.Builder
			slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "env", r)
			if strings.Contains(logged.String(), "from-the-file") || strings.Contains(logged.String(), "direct") {
				t.Errorf("secret value logged: %s", logged.String())
			}
		})
	}
}
