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
	"github.com/koobridge/koobridge/protocol"
)

// Uploader uploads the license of an online-license event to KooGallery
// (license-openapi.md §C.7); *openapi.Client implements it. An error is
// retried when openapi.Retryable says so, or when the API gateway refused
// the seller's credentials (an operator can fix them); any other error is
// a refusal of this upload.
type Uploader interface {
	UploadLicense(ctx context.Context, eventID string, f openapi.LicenseUpload) error
}

// ErrNotSent marks an Uploader error for an upload that never left
// koobridge (no credentials to sign it with, say). It is retried like an
// outage, but its outcome is known: KooGallery did not get it, so a later
// 91381038 is not taken for an acceptance. Its attempt's message begins
// "not sent: ".
var ErrNotSent = errors.New("grant: the license upload was not sent")

// notSent begins the message of an attempt whose upload was not sent.
const notSent = "not sent: "

// Outcomes of an upload attempt (store.LicenseUpload.Outcome).
const (
	OutcomeAccepted = "accepted"
	OutcomeRetry    = "retry"
	OutcomeRefused  = "refused"
)

// handleUpload is the upload job of an online grant. It reads the grant
// and its recorded attempts first: a grant uploaded already, or one whose
// acceptance was recorded by an earlier run that died before marking the
// grant, is never uploaded again. Every attempt is counted on the grant
// before it is sent and recorded after; a refusal fails the grant (an
// operator's Retry re-runs it), anything else is retried by the runner
// with backoff.
//
// An attempt whose outcome is unknown (no answer, a 5xx, an unreadable
// answer, or a count with no record: the process died after sending) may
// have been accepted by KooGallery. KooGallery answers a later upload for
// the same event "application denied" (91381038), or success when it is
// the same license (the emulator does); either way, after such an attempt,
// the grant is uploaded: the denial is recorded as an acceptance, with
// its code and message.
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
			return s.markUploaded(ctx, g.ID, a, len(attempts))
		}
	}
	f, err := s.License(g)
	if err != nil {
		return jobs.Permanent(fmt.Errorf("grant: upload: %w", err))
	}
	lost := lostAttempt(g, attempts)
	if g, err = s.beginUpload(ctx, g.ID); errors.Is(err, errNoChange) {
		return nil // no longer generated: another run settled it
	} else if err != nil {
		return err
	}
	upErr := s.uploader.UploadLicense(ctx, g.EventID, openapi.LicenseUpload{Characters: f.Characters, FileName: f.FileName, Content: f.Content})
	a := attempt(g.ID, upErr)
	if a.Outcome == OutcomeRefused && lost && errors.Is(upErr, openapi.ErrUploadApplicationDenied) {
		a.Outcome = OutcomeAccepted
		a.Message = instance.Clip("accepted by an earlier attempt whose answer was lost; KooGallery denies another upload for the event: " + a.Message)
	}
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
		if err := s.markUploaded(ctx, g.ID, a, len(attempts)+1); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "grant: license uploaded", "grant", g.ID, "event", g.EventID, "test", g.Test, "duplicate", a.Code != "")
		return nil
	case OutcomeRefused:
		s.recordUploadError(ctx, g.ID, a, true)
		return jobs.Permanent(fmt.Errorf("grant: upload %d refused: %w", g.ID, upErr))
	}
	final := job.Attempts >= job.MaxAttempts
	s.recordUploadError(ctx, g.ID, a, final)
	return fmt.Errorf("grant: upload %d: %w", g.ID, upErr)
}

// beginUpload counts an upload attempt on generated grant id before it is
// sent, so that one whose outcome is never recorded (the process died
// after sending) still shows: the grant then counts more attempts than it
// has records. errNoChange when the grant is no longer generated.
func (s *Service) beginUpload(ctx context.Context, id int64) (store.LicenseGrant, error) {
	return s.update(ctx, id, func(_ context.Context, _ store.Tx, g *store.LicenseGrant) error {
		if g.State != store.GrantGenerated {
			return errNoChange
		}
		g.Attempts++
		return nil
	})
}

// lostAttempt reports whether an earlier upload of g may have been
// accepted without koobridge learning it: an attempt begun and never
// recorded, or one recorded as a retry whose answer says nothing of the
// outcome (unknownOutcome) and that was sent.
func lostAttempt(g store.LicenseGrant, attempts []store.LicenseUpload) bool {
	if g.Attempts > len(attempts) {
		return true
	}
	for _, a := range attempts {
		if a.Outcome == OutcomeRetry && unknownOutcome(a.HTTPStatus, a.Code) && !strings.HasPrefix(a.Message, notSent) {
			return true
		}
	}
	return false
}

// unknownOutcome reports whether an upload's answer leaves open whether
// KooGallery took the license: no answer at all (a transport error, a
// timeout, a reset: status 0), a server error (a gateway's 502 or 504
// after the upstream took it), or an answer without a code or with the
// success code that still failed (an unreadable 2xx, a success code with
// another status). An answer with an error code is KooGallery's word
// that it did not.
func unknownOutcome(status int, code string) bool {
	switch {
	case status == 0, status >= 500:
		return true
	case code == "", code == protocol.CBCSuccess, code == protocol.MKTSuccess:
		return true
	}
	return false
}

// attempt classifies the outcome of one upload: accepted, retry (the API
// was unavailable, refused the seller's credentials, or answered without
// saying whether it took the license) or refused.
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
		if unknownOutcome(a.HTTPStatus, a.Code) {
			a.Outcome = OutcomeRetry
		}
	}
	if errors.Is(err, ErrNotSent) {
		a.Message = instance.Clip(notSent + a.Message)
	}
	return a
}

// markUploaded records the acceptance a on grant id: uploaded, at a.At,
// with at least recorded attempts counted (an earlier run may have
// recorded the acceptance and died before counting it).
func (s *Service) markUploaded(ctx context.Context, id int64, a store.LicenseUpload, recorded int) error {
	_, err := s.update(ctx, id, func(_ context.Context, _ store.Tx, g *store.LicenseGrant) error {
		if g.State == store.GrantUploaded {
			return errNoChange
		}
		g.Attempts = max(g.Attempts, recorded)
		g.State, g.UploadedAt, g.LastError = store.GrantUploaded, a.At, ""
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return err
	}
	return nil
}

// recordUploadError records the reason of the failed attempt a on grant
// id (beginUpload counted it), and fails the grant when final. Best
// effort: the job's outcome drives the retries.
func (s *Service) recordUploadError(ctx context.Context, id int64, a store.LicenseUpload, final bool) {
	_, err := s.update(ctx, id, func(_ context.Context, _ store.Tx, g *store.LicenseGrant) error {
		if g.State != store.GrantGenerated {
			return errNoChange
		}
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
