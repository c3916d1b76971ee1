package envconfig

import (
	"encoding/json"
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
	if got := r.Int("PORT_N", 1, 0, 100, "n"); got != 12 {
		t.Errorf("Int: got %d, want 12", got)
	}
	if got := r.Int("MISSING_N", 7, 0, 100, "n"); got != 7 {
		t.Errorf("Int default: got %d, want 7", got)
	}
	r.Int("BAD_N", 1, 0, 100, "n")
	if got := r.Duration("D", time.Second, "d"); got != 250*time.Millisecond {
		t.Errorf("Duration: got %v", got)
	}
	r.Duration("BAD_D", time.Second, "d")
	if !r.Bool("B", false, "b") {
		t.Error("Bool: got false")
	}
	if got := r.List("L", "", "l"); strings.Join(got, "|") != "a|b" {
		t.Errorf("List: got %q", got)
	}
	if got := r.Secret("S", "", "s"); got != "hunter2" {
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
			if got := r.Secret("S", "def", "s"); got != tt.want {
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

// TestDeclarations: every read declares its variable once, with its default
// and meaning; -help and -env-list print them, never a secret's value.
func TestDeclarations(t *testing.T) {
	env := map[string]string{"SECRET_KEY": "hunter2", "ADDR": ":9"}
	r := New(func(k string) string { return env[k] })
	r.String("ADDR", ":8080", "listen address")
	r.Secret("SECRET_KEY", "", "the key")
	r.Int("N", 3, 1, 9, "how many")
	r.Duration("WAIT", 2*time.Second, "how long")
	r.Bool("ON", true, "whether")
	r.List("ITEMS", "a,b", "which")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	var got []Var
	var js strings.Builder
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(js.String()), &got); err != nil {
		t.Fatalf("env list is not JSON: %v\n%s", err, js.String())
	}
	want := []Var{
		{Name: "ADDR", Type: "string", Default: ":8080", Help: "listen address"},
		{Name: "SECRET_KEY", Type: "secret", Help: "the key", File: "SECRET_KEY_FILE"},
		{Name: "N", Type: "int", Default: "3", Help: "how many (1 to 9)"},
		{Name: "WAIT", Type: "duration", Default: "2s", Help: "how long"},
		{Name: "ON", Type: "bool", Default: "true", Help: "whether"},
		{Name: "ITEMS", Type: "list", Default: "a,b", Help: "which"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("var %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	var help strings.Builder
	if err := r.WriteHelp(&help, "svc"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ADDR", ":8080", "listen address", "SECRET_KEY", "(secret)", "ITEMS", "a,b"} {
		if !strings.Contains(help.String(), s) {
			t.Errorf("help lacks %q:\n%s", s, help.String())
		}
	}
	if strings.Contains(help.String()+js.String(), "hunter2") {
		t.Error("a secret's value is printed")
	}
	// A variable read twice is a declaration error.
	r.String("ADDR", ":1", "again")
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "ADDR: read twice") {
		t.Errorf("second read of ADDR: got %v, want an error", err)
	}
}
