package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type payload struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		wantCode    string
		wantField   string
	}{
		{"ok", `{"name":"a","age":3}`, "application/json", "", ""},
		{"ok with charset", `{"name":"a"}`, "application/json; charset=utf-8", "", ""},
		{"no content type", `{"name":"a"}`, "", "", ""},
		{"malformed", `{"name":`, "application/json", CodeInvalidJSON, ""},
		{"syntax", `{"name" "a"}`, "application/json", CodeInvalidJSON, ""},
		{"empty", ``, "application/json", CodeInvalidJSON, ""},
		{"array", `[1,2]`, "application/json", CodeInvalidJSON, ""},
		{"wrong type", `{"age":"old"}`, "application/json", CodeValidation, "age"},
		{"unknown field", `{"name":"a","admin":true}`, "application/json", CodeValidation, "admin"},
		{"trailing data", `{"name":"a"}{"name":"b"}`, "application/json", CodeInvalidJSON, ""},
		{"too large", `{"name":"` + strings.Repeat("x", 2000) + `"}`, "application/json", CodePayloadTooLarge, ""},
		{"wrong media type", `name=a`, "application/x-www-form-urlencoded", CodeUnsupportedMedia, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var p payload
			err := DecodeJSON(httptest.NewRecorder(), r, 1024, &p)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Errorf("got code %q field %q, want %q %q", e.Code, e.Field, tt.wantCode, tt.wantField)
			}
			if s := e.Status(); s < 400 || s > 499 {
				t.Errorf("status %d, want 4xx", s)
			}
		})
	}
}

func TestWriteHidesInternalErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	Write(rec, r, nil, fmt.Errorf("query users: %w", errors.New("disk I/O error at /var/lib/secret")))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status: got %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("internal detail leaked: %s", rec.Body)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["code"] != CodeInternal || body["error"] == "" {
		t.Errorf("body: got %s, want {error, code: internal}", rec.Body)
	}
}

func TestWriteApplicationError(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), nil, fmt.Errorf("wrapped: %w", Invalid("email", "must contain @")))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status: got %d, want 400", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type: got %q", ct)
	}
	var body Error
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Field != "email" || body.Code != CodeValidation {
		t.Errorf("body: got %+v", body)
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for code, status := range statusByCode {
		if status < 400 || status > 599 {
			t.Errorf("%s maps to %d", code, status)
		}
	}
	if StatusOf("nonsense") != http.StatusInternalServerError {
		t.Errorf("unknown codes must be 500")
	}
}
