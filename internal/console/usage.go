package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
)

// UsagePushes is the operator's say over the usage pushes to KooGallery
// (package usage's Service implements it).
//
// RetryPush makes a pending push's send job run now, instead of at the
// end of its backoff. It returns an error wrapping store.ErrNotFound for
// an unknown push and one wrapping usage.ErrNotRetryable for a push that
// is done or split; the console answers them 404 and 409.
//
// Repush puts a period KooGallery rejected back to open, so the next seal
// pushes it again with the same metering_sn. It returns an error wrapping
// store.ErrNotFound for an unknown period and one wrapping
// usage.ErrNotRejected for a period in another state; the console answers
// them 404 and 409.
type UsagePushes interface {
	RetryPush(ctx context.Context, id int64) error
	Repush(ctx context.Context, k store.UsagePeriodKey) error
}

// usagePeriodStates are the period states, in the order the console
// counts them.
var usagePeriodStates = []store.UsagePeriodState{
	store.UsageOpen, store.UsagePushing, store.UsageAccepted, store.UsageRejected, store.UsageDead, store.UsageTest,
}

// usagePushStates are the push states, as the filters offer them.
var usagePushStates = []store.UsagePushState{store.UsagePushPending, store.UsagePushDone, store.UsagePushSplit}

// usageSummary is the metering state over all instances.
type usageSummary struct {
	counts map[store.UsagePeriodState]int64
	// oldestUnpushed is the End of the oldest open or pushing period;
	// zero when there is none.
	oldestUnpushed time.Time
}

// usageSummary counts the periods of each state and finds the oldest
// period not yet answered by KooGallery.
func (c *core) usageSummary(ctx context.Context) (usageSummary, error) {
	var s usageSummary
	var err error
	if s.counts, err = c.store.UsagePeriodCounts(ctx, ""); err != nil {
		return s, c.internal("count usage periods", err)
	}
	end, ok, err := c.store.OldestUnpushedUsage(ctx)
	if err != nil {
		return s, c.internal("find oldest unpushed usage", err)
	}
	if ok {
		s.oldestUnpushed = end
	}
	return s, nil
}

// usagePeriods lists billing periods, newest first, selected by the query
// parameters instanceId, state, pushId, before and limit. next is the
// cursor of the following page, empty on the last one.
func (c *core) usagePeriods(ctx context.Context, q url.Values) (list []store.UsagePeriod, next string, err error) {
	if err := singleValued(q, "instanceId"); err != nil {
		return nil, "", err
	}
	instanceID, err := textParam(q, "instanceId")
	if err != nil {
		return nil, "", err
	}
	return c.usagePeriodsOf(ctx, instanceID, q)
}

// usagePeriodsOf lists the periods of instanceID ("" for all) selected by
// the query parameters state, pushId, before and limit.
func (c *core) usagePeriodsOf(ctx context.Context, instanceID string, q url.Values) (list []store.UsagePeriod, next string, err error) {
	if err := singleValued(q, "state", "pushId", "before", "limit"); err != nil {
		return nil, "", err
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.UsagePeriodFilter{InstanceID: instanceID, State: store.UsagePeriodState(q.Get("state")), Limit: limit}
	if f.State != "" && !validPeriodState(f.State) {
		return nil, "", errorStatus(http.StatusBadRequest, "state: want open, pushing, accepted, rejected, dead or test")
	}
	if f.PushID, err = parseID("pushId", q.Get("pushId")); err != nil {
		return nil, "", badRequest(err)
	}
	if f.BeforeID, err = parseID("before", q.Get("before")); err != nil {
		return nil, "", badRequest(err)
	}
	list, err = c.store.UsagePeriods(ctx, f)
	if err != nil {
		return nil, "", c.internal("list usage periods", err)
	}
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return list, next, nil
}

func validPeriodState(s store.UsagePeriodState) bool {
	for _, v := range usagePeriodStates {
		if s == v {
			return true
		}
	}
	return false
}

// usageInstanceData is one instance's metering: its total, the count of
// its periods per state and a page of its periods.
type usageInstanceData struct {
	inst    store.Instance
	total   store.UsageTotal // zero but for InstanceID when it has no usage
	counts  map[store.UsagePeriodState]int64
	periods []store.UsagePeriod
	next    string
}

// usageInstance returns the metering of instance id with the page of its
// periods the query parameters state, before and limit select.
func (c *core) usageInstance(ctx context.Context, id string, q url.Values) (usageInstanceData, error) {
	d := usageInstanceData{total: store.UsageTotal{InstanceID: id}}
	if err := checkText("instance ID", id); err != nil {
		return d, err
	}
	var err error
	d.inst, err = c.store.Instance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return d, errorStatus(http.StatusNotFound, "instance "+strconv.Quote(id)+" not found")
	}
	if err != nil {
		return d, c.internal("get instance", err)
	}
	if d.periods, d.next, err = c.usagePeriodsOf(ctx, id, q); err != nil {
		return d, err
	}
	totals, err := c.store.UsageTotals(ctx, []string{id})
	if err != nil {
		return d, c.internal("get usage total", err)
	}
	if t, ok := totals[id]; ok {
		d.total = t
	}
	if d.counts, err = c.store.UsagePeriodCounts(ctx, id); err != nil {
		return d, c.internal("count usage periods of instance", err)
	}
	return d, nil
}

