package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// logAccess writes one JSON access record. The user key is never logged:
// only its salted hash.
func (p *Proxy) logAccess(r *http.Request, x *exchange, status int) {
	if p.accessLog == nil {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.reqID),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("service", x.svc.Name),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(x.start).Microseconds())/1000),
		slog.Int64("bytes", x.bytesOut),
		slog.String("user", strconv.FormatUint(x.decision.Hash, 16)),
		slog.String("why", x.decision.Reason.String()),
	}
	if x.build != nil {
		attrs = append(attrs, slog.String("build", x.build.ID), slog.String("state", x.build.State))
	}
	if x.endpoint != "" {
		attrs = append(attrs, slog.String("endpoint", x.endpoint))
	}
	if x.canary != nil {
		attrs = append(attrs, slog.String("why", "fallback"), slog.String("failed_build", x.canary.ID))
	}
	if x.attempts > 1 {
		attrs = append(attrs, slog.Int("attempts", x.attempts))
	}
	if x.errKind != "" {
		attrs = append(attrs, slog.String("error", x.errKind))
	}
	p.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}
