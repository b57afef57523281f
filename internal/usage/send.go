package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// ErrNotRetryable is RetryPush's answer for a push that KooGallery has
// answered for good (done or split).
var ErrNotRetryable = errors.New("usage: push is not pending")

// errNoPusher is the error of a send without Open API credentials: the
// push waits, retried, until they are configured.
var errNoPusher = errors.New("usage: no Open API credentials (AK/SK) to push usage with")

// maxMessage bounds the answer text kept per attempt and period.
const maxMessage = 500

// contentCodes are KooGallery's refusals of what a push carries. They come
// with HTTP 500, so they are told from an outage by their code: not
// retried, but answered like any other refusal of content (split, or the
// period rejected).
var contentCodes = map[string]bool{
	protocol.MKTInputCheckFailed:     true, // MKT.0100
	protocol.MKTInvalidParam:         true, // MKT.0101
	protocol.MKTParamError:           true, // MKT.0199
	protocol.MKTInstanceNotFound:     true, // MKT.9001
	protocol.MKTInvalidUsageEntities: true, // MKT.9002
	protocol.MKTTooManyRecords:       true, // MKT.9003
	protocol.MKTBeginTimeTooOld:      true, // MKT.9004
}

// handleSend is the send job of one push: it sends the push's body, records
// the attempt, and applies the answer.
//
//   - Outages, throttling and refusals of koobridge itself (its key, AK/SK
//     or rights: MKT.0102, MKT.0151, MKT.0154, APIGW.*) are retried with the
//     job queue's backoff: waiting or the operator fixes them, and the
//     periods' records stay the same meanwhile.
//   - Any other refusal of a push of several records splits it: each record
//     goes out alone, so that the records KooGallery takes are billed and
//     the one it refuses is told apart.
//   - A one-record push refused for its content is answered: its period is
//     rejected (dead for MKT.9004).
//
// A push whose oldest period KooGallery can no longer take (21 days) is not
// sent: its too-old periods are dead.
func (s *Service) handleSend(ctx context.Context, job store.Job) error {
	var pl sendPayload
	if err := json.Unmarshal(job.Payload, &pl); err != nil || pl.PushID <= 0 {
		return fmt.Errorf("usage: send: payload %q: not a push", job.Payload)
	}
	p, err := s.store.UsagePush(ctx, pl.PushID)
	if err != nil {
		return fmt.Errorf("usage: send push %d: %w", pl.PushID, err)
	}
	if p.State != store.UsagePushPending {
		return nil // answered already (a revived job, a second replica)
	}
	if done, err := s.expire(ctx, p); done || err != nil {
		return err
	}
	began := time.Now()
	res, sendErr := s.push(ctx, p)
	a := store.UsagePushAttempt{
		PushID: p.ID, Attempt: p.Attempts + 1, At: s.now().UTC(), Duration: time.Since(began),
		HTTPStatus: res.HTTPStatus, Code: res.Code, Message: clip(res.Message),
	}
	if sendErr != nil && res.HTTPStatus == 0 {
		a.Message = clip(sendErr.Error())
	}
	if err := s.store.InsertUsagePushAttempt(ctx, a); err != nil {
		return fmt.Errorf("usage: send push %d: record attempt: %w", p.ID, err)
	}
	code := strings.TrimSpace(res.Code)
	switch {
	case sendErr == nil:
		s.metrics.attempts.WithLabelValues("accepted").Inc()
		return s.accepted(ctx, p, res)
	case errors.Is(sendErr, errNoPusher) || settingCode(code) || openapi.Retryable(sendErr) && !contentCodes[code]:
		// contentCodes first: KooGallery answers most of them with HTTP
		// 500, which would otherwise read as an outage.
		s.metrics.attempts.WithLabelValues("failed").Inc()
		if settingCode(code) {
			s.log.ErrorContext(ctx, "usage: KooGallery refused a usage push for a reason of koobridge's settings (key, AK/SK, rights); retrying",
				"push", p.ID, "records", p.Records, "err", sendErr)
		}
		return fmt.Errorf("usage: send push %d (%d records): %w", p.ID, p.Records, sendErr)
	case p.Records > 1:
		s.metrics.attempts.WithLabelValues("refused").Inc()
		return s.split(ctx, p, code, res.Message)
	default:
		s.metrics.attempts.WithLabelValues("refused").Inc()
		return s.refused(ctx, p, code, res.Message)
	}
}

// settingCode reports a refusal of koobridge itself, not of what a push
// carries: the usage key's signature, the token or rights of the AK/SK,
// the API gateway.
func settingCode(code string) bool {
	switch code {
	case protocol.MKTInvalidBodySignature, protocol.MKTNoAuthority, protocol.MKTIllegalToken:
		return true
	}
	return strings.HasPrefix(code, "APIGW.") || strings.HasPrefix(code, "APIG.")
}

