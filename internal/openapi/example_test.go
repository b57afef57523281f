package openapi_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/koobridge/koobridge/internal/openapi"
)

// A license code is activated once; an answer saying it is already active
// (for instance when an earlier answer was lost) is followed by a query
// for its state.
func ExampleClient_ActivateLicense() {
	c, err := openapi.New(openapi.Config{AK: os.Getenv("HUAWEICLOUD_AK"), SK: os.Getenv("HUAWEICLOUD_SK")})
	if err != nil {
		slog.Error("open API client", "err", err)
		return
	}
	ctx := context.Background()
	const code = "PL0000000001"
	info, err := c.ActivateLicense(ctx, code, time.Now())
	switch {
	case err == nil:
		slog.Info("activated", "license", code, "status", info.Status, "estimatedExpiry", info.ExpireTime)
	case errors.Is(err, openapi.ErrLicenseIllegalState), errors.Is(err, openapi.ErrIncompleteAnswer):
		state, err := c.QueryLicense(ctx, code)
		if err != nil {
			slog.Error("query license", "license", code, "err", err, "retryable", openapi.Retryable(err))
			return
		}
		slog.Info("license state", "license", code, "status", state.Status, "expiry", state.ExpireTime)
	case openapi.Retryable(err):
		slog.Warn("activate later", "license", code, "err", err)
	default:
		slog.Error("activate license", "license", code, "err", err)
	}
}
