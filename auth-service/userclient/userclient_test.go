package userclient

import (
	"io"
	"log/slog"
	"testing"
)

// USER_SERVICE_URL takes the upstream grammar, the same as the gateway's
// and the load balancer's upstream variables.
func TestNewTakesTheUpstreamGrammar(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, specs := range [][]string{
		{"http://127.0.0.1:8101"},
		{"http://127.0.0.1:8101/", "https://user-service:8101"},
		{"dns+http://localhost:8101"},
	} {
		if _, err := New(specs, logger); err != nil {
			t.Errorf("New(%q): %v, want it accepted", specs, err)
		}
	}
	for _, specs := range [][]string{
		{"127.0.0.1:8101"},
		{"ftp://127.0.0.1:8101"},
		{"http://127.0.0.1:8101/internal"},
		{"http://user:pw@127.0.0.1:8101"},
		{"http://127.0.0.1:99999"},
		{"dns+ftp://localhost:8101"},
		{"http://127.0.0.1:8101", "nonsense"},
	} {
		if _, err := New(specs, logger); err == nil {
			t.Errorf("New(%q): accepted, want an error", specs)
		}
	}
}