// expire keeps a push from going out with periods KooGallery can no longer
// take: a push of one such period is answered dead, one of several is
// split (each record then judged alone). done reports that p needs no
// sending.
func (s *Service) expire(ctx context.Context, p store.UsagePush) (done bool, err error) {
	periods, err := s.store.UsagePeriodsOfPush(ctx, p.ID)
	if err != nil {
		return false, fmt.Errorf("usage: send push %d: read periods: %w", p.ID, err)
	}
	oldest := s.now().Add(-MaxAge)
	for _, per := range periods {
		if !per.Start.Before(oldest) {
			continue
		}
		const msg = "not sent: its begin_time became more than 21 days old before KooGallery took it"
		if p.Records > 1 {
			return true, s.split(ctx, p, protocol.MKTBeginTimeTooOld, msg)
		}
		return true, s.refused(ctx, p, protocol.MKTBeginTimeTooOld, msg)
	}
	return false, nil
}

// push sends p once.
func (s *Service) push(ctx context.Context, p store.UsagePush) (openapi.UsagePushResult, error) {
	if s.pusher == nil {
		return openapi.UsagePushResult{}, errNoPusher
	}
	if p.API == store.UsageAPIOld {
		return s.pusher.PushUsageOld(ctx, p.Body)
	}
	return s.pusher.PushUsage(ctx, s.key, p.Body)
}

// accepted applies a success answer: every period of the push is accepted
// but those the answer lists as refused.
func (s *Service) accepted(ctx context.Context, p store.UsagePush, res openapi.UsagePushResult) error {
	var refusedN, acceptedN int
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		refusedN, acceptedN = 0, 0
		if pending, err := stillPending(ctx, tx, p.ID); err != nil || !pending {
			return err
		}
		periods, err := tx.UsagePeriodsOfPush(ctx, p.ID)
		if err != nil {
			return err
		}
		type answer struct{ code, msg string }
		refused := map[store.UsagePeriodKey]answer{}
		for _, r := range res.Rejected {
			if per, ok := matchPeriod(periods, r.MeteringSN, r.InstanceID, r.BeginTime); ok {
				refused[per.Key()] = answer{r.Code, clip(r.Message)}
			}
		}
		var ok []store.UsagePeriodKey
		for _, per := range periods {
			if a, bad := refused[per.Key()]; bad {
				state := store.UsageRejected
				if strings.TrimSpace(a.code) == protocol.MKTBeginTimeTooOld {
					state = store.UsageDead
				}
				if err := tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{per.Key()}, state, p.ID, a.code, a.msg); err != nil {
					return err
				}
				refusedN++
				continue
			}
			ok = append(ok, per.Key())
		}
		acceptedN = len(ok)
		if err := tx.SetUsagePeriods(ctx, ok, store.UsageAccepted, p.ID, res.Code, clip(res.Message)); err != nil {
			return err
		}
		return tx.UpdateUsagePush(ctx, store.UsagePush{ID: p.ID, State: store.UsagePushDone, Code: res.Code, Message: clip(res.Message)})
	})
	if err != nil {
		return fmt.Errorf("usage: push %d accepted: record it: %w", p.ID, err)
	}
	s.metrics.periods.WithLabelValues(string(store.UsageAccepted)).Add(float64(acceptedN))
	s.metrics.periods.WithLabelValues(string(store.UsageRejected)).Add(float64(refusedN))
	if refusedN > 0 {
		s.log.WarnContext(ctx, "usage: KooGallery refused records of a push", "push", p.ID, "refused", refusedN, "accepted", acceptedN)
	}
	return nil
}

// refused applies a refusal of a one-record push: its period is rejected,
// or dead when too old.
func (s *Service) refused(ctx context.Context, p store.UsagePush, code, msg string) error {
	state := store.UsageRejected
	if code == protocol.MKTBeginTimeTooOld {
		state = store.UsageDead
	}
	var periods []store.UsagePeriod
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		periods = nil
		if pending, err := stillPending(ctx, tx, p.ID); err != nil || !pending {
			return err
		}
		var err error
		if periods, err = tx.UsagePeriodsOfPush(ctx, p.ID); err != nil {
			return err
		}
		keys := make([]store.UsagePeriodKey, len(periods))
		for i, per := range periods {
			keys[i] = per.Key()
		}
		if err := tx.SetUsagePeriods(ctx, keys, state, p.ID, code, clip(msg)); err != nil {
			return err
		}
		return tx.UpdateUsagePush(ctx, store.UsagePush{ID: p.ID, State: store.UsagePushDone, Code: code, Message: clip(msg)})
	})
	if err != nil {
		return fmt.Errorf("usage: push %d refused: record it: %w", p.ID, err)
	}
	s.metrics.periods.WithLabelValues(string(state)).Add(float64(len(periods)))
	for _, per := range periods {
		s.log.ErrorContext(ctx, "usage: KooGallery refused a period's record", "state", state, "instance", per.InstanceID,
			"begin", per.Start, "end", per.End, "value", FormatValue(per.Total), "metering_sn", per.MeteringSN, "code", code, "msg", clip(msg))
	}
	return nil
}

