// Package apierr is the one place where application errors become HTTP
// responses, and where JSON responses are written (Respond). Handlers return
// an error to a service's Writer, whose hook maps the service's domain errors
// to an *Error carrying an application code; a single table maps codes to
// statuses, and internal error text is logged, never sent to the client.
package apierr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"titanium/platform/jwtauth"
	"titanium/platform/validation"
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

// codeStatuses pairs every code with its HTTP status. Where several codes
// share a status, the first listed is the status's own code (CodeFor).
var codeStatuses = []struct {
	code   string
	status int
}{
	{CodeBadRequest, http.StatusBadRequest},
	{CodeInvalidJSON, http.StatusBadRequest},
	{CodeValidation, http.StatusBadRequest},
	{CodeUnauthorized, http.StatusUnauthorized},
	{CodeForbidden, http.StatusForbidden},
	{CodeNotFound, http.StatusNotFound},
	{CodeMethodNotAllowed, http.StatusMethodNotAllowed},
	{CodeConflict, http.StatusConflict},
	{CodePayloadTooLarge, http.StatusRequestEntityTooLarge},
	{CodeUnsupportedMedia, http.StatusUnsupportedMediaType},
	{CodeRateLimited, http.StatusTooManyRequests},
	{CodeClientClosed, StatusClientClosedRequest},
	{CodeInternal, http.StatusInternalServerError},
	{CodeBadGateway, http.StatusBadGateway},
	{CodeUnavailable, http.StatusServiceUnavailable},
	{CodeGatewayTimeout, http.StatusGatewayTimeout},
	{CodeRequestHeaderFields, http.StatusRequestHeaderFieldsTooLarge},
}

// statusByCode and codeForStatus are the table above and its inverse.
var statusByCode, codeForStatus = func() (map[string]int, map[int]string) {
	byCode := make(map[string]int, len(codeStatuses))
	byStatus := make(map[int]string, len(codeStatuses))
	for _, cs := range codeStatuses {
		byCode[cs.code] = cs.status
		if _, ok := byStatus[cs.status]; !ok {
			byStatus[cs.status] = cs.code
		}
	}
	return byCode, byStatus
}()

// CodeFor is the code of an error answered with status alone (net/http's
// own errors): the status's first code in the table, else bad_request for
// a 4xx and internal for a 5xx.
func CodeFor(status int) string {
	if c, ok := codeForStatus[status]; ok {
		return c
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}

// Error is an application error with a code safe to show to clients.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
	// Field names the offending input field for validation errors.
	Field string `json:"field,omitempty"`
	// Header holds response headers that go with the error (Retry-After,
	// WWW-Authenticate); Write sets them.
	Header http.Header `json:"-"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Status is the HTTP status for the error's code.
func (e *Error) Status() int { return StatusOf(e.Code) }

// WithHeader sets a response header that goes with e, and returns e.
func (e *Error) WithHeader(key, value string) *Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(key, value)
	return e
}

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

// Unauthorized is every service's one answer to a request whose bearer
// token is missing or not valid (err from jwtauth: ErrNoToken or
// ErrInvalidToken): 401 unauthorized with one message that never says
// what was wrong, and the RFC 6750 challenge, which adds
// error="invalid_token" when a token was sent.
func Unauthorized(err error) *Error {
	challenge := `Bearer realm="titanium"`
	if !errors.Is(err, jwtauth.ErrNoToken) {
		challenge += `, error="invalid_token"`
	}
	return Errorf(CodeUnauthorized, "a valid bearer token is required").WithHeader("WWW-Authenticate", challenge)
}

// Code extracts the application code from err; errors that are not *Error
// are internal.
func Code(err error) string {
	return asError(err).Code
}

// asError is the *Error sent for err: an *Error as is, a domain's
// validation error as Invalid, a jwtauth error as Unauthorized, a
// cancelled request as 499, anything else as a generic 500.
func asError(err error) *Error {
	var (
		e  *Error
		ve *validation.Error
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &ve):
		return Invalid(ve.Field, "%s", ve.Message)
	case errors.Is(err, jwtauth.ErrNoToken), errors.Is(err, jwtauth.ErrInvalidToken):
		return Unauthorized(err)
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeClientClosed, Message: "client closed request"}
	default:
		return &Error{Code: CodeInternal, Message: "internal server error"}
	}
}

// Write sends err as a JSON error response with the headers it carries. An
// *Error is sent as is; a *validation.Error is a 400 naming its field; a
// missing or bad bearer token is Unauthorized; any
// other error is logged with the request and answered with a generic 500,
// so that internal details never reach the client.
func Write(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	e := asError(err)
	if e.Code == CodeInternal && logger != nil && !errors.As(err, new(*Error)) {
		logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	Respond(w, e.Status(), e)
}

// WriteCode sends a JSON error with the given code and message.
func WriteCode(w http.ResponseWriter, code, message string) {
	Respond(w, StatusOf(code), &Error{Code: code, Message: message})
}

// Writer is one service's error writer: Map, the service's hook, turns its
// domain errors into *Error (nil for an error it does not know), and Write
// sends the result. Handlers return their error to it (Handler).
type Writer struct {
	Map    func(err error) *Error
	Logger *slog.Logger
}

// Error sends err, mapped by the service's hook.
func (x Writer) Error(w http.ResponseWriter, r *http.Request, err error) {
	if x.Map != nil {
		if e := x.Map(err); e != nil {
			err = e
		}
	}
	Write(w, r, x.Logger, err)
}

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler adapts h to http.Handler: an error h returns is sent with Error.
func (x Writer) Handler(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			x.Error(w, r, err)
		}
	})
}

// bodyBuffers are reused response buffers. One that grew past
// maxPooledBody (a page of long posts) is dropped rather than kept.
var bodyBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBody = 256 << 10

// Respond sends v, encoded as JSON by encoding/json, as the response body
// with status (see RespondFunc).
func Respond(w http.ResponseWriter, status int, v any) {
	RespondFunc(w, status, func(b []byte) ([]byte, error) {
		buf := bytes.NewBuffer(b)
		err := json.NewEncoder(buf).Encode(v)
		return buf.Bytes(), err
	})
}

// RespondFunc sends the JSON body that appendBody appends to a reused
// buffer, with status. The body is complete before anything is written, so
// that an encoding error can still become a clean JSON 500, and it is sent
// with its Content-Length.
//
// The Content-Length matters beyond the service: without one, a body past
// net/http's 2 KiB buffer goes out chunked, and httputil.ReverseProxy in
// the gateway and the load balancer treats a response of unknown length as
// a stream and flushes after every read from its upstream: a write syscall
// per piece per hop.
func RespondFunc(w http.ResponseWriter, status int, appendBody func(b []byte) ([]byte, error)) {
	bp := bodyBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBody {
			bodyBuffers.Put(bp)
		}
	}()
	b, err := appendBody((*bp)[:0])
	if err != nil {
		slog.Default().Error("encode response body", "err", err)
		status = http.StatusInternalServerError
		b = append(b[:0], `{"code":"internal","error":"internal server error"}`+"\n"...)
	}
	*bp = b
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
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

// PathID is the positive integer in the request's {id} path segment. Any
// other segment names no resource: the answer is notFound (the domain's
// not-found error), as for an id nobody has, on every API alike.
func PathID(r *http.Request, notFound error) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, notFound
	}
	return id, nil
}
