package console

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

func TestFormatDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "< 1 ms"}, // recorded in whole milliseconds before schema version 7
		{500 * time.Nanosecond, "500 ns"},
		{time.Microsecond, "1 µs"},
		{42 * time.Microsecond, "42 µs"},
		{420 * time.Microsecond, "420 µs"},
		{999*time.Microsecond + 999*time.Nanosecond, "1 ms"}, // three significant digits,
		{time.Millisecond, "1 ms"},
		{1340 * time.Microsecond, "1.34 ms"},
		{1500 * time.Microsecond, "1.5 ms"},
		{120 * time.Millisecond, "120 ms"},
		{412500 * time.Microsecond, "413 ms"},
		{999960 * time.Microsecond, "1 s"}, // rounds up to a second
		{1250 * time.Millisecond, "1.25 s"},
		{10 * time.Second, "10 s"},
		{2 * time.Minute, "2 min"},
	}
	for _, c := range cases {
		t.Run(c.d.String(), func(t *testing.T) {
			if got := formatDuration(c.d); got != c.want {
				t.Errorf("formatDuration(%v) = %q, want %q", c.d, got, c.want)
			}
		})
	}
}

// TestWebInstanceStatusIsTrue: the list, the instance page and the admin
// API say the same about an instance's status, and name why it is frozen
// only while it is: an instance released while frozen (its row still
// holding the reason, as releasing left it before it cleared it) is
// released, nothing more.
func TestWebInstanceStatusIsTrue(t *testing.T) {
	f := newWebFixture(t, nil)
	cases := []struct {
		id       string
		status   store.InstanceStatus
		frozenBy string // as stored
		page     string // the instance page's status text
		api      string // the API's frozenBy
	}{
		{"inst-rel", store.StatusReleased, "status", "released", ""},
		{"inst-rel-exp", store.StatusReleased, "expiry", "released", ""},
		{"inst-frozen", store.StatusFrozen, "expiry", "frozen (frozen by expiry)", "expiry"},
		{"inst-active", store.StatusActive, "", "active", ""},
	}
	err := f.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, c := range cases {
			inst := store.Instance{ID: c.id, OrderID: "O-" + c.id, OrderLineID: "O-" + c.id + "-000001", Status: c.status,
				FrozenBy: c.frozenBy, OrderState: store.OrderFetched, CreatedAt: t0, UpdatedAt: t0}
			if c.status == store.StatusReleased {
				inst.ReleasedAt = t0
			}
			if _, err := tx.InsertInstance(ctx, inst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cookie := f.login(t)
	list := rowsOf(f.get(t, cookie, "/admin/?limit=1000"), "data-instance-id")
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			if want := fmt.Sprintf("%s: O-%s|O-%s-000001|%s|", c.id, c.id, c.id, c.status); !hasPrefixIn(list, want) {
				t.Errorf("list rows %q: none starts %q", list, want)
			}
			page := f.get(t, cookie, "/admin/instances/"+c.id)
			m := regexp.MustCompile(`<dd data-field="status"[^>]*>([^<]*)</dd>`).FindStringSubmatch(page)
			if m == nil || m[1] != c.page {
				t.Errorf("instance page status %q, want %q", m, c.page)
			}
			var v struct {
				Status   string  `json:"status"`
				FrozenBy *string `json:"frozenBy"`
			}
			f.do(t, "GET", "/admin/api/instances/"+c.id, &v)
			frozenBy := ""
			if v.FrozenBy != nil {
				frozenBy = *v.FrozenBy
			}
			if v.Status != string(c.status) || frozenBy != c.api {
				t.Errorf("API: status %q frozenBy %q, want %q and %q", v.Status, frozenBy, c.status, c.api)
			}
		})
	}
}

