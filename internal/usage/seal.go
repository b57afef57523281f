package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// enqueueRetry is the wait before Run tries again to enqueue a seal job
// the store refused.
const enqueueRetry = 10 * time.Second

// maxSealBatches bounds the batches one seal job seals; the next interval's
// job goes on.
const maxSealBatches = 10000

// Run enqueues the seal job of every push interval, at the start of each,
// until ctx is done. The job's unique key is the interval's start, so
// replicas running Run at once seal once.
func (s *Service) Run(ctx context.Context) {
	if s.pusher == nil {
		s.log.WarnContext(ctx, "usage: no Open API credentials: usage is summed but pushes wait until they are configured")
	}
	jobs.Every(ctx, s.pushInterval, enqueueRetry, s.now, s.enqueueSeal, func(start time.Time, err error) {
		s.log.WarnContext(ctx, "usage: enqueue the seal job", "interval", start, "err", err)
	})
}

// enqueueSeal enqueues the seal job of the interval starting at start,
// unless one is there or no period is due (so that an idle koobridge, or
// one whose pushes wait for an answer, does not fill the job table with a
// job a minute).
func (s *Service) enqueueSeal(ctx context.Context, start time.Time) error {
	var inserted bool
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		inserted = false
		due, err := tx.DueUsagePeriods(ctx, s.now().Add(-s.settle), 1)
		if err != nil || len(due) == 0 {
			return err
		}
		_, inserted, err = tx.EnqueueJob(ctx, store.Job{
			Kind: KindSeal, UniqueKey: KindSeal + ":" + strconv.FormatInt(start.UnixMilli(), 10),
			Payload: []byte("{}"), MaxAttempts: 10, RunAt: s.now().UTC(),
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

// handleSeal is the seal job: it seals every period closed for Settle,
// oldest first, in batches of up to 1000.
func (s *Service) handleSeal(ctx context.Context, _ store.Job) error {
	for range maxSealBatches {
		n, err := s.sealBatch(ctx)
		if err != nil {
			return err
		}
		// Until none is left: on PostgreSQL a batch skips the periods an
		// ingest holds, so a short batch does not mean the last.
		if n == 0 {
			return nil
		}
	}
	return nil
}

// sealed is what one batch made of its periods.
type sealed struct {
	pushes int // pushes made
	pushed int // periods put into them
	dead   []store.UsagePeriod
}

// sealBatch seals up to 1000 due periods in one transaction and returns
// how many it took. A deleted instance's period (an operator's hand in
// the database) fails the job, which is retried and then left dead for
// the console to show.
func (s *Service) sealBatch(ctx context.Context) (int, error) {
	now := s.now().UTC()
	before := now.Add(-s.settle)
	// Read the facts of the instances first, outside the transaction,
	// which then finds them cached.
	var peek []store.UsagePeriod
	if err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		peek, err = tx.DueUsagePeriods(ctx, before, maxPushRecords)
		return err
	}); err != nil {
		return 0, fmt.Errorf("usage: seal: list due periods: %w", err)
	}
	if len(peek) == 0 {
		return 0, nil
	}
	known := map[string]facts{}
	for _, p := range peek {
		if _, ok := known[p.InstanceID]; ok {
			continue
		}
		f, err := s.meta(ctx, p.InstanceID)
		if err != nil {
			return 0, fmt.Errorf("usage: seal: instance %s: %w", p.InstanceID, err)
		}
		known[p.InstanceID] = f
	}
	var (
		n   int
		out sealed
	)
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		n, out = 0, sealed{}
		due, err := tx.DueUsagePeriods(ctx, before, maxPushRecords)
		if err != nil {
			return err
		}
		n = len(due)
		return s.seal(ctx, tx, due, known, now, &out)
	})
	if err != nil {
		return 0, fmt.Errorf("usage: seal: %w", err)
	}
	for _, p := range out.dead {
		s.metrics.periods.WithLabelValues(string(store.UsageDead)).Inc()
		s.log.ErrorContext(ctx, "usage: period dead-lettered: older than KooGallery accepts, never pushed",
			"instance", p.InstanceID, "begin", p.Start, "end", p.End, "value", FormatValue(p.Total), "metering_sn", p.MeteringSN)
	}
	if out.pushes > 0 {
		s.metrics.pushed.Add(float64(out.pushed))
		s.jobs.Kick()
	}
	return n, nil
}

