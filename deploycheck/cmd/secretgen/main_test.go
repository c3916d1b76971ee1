package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestEnsureMakesOnceAndKeeps(t *testing.T) {
	dir := t.TempDir()
	made, err := ensure(dir, "jwt-secret")
	if err != nil || !made {
		t.Fatalf("first ensure: made=%v err=%v, want made", made, err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "jwt-secret"))
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(first) {
		t.Errorf("secret %q: want 64 hex digits and a newline", first)
	}
	info, _ := os.Stat(filepath.Join(dir, "jwt-secret"))
	if got := info.Mode().Perm(); got != 0o400 {
		t.Errorf("mode: got %v, want 0400", got)
	}
	made, err = ensure(dir, "jwt-secret")
	if err != nil || made {
		t.Fatalf("second ensure: made=%v err=%v, want kept", made, err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "jwt-secret")); string(again) != string(first) {
		t.Errorf("secret replaced on the second run")
	}
	other, _ := ensure(dir, "redis-password")
	b, _ := os.ReadFile(filepath.Join(dir, "redis-password"))
	if !other || string(b) == string(first) {
		t.Errorf("a second name must get its own secret")
	}
}

func TestEnsureRejectsPaths(t *testing.T) {
	for _, name := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := ensure(t.TempDir(), name); err == nil {
			t.Errorf("ensure(%q): want an error", name)
		}
	}
}
