package service

import (
	"log/slog"
	"os"
	"strings"
	"time"

	"titanium/platform/envconfig"
)

// Config is the part of every service's configuration that the platform owns.
type Config struct {
	// Addr is the listen address (LISTEN_ADDR), e.g. ":8080" or "127.0.0.1:8080".
	Addr string
	// Instance names this process in /stats (INSTANCE_ID, default host:port).
	Instance string
	// ShutdownDelay is how long readiness fails before the server stops
	// accepting (SHUTDOWN_DELAY): time for a load balancer or Kubernetes to
	// stop sending new requests (kubernetes#67592).
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// Server timeouts, the seed's values by default.
	ReadHeaderTimeout time.Duration
	// ReadTimeout (READ_TIMEOUT) bounds a whole request, head and body: without it a
	// client that declares a body and stalls holds a goroutine (and, through
	// a proxy, an upstream connection at each hop) for as long as it likes.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// PprofAddr, when set (PPROF_ADDR, e.g. 127.0.0.1:6060), serves
	// net/http/pprof on its own listener, never on the service's port.
	PprofAddr string
	// MaxHeaderBytes caps request headers; larger ones get 431.
	MaxHeaderBytes int
	// RawSocketIO (RAW_SOCKET_IO) makes the process's TCP connections read
	// and write with raw system calls (platform/sockio).
	RawSocketIO bool
}

// LoadConfig reads the platform's variables with defaultAddr as LISTEN_ADDR's default.
func LoadConfig(env *envconfig.Reader, defaultAddr string) Config {
	c := Config{
		Addr:              env.String("LISTEN_ADDR", defaultAddr, "listen address, host:port or :port"),
		ShutdownDelay:     env.Duration("SHUTDOWN_DELAY", 0, "how long /readyz fails before the listener closes on SIGTERM"),
		ShutdownTimeout:   env.Duration("SHUTDOWN_TIMEOUT", 15*time.Second, "how long in-flight requests may take to finish on SIGTERM"),
		PprofAddr:         env.String("PPROF_ADDR", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); empty: off"),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       env.Duration("READ_TIMEOUT", 10*time.Second, "deadline for reading a whole request, head and body"),
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		RawSocketIO:       env.Bool("RAW_SOCKET_IO", true, "on Linux, read and write TCP sockets with raw system calls, without the Go runtime's hand-off per call (cheaper under load); false: the runtime's own calls"),
	}
	host, _ := os.Hostname()
	c.Instance = env.String("INSTANCE_ID", "", "this process's name in /stats; empty: the host name")
	if c.Instance == "" {
		c.Instance = host
	}
	return c
}

// logLevel reads LOG_LEVEL: debug, info (default), warn or error.
func logLevel(env *envconfig.Reader) slog.Level {
	switch strings.ToLower(env.String("LOG_LEVEL", "info", "debug, info, warn or error")) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	env.Check(false, "LOG_LEVEL", "want debug, info, warn or error")
	return slog.LevelInfo
}