// seal turns due periods into pushes, one per API, or into dead periods
// when they are too old, inside tx. known holds the facts of their
// instances read before the transaction (so that it holds no second
// connection while it locks periods); others are read now.
func (s *Service) seal(ctx context.Context, tx store.Tx, due []store.UsagePeriod, known map[string]facts, now time.Time, out *sealed) error {
	oldest := now.Add(-MaxAge)
	var dead []store.UsagePeriodKey
	byAPI := map[string][]store.UsagePeriod{}
	recs := map[string][]json.RawMessage{}
	for _, p := range due {
		if p.Start.Before(oldest) {
			dead = append(dead, p.Key())
			out.dead = append(out.dead, p)
			continue
		}
		f, ok := known[p.InstanceID]
		if !ok {
			var err error
			if f, err = s.meta(ctx, p.InstanceID); err != nil {
				return fmt.Errorf("instance %s: %w", p.InstanceID, err)
			}
		}
		rec, err := s.record(f, p, now)
		if err != nil {
			return err
		}
		byAPI[f.api] = append(byAPI[f.api], p)
		recs[f.api] = append(recs[f.api], rec)
	}
	if len(dead) > 0 {
		if err := tx.SetUsagePeriods(ctx, dead, store.UsageDead, 0, protocol.MKTBeginTimeTooOld,
			"not pushed: its begin_time is more than 21 days old, which KooGallery refuses"); err != nil {
			return err
		}
	}
	for _, api := range []string{store.UsageAPINew, store.UsageAPIOld} {
		if len(byAPI[api]) == 0 {
			continue
		}
		if err := s.newPush(ctx, tx, api, 0, byAPI[api], recs[api], now); err != nil {
			return err
		}
		out.pushes++
		out.pushed += len(byAPI[api])
	}
	return nil
}

// newPush inserts a push of periods (whose records are recs), marks them
// pushing and enqueues the job that sends it.
func (s *Service) newPush(ctx context.Context, tx store.Tx, api string, parent int64, periods []store.UsagePeriod, recs []json.RawMessage, now time.Time) error {
	body, err := pushBody(recs)
	if err != nil {
		return err
	}
	id, err := tx.InsertUsagePush(ctx, store.UsagePush{
		API: api, ParentID: parent, Body: body, Records: len(periods), State: store.UsagePushPending, CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		return err
	}
	keys := make([]store.UsagePeriodKey, len(periods))
	for i, p := range periods {
		keys[i] = p.Key()
	}
	if err := tx.SetUsagePeriods(ctx, keys, store.UsagePushing, id, "", ""); err != nil {
		return err
	}
	payload, _ := json.Marshal(sendPayload{PushID: id})
	_, _, err = tx.EnqueueJob(ctx, store.Job{
		Kind: KindSend, UniqueKey: KindSend + ":" + strconv.FormatInt(id, 10), Payload: payload,
		MaxAttempts: sendAttempts, RunAt: now,
	})
	return err
}

// sendPayload is the payload of a send job.
type sendPayload struct {
	PushID int64 `json:"pushId"`
}

// record is the push record of period p of f's instance, sealed at now:
// its begin moved to the instance's start and its end to its release when
// they fall inside the period (KooGallery refuses a begin_time before the
// resource started and an end_time after it closed), its record_time now.
// Push times have whole seconds: the start is taken down to its second
// (the same second as the resource's start on the wire), the release up.
func (s *Service) record(f facts, p store.UsagePeriod, now time.Time) (json.RawMessage, error) {
	begin, end := p.Start, p.End
	if st := f.start.UTC().Truncate(time.Second); st.After(begin) {
		begin = st
	}
	if rel := f.inst.ReleasedAt; f.inst.Status == store.StatusReleased && !rel.IsZero() {
		if r := ceilSecond(rel.UTC()); r.Before(end) {
			end = r
		}
	}
	if !end.After(begin) {
		end = begin.Add(time.Second)
	}
	common := struct {
		begin, end, rec, value string
	}{protocol.FormatUsageTime(begin), protocol.FormatUsageTime(end), protocol.FormatUsageTime(now), FormatValue(p.Total)}
	var v any
	if f.api == store.UsageAPIOld {
		v = protocol.OldUsageRecord{
			BeginTime: common.begin, EndTime: common.end, InstanceID: p.InstanceID, ProductID: f.inst.ProductID,
			RecordTime: common.rec, RelatePkgInstance: f.pkg, UsageValue: common.value,
		}
	} else {
		v = protocol.UsageRecord{
			BeginTime: common.begin, EndTime: common.end, InstanceID: p.InstanceID, MeteringSN: p.MeteringSN,
			RecordTime: common.rec, RelatePkgInstance: f.pkg, UsageValue: common.value,
		}
	}
	b, err := protocol.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("usage: encode the record of %s at %s: %w", p.InstanceID, p.Start, err)
	}
	return b, nil
}

// pushBody is {"usage_records":[…]}: keys in natural order, as signed.
func pushBody(recs []json.RawMessage) ([]byte, error) {
	if len(recs) == 0 || len(recs) > maxPushRecords {
		return nil, fmt.Errorf("usage: a push of %d records", len(recs))
	}
	b, err := protocol.Marshal(struct {
		UsageRecords []json.RawMessage `json:"usage_records"`
	}{recs})
	if err != nil {
		return nil, fmt.Errorf("usage: encode push: %w", err)
	}
	return b, nil
}

// splitBody returns the records of a push body, each as it was sent.
func splitBody(body []byte) ([]json.RawMessage, error) {
	var b struct {
		UsageRecords []json.RawMessage `json:"usage_records"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("usage: decode push body: %w", err)
	}
	if len(b.UsageRecords) == 0 {
		return nil, errors.New("usage: push body without records")
	}
	return b.UsageRecords, nil
}

// ceilSecond rounds t up to a whole second: push times have seconds.
func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); !s.Equal(t) {
		return s.Add(time.Second)
	}
	return t
}
