// Package apierr is the one place where application errors become HTTP
// responses. Handlers return (or pass to Write) an *Error carrying an
// application code; a single table maps codes to statuses, and internal error
// text is logged, never sent to the client.
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Application error codes. They are part of the public API: clients may
// switch on them, so they never change meaning.
const (
	CodeBadRequest          = "bad_request"
	CodeInvalidJSON         = "invalid_json"
	CodeValidation          = "validation_failed"
	CodeUnauthorized        = "unauthorized"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeConflict            = "conflict"
	CodePayloadTooLarge     = "payload_too_large"
	CodeUnsupportedMedia    = "unsupported_media_type"
	CodeRateLimited         = "rate_limited"
	CodeClientClosed        = "client_closed_request"
	CodeInternal            = "internal"
	CodeBadGateway          = "bad_gateway"
	CodeUnavailable         = "service_unavailable"
	CodeGatewayTimeout      = "gateway_timeout"
	CodeRequestHeaderFields = "request_header_fields_too_large"
)

// StatusClientClosedRequest is nginx's non-standard 499: the client went away
// before the response was written. It is not a server failure.
const StatusClientClosedRequest = 499

var statusByCode = map[string]int{
	CodeBadRequest:          http.StatusBadRequest,
	CodeInvalidJSON:         http.StatusBadRequest,
	CodeValidation:          http.StatusBadRequest,
	CodeUnauthorized:        http.StatusUnauthorized,
	CodeForbidden:           http.StatusForbidden,
	CodeNotFound:            http.StatusNotFound,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeConflict:            http.StatusConflict,
	CodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeClientClosed:        StatusClientClosedRequest,
	CodeInternal:            http.StatusInternalServerError,
	CodeBadGateway:          http.StatusBadGateway,
	CodeUnavailable:         http.StatusServiceUnavailable,
	CodeGatewayTimeout:      http.StatusGatewayTimeout,
	CodeRequestHeaderFields: http.StatusRequestHeaderFieldsTooLarge,
}

// Error is an application error with a code safe to show to clients.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
	// Field names the offending input field for validation errors.
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Status is the HTTP status for the error's code.
func (e *Error) Status() int { return StatusOf(e.Code) }

// StatusOf maps an application code to its HTTP status; unknown codes are 500.
func StatusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error naming the field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeValidation, Message: fmt.Sprintf(format, args...), Field: field}
}

// Code extracts the application code from err; errors that are not *Error
// are internal.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.Canceled) {
		return CodeClientClosed
	}
	return CodeInternal
}

// Write sends err as a JSON error response. An *Error is sent as is; any other
// error is logged with the request and answered with a generic 500, so that
// internal details never reach the client.
func Write(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		code := Code(err)
		if code == CodeInternal && logger != nil {
			logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		e = &Error{Code: code, Message: defaultMessage(code)}
	}
	WriteJSON(w, e.Status(), e)
}

// WriteCode sends a JSON error with the given code and message.
func WriteCode(w http.ResponseWriter, code, message string) {
	WriteJSON(w, StatusOf(code), &Error{Code: code, Message: message})
}

func defaultMessage(code string) string {
	switch code {
	case CodeClientClosed:
		return "client closed request"
	default:
		return "internal server error"
	}
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DefaultMaxBody is the request body cap used when a handler gives none.
const DefaultMaxBody = 1 << 20

// DecodeJSON strictly decodes one JSON object from the request body into dst:
// the body is capped at maxBytes (413 beyond), unknown fields and trailing
// data are rejected, and type errors name the field. The returned error is
// always an *Error suitable for Write.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, dst any) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt := strings.TrimSpace(strings.ToLower(strings.SplitN(ct, ";", 2)[0]))
		if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return Errorf(CodeUnsupportedMedia, "Content-Type must be application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err, maxBytes)
		}
		return Errorf(CodeInvalidJSON, "request body must contain a single JSON object")
	}
	return nil
}

func decodeError(err error, maxBytes int64) *Error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		return Errorf(CodePayloadTooLarge, "request body exceeds %d bytes", maxBytes)
	case errors.As(err, &syntaxErr):
		return Errorf(CodeInvalidJSON, "malformed JSON at offset %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(CodeInvalidJSON, "malformed JSON: unexpected end of body")
	case errors.Is(err, io.EOF):
		return Errorf(CodeInvalidJSON, "request body is empty")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return Errorf(CodeInvalidJSON, "request body must be a JSON object")
		}
		return &Error{Code: CodeValidation, Message: fmt.Sprintf("field %q must be a %s", field, typeErr.Type), Field: field}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Code: CodeValidation, Message: fmt.Sprintf("unknown field %q", field), Field: field}
	default:
		return Errorf(CodeInvalidJSON, "invalid JSON body")
	}
}
