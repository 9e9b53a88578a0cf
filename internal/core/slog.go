package core

import (
	"fmt"
	"log/slog"
)

// SlogLogger adapts a *slog.Logger to Logger: each warning is one record
// at slog.LevelWarn. The Echo v5 front end and renderer adopt Echo v5's
// logger through it (AdoptLogger keeps it only if it is enabled at WARN).
func SlogLogger(l *slog.Logger) Logger { return slogLogger{l} }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Warnf(format string, args ...any) { s.l.Warn(fmt.Sprintf(format, args...)) }
