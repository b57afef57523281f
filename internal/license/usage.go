package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// Bounds of one usage push.
const (
	// maxUsageCodes is the most codes one software-usage-info request
	// carries (§A.8.3: usage_info holds at most 100 entries).
	maxUsageCodes = 100
	// usagePage is how many unreported devices are read at a time (the
	// store's most).
	usagePage = 1000
	// maxUsageRequests bounds the requests of one job; what is left is
	// pushed by the next interval's job.
	maxUsageRequests = 1000
	// enqueueRetry is the wait before Run tries again to enqueue a job the
	// store refused.
	enqueueRetry = time.Minute
)

// Run enqueues the usage statistics job of every UsageInterval, at the
// start of each interval, until ctx is done. The job's unique key is the
// interval's start, so replicas running Run at once push once. Without an
// Open API client it returns at once.
func (s *Service) Run(ctx context.Context) {
	if s.api == nil {
		s.log.WarnContext(ctx, "license: no Open API client: software usage statistics are not pushed")
		return
	}
	jobs.Every(ctx, s.usageInterval, enqueueRetry, s.now, s.enqueueUsage, func(start time.Time, err error) {
		s.log.WarnContext(ctx, "license: enqueue the usage statistics job", "interval", start, "err", err)
	})
}

// enqueueUsage enqueues the usage job of the interval starting at start,
// unless one is there.
func (s *Service) enqueueUsage(ctx context.Context, start time.Time) error {
	key := KindUsage + ":" + strconv.FormatInt(start.Unix(), 10)
	var inserted bool
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		_, inserted, err = tx.EnqueueJob(ctx, store.Job{
			Kind: KindUsage, UniqueKey: key, Payload: []byte("{}"), MaxAttempts: jobs.DefaultMaxAttempts, RunAt: s.now().UTC(),
		})
		return err
	})
	if err != nil {
		return err
	}
	if inserted {
		s.jobs.Kick()
	}
	return nil
}

// handleUsage is the usage job: it reports every device of a real code
// seen since its last report, grouped by code (one entry per code, one id
// per device: the device's hash), at most 100 codes per request, and
// marks them reported once KooGallery accepted. An outage is retried by
// the runner; the gateway refusing koobridge (AK/SK, IAM rights) kills
// the job, the devices staying unreported for the next interval's job.
// KooGallery refusing a request as a whole (its content: an invalid
// parameter, a code it does not take) marks that request's devices
// reported all the same, with a warning, and goes on: sent again it would
// be refused again, and, the store listing devices by code, it would
// block every code after it for good.
func (s *Service) handleUsage(ctx context.Context, job store.Job) error {
	if s.api == nil {
		return jobs.Permanent(errors.New("license: usage statistics: no Open API client is configured"))
	}
	for range maxUsageRequests {
		at := s.now().UTC()
		devices, err := s.store.UnreportedLicenseDevices(ctx, usagePage)
		if err != nil {
			return fmt.Errorf("license: usage statistics: read devices: %w", err)
		}
		req, sent := usageRequest(devices, len(devices) >= usagePage)
		if len(sent) == 0 {
			return nil
		}
		resp, pushErr := s.api.ReportSoftwareUsage(ctx, req)
		var refusal *openapi.Error
		switch {
		case pushErr == nil:
		case openapi.Retryable(pushErr):
			return fmt.Errorf("license: usage statistics of %d codes: %w", len(req.UsageInfo), pushErr)
		case gatewayRefused(pushErr) || !errors.As(pushErr, &refusal):
			return jobs.Permanent(fmt.Errorf("license: usage statistics of %d codes: %w", len(req.UsageInfo), pushErr))
		default:
			s.log.WarnContext(ctx, "license: usage statistics: KooGallery refused a request as a whole; its devices are marked reported and not sent again",
				"codes", len(req.UsageInfo), "devices", len(sent), "err", pushErr)
		}
		if len(resp.Data) > 0 {
			// The entries KooGallery's check refused (UNCONFIRMED shape):
			// kept in the log, not retried, since sending them again
			// would be refused again.
			b, _ := json.Marshal(resp.Data)
			s.log.WarnContext(ctx, "license: usage statistics: KooGallery listed entries it refused", "data", string(b))
		}
		if err := s.store.MarkLicenseDevicesReported(ctx, sent, at); err != nil {
			return fmt.Errorf("license: usage statistics: mark %d devices reported: %w", len(sent), err)
		}
		if pushErr == nil {
			s.log.InfoContext(ctx, "license: usage statistics pushed", "codes", len(req.UsageInfo), "devices", len(sent))
		}
		if len(devices) < usagePage && len(sent) == len(devices) {
			return nil // all there was; otherwise the rest follows
		}
	}
	return nil
}

// usageRequest builds one software-usage-info request from devices (as
// the store lists them, by code): the first 100 codes with their devices.
// When the page was full (more may follow), the last code's devices may
// be cut, so that code waits for the next request, unless it is the only
// one. Debug codes are left out. sent are the devices the request
// reports.
func usageRequest(devices []store.LicenseDevice, full bool) (protocol.SoftwareUsageInfoRequest, []store.LicenseDevice) {
	type group struct {
		code    string
		devices []store.LicenseDevice
	}
	var groups []group
	index := map[string]int{}
	for _, d := range devices {
		if d.Test {
			continue
		}
		i, ok := index[d.Code]
		if !ok {
			i = len(groups)
			index[d.Code] = i
			groups = append(groups, group{code: d.Code})
		}
		groups[i].devices = append(groups[i].devices, d)
	}
	switch {
	case len(groups) > maxUsageCodes:
		groups = groups[:maxUsageCodes]
	case full && len(groups) > 1:
		groups = groups[:len(groups)-1]
	}
	var req protocol.SoftwareUsageInfoRequest
	var sent []store.LicenseDevice
	for _, g := range groups {
		e := protocol.SoftwareUsageEntry{License: g.code}
		for _, d := range g.devices {
			e.SoftwareUsageInfo = append(e.SoftwareUsageInfo, protocol.SoftwareUsageItem{ID: d.Device})
		}
		req.UsageInfo = append(req.UsageInfo, e)
		sent = append(sent, g.devices...)
	}
	return req, sent
}

// gatewayRefused reports whether err is the API gateway refusing
// koobridge itself (the AK/SK signature, the IAM user's rights, any
// APIGW code) rather than KooGallery refusing what was asked: a problem
// of koobridge's settings, not of a license code.
func gatewayRefused(err error) bool {
	if errors.Is(err, openapi.ErrAuthentication) || errors.Is(err, openapi.ErrNotAuthorized) {
		return true
	}
	var e *openapi.Error
	if !errors.As(err, &e) {
		return false
	}
	code := strings.TrimSpace(e.Code)
	return strings.HasPrefix(code, "APIGW.") || strings.HasPrefix(code, "APIG.")
}