// usageRecords lists usage records, newest first, selected by the query
// parameters instanceId (required), periodStart, before and limit.
func (c *core) usageRecords(ctx context.Context, q url.Values) (list []store.UsageRecord, next string, err error) {
	if err := singleValued(q, "instanceId"); err != nil {
		return nil, "", err
	}
	instanceID, err := textParam(q, "instanceId")
	if err != nil {
		return nil, "", err
	}
	if instanceID == "" {
		return nil, "", errorStatus(http.StatusBadRequest, "instanceId: required")
	}
	return c.usageRecordsOf(ctx, instanceID, q, "before", "limit")
}

// usageRecordsOf lists the records of instanceID, newest first, selected
// by the query parameters periodStart (RFC 3339: the records billed in
// the period starting then), beforeName (the paging cursor) and limitName.
// The console's instance page names its cursor apart from the periods'.
func (c *core) usageRecordsOf(ctx context.Context, instanceID string, q url.Values, beforeName, limitName string) (list []store.UsageRecord, next string, err error) {
	if err := singleValued(q, "periodStart", beforeName, limitName); err != nil {
		return nil, "", err
	}
	limit, err := parseLimit(q.Get(limitName))
	if err != nil {
		return nil, "", errorStatus(http.StatusBadRequest, limitName+": want a number from 1 to 1000")
	}
	f := store.UsageRecordFilter{InstanceID: instanceID, Limit: limit}
	if f.PeriodStart, err = parseTime("periodStart", q.Get("periodStart")); err != nil {
		return nil, "", badRequest(err)
	}
	if f.BeforeID, err = parseID(beforeName, q.Get(beforeName)); err != nil {
		return nil, "", badRequest(err)
	}
	list, err = c.store.UsageRecords(ctx, f)
	if err != nil {
		return nil, "", c.internal("list usage records", err)
	}
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return list, next, nil
}

// usagePushes lists usage pushes, newest first, selected by the query
// parameters state, before and limit.
func (c *core) usagePushes(ctx context.Context, q url.Values) (list []store.UsagePush, next string, err error) {
	if err := singleValued(q, "state", "before", "limit"); err != nil {
		return nil, "", err
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.UsagePushFilter{State: store.UsagePushState(q.Get("state")), Limit: limit}
	switch f.State {
	case "", store.UsagePushPending, store.UsagePushDone, store.UsagePushSplit:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "state: want pending, done or split")
	}
	if f.BeforeID, err = parseID("before", q.Get("before")); err != nil {
		return nil, "", badRequest(err)
	}
	list, err = c.store.UsagePushes(ctx, f)
	if err != nil {
		return nil, "", c.internal("list usage pushes", err)
	}
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return list, next, nil
}

// usagePushData is one push with the periods it carries and its attempts.
type usagePushData struct {
	push     store.UsagePush
	periods  []store.UsagePeriod
	attempts []store.UsagePushAttempt
}

// usagePush returns the push whose id is the decimal text idText, with its
// periods and its attempts, first first.
func (c *core) usagePush(ctx context.Context, idText string) (usagePushData, error) {
	var d usagePushData
	var err error
	if d.push, err = c.usagePushByID(ctx, idText); err != nil {
		return d, err
	}
	if d.periods, err = c.store.UsagePeriodsOfPush(ctx, d.push.ID); err != nil {
		return d, c.internal("list periods of usage push", err)
	}
	if d.attempts, err = c.store.UsagePushAttempts(ctx, d.push.ID); err != nil {
		return d, c.internal("list attempts of usage push", err)
	}
	return d, nil
}