// split answers a refusal of a push of several records for the sake of
// some of them: each record goes out again in a push of its own, so the
// ones KooGallery takes are billed and the refused ones are told apart.
func (s *Service) split(ctx context.Context, p store.UsagePush, code, msg string) error {
	recs, err := splitBody(p.Body)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		if pending, err := stillPending(ctx, tx, p.ID); err != nil || !pending {
			return err
		}
		periods, err := tx.UsagePeriodsOfPush(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, raw := range recs {
			var r struct {
				InstanceID string `json:"instance_id"`
				BeginTime  string `json:"begin_time"`
				MeteringSN string `json:"metering_sn"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode a record of push %d: %w", p.ID, err)
			}
			per, ok := matchPeriod(periods, r.MeteringSN, r.InstanceID, r.BeginTime)
			if !ok {
				continue // not this push's any more
			}
			if err := s.newPush(ctx, tx, p.API, p.ID, []store.UsagePeriod{per}, []json.RawMessage{raw}, now); err != nil {
				return err
			}
		}
		return tx.UpdateUsagePush(ctx, store.UsagePush{ID: p.ID, State: store.UsagePushSplit, Code: code, Message: clip(msg)})
	})
	if err != nil {
		return fmt.Errorf("usage: split push %d: %w", p.ID, err)
	}
	s.metrics.pushed.Add(float64(len(recs)))
	s.jobs.Kick()
	s.log.WarnContext(ctx, "usage: KooGallery refused a push for its content; its records go out one by one to find the refused ones",
		"push", p.ID, "records", p.Records, "code", code)
	return nil
}

// stillPending reads push id in tx (PostgreSQL locks it until tx ends) and
// reports whether it is still pending: of two senders of one push (a
// retry the operator asked for beside the job's own) only the first
// answer counts.
func stillPending(ctx context.Context, tx store.Tx, id int64) (bool, error) {
	p, err := tx.UsagePush(ctx, id)
	if err != nil {
		return false, err
	}
	return p.State == store.UsagePushPending, nil
}

// RetryPush makes a pending push's send job run now: for a push whose job
// gave up, or to try at once after fixing a setting. It fails with an
// error wrapping store.ErrNotFound for an unknown push and ErrNotRetryable
// for one that is done or split.
func (s *Service) RetryPush(ctx context.Context, id int64) error {
	p, err := s.store.UsagePush(ctx, id)
	if err != nil {
		return fmt.Errorf("usage: retry push %d: %w", id, err)
	}
	if p.State != store.UsagePushPending {
		return fmt.Errorf("usage: retry push %d: %w (%s)", id, ErrNotRetryable, p.State)
	}
	payload, _ := json.Marshal(sendPayload{PushID: id})
	now := s.now().UTC()
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		// A key of its own per retry: the original job may be dead, and
		// is not revived behind the operator's back.
		_, _, err := tx.EnqueueJob(ctx, store.Job{
			Kind: KindSend, UniqueKey: KindSend + ":" + strconv.FormatInt(id, 10) + ":retry:" + strconv.FormatInt(now.UnixNano(), 10),
			Payload: payload, MaxAttempts: sendAttempts, RunAt: now,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("usage: retry push %d: %w", id, err)
	}
	s.jobs.Kick()
	return nil
}

// clip bounds a message kept in the store, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// matchPeriod finds the period a push record stands for: by its
// metering_sn, or, without one (the old push), by its instance and the
// period holding its begin_time.
func matchPeriod(periods []store.UsagePeriod, sn, instanceID, beginTime string) (store.UsagePeriod, bool) {
	if sn == "" && beginTime == "" {
		// Only the instance: the push's one period of it, if one.
		var found []store.UsagePeriod
		for _, p := range periods {
			if p.InstanceID == instanceID {
				found = append(found, p)
			}
		}
		if len(found) == 1 {
			return found[0], true
		}
		return store.UsagePeriod{}, false
	}
	begin, err := protocol.ParseUsageTime(beginTime)
	for _, p := range periods {
		switch {
		case sn != "":
			if p.MeteringSN == sn {
				return p, true
			}
		case err == nil && p.InstanceID == instanceID && !begin.Before(p.Start) && begin.Before(p.End):
			return p, true
		}
	}
	return store.UsagePeriod{}, false
}

// ErrNotRejected is Repush's answer for a period that is not rejected.
var ErrNotRejected = errors.New("usage: period is not rejected")

// Repush puts a period KooGallery rejected back to open, so that the next
// seal pushes it again, with the same metering_sn: once the cause is
// fixed (a setting, KooGallery's side), the revenue is not lost. It fails
// with an error wrapping store.ErrNotFound for an unknown period and
// ErrNotRejected for one in another state (a dead period is too old for
// KooGallery; an accepted one is billed).
func (s *Service) Repush(ctx context.Context, k store.UsagePeriodKey) error {
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		p, err := tx.UsagePeriod(ctx, k)
		if err != nil {
			return err
		}
		if p.State != store.UsageRejected {
			return fmt.Errorf("%w (%s)", ErrNotRejected, p.State)
		}
		return tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{k}, store.UsageOpen, 0, "", "")
	})
	if err != nil {
		return fmt.Errorf("usage: push again %s at %s: %w", k.InstanceID, k.Start.UTC().Format(time.RFC3339), err)
	}
	s.log.InfoContext(ctx, "usage: a rejected period goes out again", "instance", k.InstanceID, "begin", k.Start)
	return nil
}
