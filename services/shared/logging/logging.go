// Package logging builds the services' slog loggers: JSON lines on stderr by
// default (FETCHMESH_LOG_FORMAT=text for people), level from
// FETCHMESH_LOG_LEVEL (debug, info, warn, error).
package logging

import (
	"log/slog"
	"os"
	"strings"
)

// New returns the logger of one service, with the service name on every line.
func New(service string) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("FETCHMESH_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.EqualFold(os.Getenv("FETCHMESH_LOG_FORMAT"), "text") {
		h = slog.NewTextHandler(os.Stderr, opts)
	} else {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	l := slog.New(traceHandler{h}).With("service", service)
	slog.SetDefault(l)
	return l
}