func (c *core) usagePushByID(ctx context.Context, idText string) (store.UsagePush, error) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return store.UsagePush{}, errorStatus(http.StatusNotFound, "usage push "+strconv.Quote(idText)+" not found")
	}
	p, err := c.store.UsagePush(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return p, errorStatus(http.StatusNotFound, "usage push "+strconv.FormatInt(id, 10)+" not found")
	}
	if err != nil {
		return p, c.internal("get usage push", err)
	}
	return p, nil
}

// retryUsagePush has the pending push whose id is idText sent now and
// returns the push as it is afterwards.
func (c *core) retryUsagePush(ctx context.Context, idText string) (store.UsagePush, error) {
	if c.pushRetrier == nil {
		return store.UsagePush{}, errorStatus(http.StatusInternalServerError, "usage push retry is not available")
	}
	p, err := c.usagePushByID(ctx, idText)
	if err != nil {
		return p, err
	}
	name := "usage push " + strconv.FormatInt(p.ID, 10)
	err = c.pushRetrier.RetryPush(ctx, p.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.UsagePush{}, errorStatus(http.StatusNotFound, name+" not found")
	case errors.Is(err, usage.ErrNotRetryable):
		// Say the state the service refused, as it is now: it may have
		// changed since the read above.
		if now, rerr := c.store.UsagePush(ctx, p.ID); rerr == nil {
			p = now
		}
		return store.UsagePush{}, errorStatus(http.StatusConflict, name+" is "+string(p.State)+": only a pending push can be retried")
	case err != nil:
		return store.UsagePush{}, c.internal("retry usage push", err)
	}
	c.log.Info("admin retried usage push", "push_id", p.ID, "api", p.API, "via", c.name)
	if p, err = c.store.UsagePush(ctx, p.ID); err != nil {
		return p, c.internal("get usage push", err)
	}
	return p, nil
}

// repushUsagePeriod puts the rejected period of instance id starting at
// startText (RFC 3339, to the second) back to open, to be pushed again
// with the same metering_sn, and returns the period as it is afterwards.
func (c *core) repushUsagePeriod(ctx context.Context, id, startText string) (store.UsagePeriod, error) {
	if c.pushRetrier == nil {
		return store.UsagePeriod{}, errorStatus(http.StatusInternalServerError, "usage period repush is not available")
	}
	if err := checkText("instance ID", id); err != nil {
		return store.UsagePeriod{}, err
	}
	start, err := parseTime("start", startText)
	if err != nil || startText == "" {
		return store.UsagePeriod{}, errorStatus(http.StatusBadRequest, "start: want an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	if start.Nanosecond() != 0 {
		// The store keeps milliseconds: a fraction would find the period
		// of the whole second, which is not what was asked for.
		return store.UsagePeriod{}, errorStatus(http.StatusBadRequest, "start: want the period's start to the second, as the periods list it")
	}
	k := store.UsagePeriodKey{InstanceID: id, Start: start.UTC()}
	name := "usage period of instance " + strconv.Quote(id) + " starting " + k.Start.Format(time.RFC3339)
	p, err := c.store.UsagePeriod(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return p, errorStatus(http.StatusNotFound, name+" not found")
	}
	if err != nil {
		return p, c.internal("get usage period", err)
	}
	err = c.pushRetrier.Repush(ctx, k)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.UsagePeriod{}, errorStatus(http.StatusNotFound, name+" not found")
	case errors.Is(err, usage.ErrNotRejected):
		// Say the state the service refused, as it is now: it may have
		// changed since the read above.
		if now, rerr := c.store.UsagePeriod(ctx, k); rerr == nil {
			p = now
		}
		return store.UsagePeriod{}, errorStatus(http.StatusConflict, name+" is "+string(p.State)+": only a rejected period can be pushed again")
	case err != nil:
		return store.UsagePeriod{}, c.internal("push usage period again", err)
	}
	c.log.Info("admin put rejected usage period back to open", "period_id", p.ID, "instance_id", id, "start", k.Start,
		"metering_sn", p.MeteringSN, "code", p.Code, "via", c.name)
	if p, err = c.store.UsagePeriod(ctx, k); err != nil {
		return p, c.internal("get usage period", err)
	}
	return p, nil
}