func hasPrefixIn(rows []string, prefix string) bool {
	for _, r := range rows {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// TestWebCallDurations: a call answered in less than a millisecond shows
// its microseconds, on the calls page, on its instance's page and in the
// API, instead of "0.0 ms".
func TestWebCallDurations(t *testing.T) {
	f := newWebFixture(t, nil)
	cases := []struct {
		latency time.Duration
		page    string
		api     float64
	}{
		{420 * time.Microsecond, "420 µs", 0.42},
		{1500 * time.Microsecond, "1.5 ms", 1.5},
		{2*time.Second + 345*time.Millisecond, "2.35 s", 2345},
	}
	ids := map[string]string{}
	var wantRows []string // newest first
	for i, c := range cases {
		at := t0.Add(time.Hour + time.Duration(i)*time.Second)
		id, err := f.st.InsertCall(context.Background(), store.Call{
			Interface: "v2", Activity: "queryInstance", InstanceID: "inst-dur", ResultCode: "000000", HTTPStatus: 200,
			Latency: c.latency, CreatedAt: at,
		})
		if err != nil {
			t.Fatal(err)
		}
		ids[c.page] = fmt.Sprint(id)
		wantRows = append([]string{fmt.Sprintf("%d: %s|queryInstance|000000|%s|inst-dur", id, formatTime(at), c.page)}, wantRows...)
	}
	err := f.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, store.Instance{ID: "inst-dur", OrderID: "O-DUR", OrderLineID: "O-DUR-000001",
			Status: store.StatusActive, OrderState: store.OrderFetched, CreatedAt: t0, UpdatedAt: t0})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cookie := f.login(t)
	var api struct {
		Calls []struct {
			ID        int64   `json:"id"`
			LatencyMS float64 `json:"latencyMs"`
		} `json:"calls"`
	}
	f.do(t, "GET", "/admin/api/calls?instance=inst-dur", &api)
	latencies := map[string]float64{}
	for _, c := range api.Calls {
		latencies[fmt.Sprint(c.ID)] = c.LatencyMS
	}
	for _, path := range []string{"/admin/calls?instance=inst-dur", "/admin/instances/inst-dur"} {
		if rows := rowsOf(f.get(t, cookie, path), "data-call-id"); strings.Join(rows, "\n") != strings.Join(wantRows, "\n") {
			t.Errorf("%s: call rows\n%s\nwant\n%s", path, strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
		}
	}
	for _, c := range cases {
		if got := latencies[ids[c.page]]; got != c.api {
			t.Errorf("API latencyMs of call %s = %v, want %v", ids[c.page], got, c.api)
		}
	}
}

// TestWebDoneJobRunAt: a job a call ran at once, before the time a runner
// would have taken it (as newInstance runs its provisioning), shows as
// run when it ran: never after it was last updated.
func TestWebDoneJobRunAt(t *testing.T) {
	f := newWebFixture(t, nil)
	ctx := context.Background()
	// Wall-clock times: the store stamps a job's end with its own clock.
	now := time.Now().UTC().Truncate(time.Second)
	var id int64
	err := f.st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		id, _, err = tx.EnqueueJob(ctx, store.Job{Kind: "provision", Payload: []byte(`{"instanceId":"inst-1"}`),
			MaxAttempts: 3, RunAt: now.Add(time.Hour), CreatedAt: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.ClaimJobByID(ctx, id, "call", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CompleteJob(ctx, id, "call"); err != nil {
		t.Fatal(err)
	}
	cookie := f.login(t)
	for _, path := range []string{"/admin/jobs?state=done", "/admin/instances/inst-1"} {
		page := f.get(t, cookie, path)
		row := regexp.MustCompile(fmt.Sprintf(`(?s)<tr data-job-id="%d".*?</tr>`, id)).FindString(page)
		runAt, updated := shownTime(t, row, "runAt"), shownTime(t, row, "updatedAt")
		if !runAt.Equal(now) || updated.Before(runAt) {
			t.Errorf("%s: done job %d shows Run at %v, Updated %v; want run at %v, updated not before", path, id, runAt, updated, now)
		}
	}
}

// shownTime parses the time a table cell shows.
func shownTime(t *testing.T, row, field string) time.Time {
	t.Helper()
	m := regexp.MustCompile(`<td data-field="` + field + `">([^<]*)</td>`).FindStringSubmatch(row)
	if m == nil {
		t.Fatalf("no %s cell in row %q", field, row)
	}
	at, err := time.Parse("2006-01-02 15:04:05 UTC", m[1])
	if err != nil {
		t.Fatalf("%s cell %q: %v", field, m[1], err)
	}
	return at
}
