// Package validation is the error a service's domain returns for input that
// breaks one of its rules. It names the field at fault and knows nothing of
// HTTP: platform/apierr sends it as a 400 validation_failed naming the field.
package validation

import "fmt"

// Error names the input field at fault ("" for the input as a whole).
type Error struct {
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Field + ": " + e.Message }

// Errorf returns an *Error for field with a formatted message.
func Errorf(field, format string, args ...any) error {
	return &Error{Field: field, Message: fmt.Sprintf(format, args...)}
}
