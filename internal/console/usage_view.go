package console

import (
	"encoding/json"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
)

// usageCountsView is the number of periods in each state; every state is
// present, zero or not.
type usageCountsView struct {
	Open     int64 `json:"open"`
	Pushing  int64 `json:"pushing"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	Dead     int64 `json:"dead"`
	Test     int64 `json:"test"`
}

func viewUsageCounts(m map[store.UsagePeriodState]int64) usageCountsView {
	return usageCountsView{
		Open: m[store.UsageOpen], Pushing: m[store.UsagePushing], Accepted: m[store.UsageAccepted],
		Rejected: m[store.UsageRejected], Dead: m[store.UsageDead], Test: m[store.UsageTest],
	}
}

// usageSummaryView is GET /admin/api/usage: the periods of every instance
// counted by state, and the End of the oldest period KooGallery has not
// answered yet (open or pushing), absent when there is none.
type usageSummaryView struct {
	Counts            usageCountsView `json:"counts"`
	OldestUnpushedEnd *time.Time      `json:"oldestUnpushedEnd,omitempty"`
}

func viewUsageSummary(s usageSummary) usageSummaryView {
	return usageSummaryView{Counts: viewUsageCounts(s.counts), OldestUnpushedEnd: timePtr(s.oldestUnpushed)}
}

// usagePeriodView is one billing period of one instance.
type usagePeriodView struct {
	ID         int64     `json:"id"`
	InstanceID string    `json:"instanceId"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Total      string    `json:"total"` // decimal text, at most 4 decimals
	Records    int64     `json:"records"`
	State      string    `json:"state"`
	MeteringSN string    `json:"meteringSn"`
	PushID     int64     `json:"pushId,omitempty"` // 0 while open
	// Code and Message are KooGallery's answer for the period's record
	// (or why it was never pushed, for a dead one).
	Code      string    `json:"code,omitempty"`
	Message   string    `json:"message,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func viewUsagePeriods(ps []store.UsagePeriod) []usagePeriodView {
	out := make([]usagePeriodView, 0, len(ps))
	for _, p := range ps {
		out = append(out, usagePeriodView{
			ID: p.ID, InstanceID: p.InstanceID, Start: p.Start.UTC(), End: p.End.UTC(), Total: usage.FormatValue(p.Total),
			Records: p.Records, State: string(p.State), MeteringSN: p.MeteringSN, PushID: p.PushID,
			Code: p.Code, Message: p.Message, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
		})
	}
	return out
}

// usageInstanceView is GET /admin/api/usage/instances/{id}: everything
// the instance has used, its periods counted by state, and a page of its
// periods, newest first.
type usageInstanceView struct {
	InstanceID   string            `json:"instanceId"`
	ChargingMode string            `json:"chargingMode,omitempty"`
	Test         bool              `json:"test"`
	Total        string            `json:"total"` // decimal text; "0" without usage
	Records      int64             `json:"records"`
	LastTime     *time.Time        `json:"lastTime,omitempty"` // the latest record's time
	Counts       usageCountsView   `json:"counts"`
	Periods      []usagePeriodView `json:"periods"`
	Next         string            `json:"next,omitempty"`
}

func viewUsageInstance(d usageInstanceData) usageInstanceView {
	return usageInstanceView{
		InstanceID: d.inst.ID, ChargingMode: d.inst.ChargingMode, Test: d.inst.Test,
		Total: usage.FormatValue(d.total.Total), Records: d.total.Records, LastTime: timePtr(d.total.LastTime),
		Counts: viewUsageCounts(d.counts), Periods: viewUsagePeriods(d.periods), Next: d.next,
	}
}

// usageRecordView is one record the vendor's product reported.
type usageRecordView struct {
	ID             int64     `json:"id"`
	IdempotencyKey string    `json:"idempotencyKey"`
	InstanceID     string    `json:"instanceId"`
	Value          string    `json:"value"` // decimal text, at most 4 decimals
	Time           time.Time `json:"time"`
	PeriodStart    time.Time `json:"periodStart"`
	// Carried: billed in a later period than its time's, which had been
	// sealed when the record arrived.
	Carried   bool      `json:"carried"`
	CreatedAt time.Time `json:"createdAt"`
}

func viewUsageRecords(rs []store.UsageRecord) []usageRecordView {
	out := make([]usageRecordView, 0, len(rs))
	for _, r := range rs {
		out = append(out, usageRecordView{
			ID: r.ID, IdempotencyKey: r.IdempotencyKey, InstanceID: r.InstanceID, Value: usage.FormatValue(r.Value),
			Time: r.Time.UTC(), PeriodStart: r.PeriodStart.UTC(), Carried: r.Carried, CreatedAt: r.CreatedAt.UTC(),
		})
	}
	return out
}

// usagePushView is one usage-push request to KooGallery, without its
// body.
type usagePushView struct {
	ID       int64  `json:"id"`
	API      string `json:"api"`                // new (SaaS V2) or old (SaaS V1)
	ParentID int64  `json:"parentId,omitempty"` // the push it was split from
	Records  int    `json:"records"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// Code and Message are KooGallery's last answer (absent before any,
	// and after attempts that got none).
	Code      string    `json:"code,omitempty"`
	Message   string    `json:"message,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func viewUsagePush(p store.UsagePush) usagePushView {
	return usagePushView{
		ID: p.ID, API: p.API, ParentID: p.ParentID, Records: p.Records, State: string(p.State), Attempts: p.Attempts,
		Code: p.Code, Message: p.Message, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
}

// usageAttemptView is one try at sending a push, with what came back.
type usageAttemptView struct {
	Attempt    int       `json:"attempt"` // 1 for the first
	At         time.Time `json:"at"`
	DurationMS float64   `json:"durationMs"` // Duration in milliseconds, to the microsecond
	HTTPStatus int       `json:"httpStatus"` // 0: no answer came
	Code       string    `json:"code,omitempty"`
	Message    string    `json:"message,omitempty"`
	// Duration is how long the attempt took, for the pages.
	Duration time.Duration `json:"-"`
}

// usagePushDetailView is a push with its exact body (JSON), the periods it
// carries and its attempts (sends), first first, as GET
// /admin/api/usage/pushes/{id} answers it.
type usagePushDetailView struct {
	usagePushView
	Body    json.RawMessage    `json:"body,omitempty"`
	Periods []usagePeriodView  `json:"periods"`
	Sends   []usageAttemptView `json:"sends"`
}

func viewUsagePushDetail(d usagePushData) usagePushDetailView {
	v := usagePushDetailView{
		usagePushView: viewUsagePush(d.push), Body: rawOrString(string(d.push.Body)),
		Periods: viewUsagePeriods(d.periods), Sends: make([]usageAttemptView, 0, len(d.attempts)),
	}
	for _, a := range d.attempts {
		v.Sends = append(v.Sends, usageAttemptView{
			Attempt: a.Attempt, At: a.At.UTC(), DurationMS: millis(a.Duration), Duration: a.Duration,
			HTTPStatus: a.HTTPStatus, Code: a.Code, Message: a.Message,
		})
	}
	return v
}
