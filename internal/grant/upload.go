package grant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
)

// Uploader uploads the license of an online-license event to KooGallery
// (license-openapi.md §C.7); *openapi.Client implements it. An error is
// retried when openapi.Retryable says so, or when the API gateway refused
// the seller's credentials (an operator can fix them); any other error is
// a refusal of this upload.
type Uploader interface {
	UploadLicense(ctx context.Context, eventID string, f openapi.LicenseUpload) error
}

// Outcomes of an upload attempt (store.LicenseUpload.Outcome).
const (
	OutcomeAccepted = "accepted"
	OutcomeRetry    = "retry"
	OutcomeRefused  = "refused"
)

// handleUpload is the upload job of an online grant. It reads the grant
// and its recorded attempts first: a grant uploaded already, or one whose
// acceptance was recorded by an earlier run that died before marking the
// grant, is never uploaded again. Every attempt is recorded; a refusal
// fails the grant (an operator's Retry re-runs it), anything else is
// retried by the runner with backoff.
func (s *Service) handleUpload(ctx context.Context, job store.Job) error {
	g, err := s.loadForJob(ctx, job)
	if err != nil {
		return err
	}
	if g.State != store.GrantGenerated {
		return nil // uploaded, or failed and waiting for an operator
	}
	attempts, err := s.store.LicenseUploads(ctx, g.ID)
	if err != nil {
		return fmt.Errorf("grant: upload %d: read its attempts: %w", g.ID, err)
	}
	for _, a := range attempts {
		if a.Outcome == OutcomeAccepted {
			return s.markUploaded(ctx, g.ID, a)
		}
	}
	f, err := s.License(g)
	if err != nil {
		return jobs.Permanent(fmt.Errorf("grant: upload: %w", err))
	}
	upErr := s.uploader.UploadLicense(ctx, g.EventID, openapi.LicenseUpload{Characters: f.Characters, FileName: f.FileName, Content: f.Content})
	a := attempt(g.ID, upErr)
	a.At = s.now().UTC()
	id, err := s.store.InsertLicenseUpload(ctx, a)
	if err != nil {
		// The attempt's outcome is known but not kept: the grant itself
		// still records it below.
		s.log.WarnContext(ctx, "grant: record an upload attempt", "grant", g.ID, "outcome", a.Outcome, "err", err)
	}
	a.ID = id
	switch a.Outcome {
	case OutcomeAccepted:
		if err := s.markUploaded(ctx, g.ID, a); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "grant: license uploaded", "grant", g.ID, "event", g.EventID, "test", g.Test)
		return nil
	case OutcomeRefused:
		s.recordUploadError(ctx, g.ID, a, true)
		return jobs.Permanent(fmt.Errorf("grant: upload %d refused: %w", g.ID, upErr))
	}
	final := job.Attempts >= job.MaxAttempts
	s.recordUploadError(ctx, g.ID, a, final)
	return fmt.Errorf("grant: upload %d: %w", g.ID, upErr)
}

// attempt classifies the outcome of one upload: accepted, retry (the API
// was unavailable, or refused the seller's credentials) or refused.
func attempt(grantID int64, err error) store.LicenseUpload {
	a := store.LicenseUpload{GrantID: grantID, Outcome: OutcomeAccepted}
	if err == nil {
		return a
	}
	a.Outcome, a.Message = OutcomeRefused, instance.Clip(err.Error())
	if openapi.Retryable(err) || errors.Is(err, openapi.ErrAuthentication) || errors.Is(err, openapi.ErrNotAuthorized) {
		a.Outcome = OutcomeRetry
	}
	var apiErr *openapi.Error
	if errors.As(err, &apiErr) {
		a.HTTPStatus, a.Code = apiErr.HTTPStatus, strings.TrimSpace(apiErr.Code)
		if apiErr.Message != "" {
			a.Message = instance.Clip(apiErr.Message)
		}
	}
	return a
}

// markUploaded records the acceptance a on grant id: uploaded, at a.At.
func (s *Service) markUploaded(ctx context.Context, id int64, a store.LicenseUpload) error {
	_, err := s.update(ctx, id, func(_ context.Context, _ store.Tx, g *store.LicenseGrant) error {
		if g.State == store.GrantUploaded {
			return errNoChange
		}
		g.Attempts++ // the accepted attempt is counted here, also when an earlier run recorded it and died
		g.State, g.UploadedAt, g.LastError = store.GrantUploaded, a.At, ""
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return err
	}
	return nil
}

// recordUploadError counts the failed attempt a on grant id with its
// reason, and fails the grant when final. Best effort: the job's outcome
// drives the retries.
func (s *Service) recordUploadError(ctx context.Context, id int64, a store.LicenseUpload, final bool) {
	_, err := s.update(ctx, id, func(_ context.Context, _ store.Tx, g *store.LicenseGrant) error {
		if g.State != store.GrantGenerated {
			return errNoChange
		}
		g.Attempts++
		g.LastError = "upload " + a.Outcome
		if a.Code != "" {
			g.LastError += ": " + a.Code
		}
		if a.Message != "" {
			g.LastError = instance.Clip(g.LastError + ": " + a.Message)
		}
		if final {
			g.State = store.GrantFailed
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		s.log.WarnContext(ctx, "grant: record an upload error", "grant", id, "err", err)
	}
}
