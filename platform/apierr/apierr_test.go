package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"titanium/platform/jwtauth"
	"titanium/platform/validation"
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

// TestCodeForIsTheInverse: every status of the table maps back to a code
// with that status, the first listed where codes share one.
func TestCodeForIsTheInverse(t *testing.T) {
	for _, cs := range codeStatuses {
		if got := CodeFor(cs.status); StatusOf(got) != cs.status {
			t.Errorf("CodeFor(%d) = %s, whose status is %d", cs.status, got, StatusOf(got))
		}
	}
	for status, want := range map[int]string{
		400: CodeBadRequest, 409: CodeConflict, 415: CodeUnsupportedMedia, 418: CodeBadRequest,
		499: CodeClientClosed, 500: CodeInternal, 501: CodeInternal,
	} {
		if got := CodeFor(status); got != want {
			t.Errorf("CodeFor(%d) = %s, want %s", status, got, want)
		}
	}
}

func TestRespondSendsContentLength(t *testing.T) {
	rec := httptest.NewRecorder()
	Respond(rec, http.StatusCreated, map[string]string{"a": "<b>"})
	if rec.Code != http.StatusCreated || rec.Body.String() != "{\"a\":\"\\u003cb\\u003e\"}\n" {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
	if cl := rec.Header().Get("Content-Length"); cl != fmt.Sprint(rec.Body.Len()) {
		t.Errorf("Content-Length %q for %d bytes", cl, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	Respond(rec, http.StatusOK, map[string]any{"f": func() {}})
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), CodeInternal) {
		t.Errorf("unencodable body: got %d %s, want a JSON 500", rec.Code, rec.Body)
	}
}

var errDomain = errors.New("no such widget")

func TestWriterMapsThroughTheServiceHook(t *testing.T) {
	x := Writer{Map: func(err error) *Error {
		if errors.Is(err, errDomain) {
			return Errorf(CodeNotFound, "widget not found").WithHeader("X-Widget", "none")
		}
		return nil
	}}
	h := x.Handler(func(w http.ResponseWriter, r *http.Request) error {
		switch r.URL.Path {
		case "/domain":
			return fmt.Errorf("lookup: %w", errDomain)
		case "/token":
			return fmt.Errorf("auth: %w", jwtauth.ErrInvalidToken)
		case "/notoken":
			return jwtauth.ErrNoToken
		case "/invalid":
			return fmt.Errorf("register: %w", validation.Errorf("email", "email must contain @"))
		}
		return errors.New("boom")
	})
	for _, tt := range []struct {
		path, code, header, value string
	}{
		{"/domain", CodeNotFound, "X-Widget", "none"},
		{"/token", CodeUnauthorized, "WWW-Authenticate", `Bearer realm="titanium", error="invalid_token"`},
		{"/notoken", CodeUnauthorized, "WWW-Authenticate", `Bearer realm="titanium"`},
		{"/invalid", CodeValidation, "", ""},
		{"/other", CodeInternal, "", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["code"] != tt.code || rec.Code != StatusOf(tt.code) {
			t.Errorf("%s: got %d %s, want code %s", tt.path, rec.Code, rec.Body, tt.code)
		}
		if tt.code == CodeValidation && (body["field"] != "email" || body["error"] != "email must contain @") {
			t.Errorf("%s: got %s, want the field and message of the validation error", tt.path, rec.Body)
		}
		if tt.header != "" && rec.Header().Get(tt.header) != tt.value {
			t.Errorf("%s: %s = %q, want %q", tt.path, tt.header, rec.Header().Get(tt.header), tt.value)
		}
	}
}
