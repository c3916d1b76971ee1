package password

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"titanium/user-service/users"
)

func TestHashAndVerify(t *testing.T) {
	h, err := New(bcrypt.MinCost, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"right password", hash, "correct horse", true},
		{"wrong password", hash, "correct horsf", false},
		{"dummy hash never matches", "", "correct horse", false},
		{"over 72 bytes never matches", hash, "correct horse" + strings.Repeat("x", 80), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(ctx, tt.hash, tt.password)
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestTooLongIsRefusedNotTruncated(t *testing.T) {
	h, err := New(bcrypt.MinCost, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hash(context.Background(), strings.Repeat("a", 73)); !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		t.Errorf("73 bytes: got %v, want ErrPasswordTooLong", err)
	}
	if _, err := h.Hash(context.Background(), strings.Repeat("a", 72)); err != nil {
		t.Errorf("72 bytes: %v", err)
	}
}

func TestSaturation(t *testing.T) {
	h, err := New(bcrypt.MinCost, 1, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	release, err := h.acquire(context.Background()) // all slots busy
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hash(context.Background(), "password1"); !errors.Is(err, users.ErrOverloaded) {
		t.Errorf("saturated: got %v, want ErrOverloaded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Verify(ctx, "", "password1"); !errors.Is(err, context.Canceled) {
		t.Errorf("client gone while waiting: got %v, want context.Canceled", err)
	}
	release()
	if _, err := h.Hash(context.Background(), "password1"); err != nil {
		t.Errorf("slot free again: %v", err)
	}
}

func TestCostBounds(t *testing.T) {
	if _, err := New(bcrypt.MaxCost+1, 1, time.Second); err == nil {
		t.Error("cost above bcrypt's max accepted")
	}
}
