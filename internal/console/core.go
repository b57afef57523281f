package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/tenant"
)

// core holds the queries and repair actions that the JSON API and the web
// console share, so both read the same parameters and apply the same rules.
type core struct {
	store     store.Store
	service   *instance.Service // nil: reprovisioning is not available
	tenantSvc *tenant.Service   // nil: re-delivery is not available
	// grantRetrier re-runs a failed license grant; nil: not available.
	grantRetrier GrantRetrier
	// deviceReleaser frees a license code's seat; nil: not available.
	deviceReleaser DeviceReleaser
	// pushRetrier sends a pending usage push now; nil: not available.
	pushRetrier UsagePushes
	now         func() time.Time
	log         *slog.Logger
	name        string // "admin api" or "admin console", for log lines
}

func newCore(st store.Store, svc *instance.Service, tenants *tenant.Service, now func() time.Time, log *slog.Logger, name string) *core {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &core{store: st, service: svc, tenantSvc: tenants, now: now, log: log, name: name}
}

// statusError is a failure as a client sees it: an HTTP status and a
// message that is safe to show.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func errorStatus(status int, msg string) error { return &statusError{status: status, msg: msg} }

// asStatus returns the status and client message of err; anything that is
// not a statusError is an internal error whose details stay in the log.
func asStatus(err error) (int, string) {
	var se *statusError
	if errors.As(err, &se) {
		return se.status, se.msg
	}
	return http.StatusInternalServerError, "internal error"
}

// internal logs the cause and returns a generic 500: store errors may carry
// SQL or paths that are no business of an HTTP client.
func (c *core) internal(what string, err error) error {
	c.log.Error(c.name+": "+what, "err", err)
	return errorStatus(http.StatusInternalServerError, "internal error: "+what)
}

func badRequest(err error) error { return errorStatus(http.StatusBadRequest, err.Error()) }

// instances lists instances selected by the query parameters status, order,
// test, after and limit. next is the cursor of the following page, empty on
// the last one.
func (c *core) instances(ctx context.Context, q url.Values) (list []store.Instance, next string, err error) {
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.InstanceFilter{
		Status:  store.InstanceStatus(q.Get("status")),
		OrderID: q.Get("order"),
		AfterID: q.Get("after"),
		Limit:   limit,
	}
	switch f.Status {
	case "", store.StatusProvisioning, store.StatusActive, store.StatusFrozen, store.StatusFailed, store.StatusReleased:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "status: want provisioning, active, frozen, failed or released")
	}
	if v := q.Get("test"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, "", errorStatus(http.StatusBadRequest, "test: want true or false")
		}
		f.Test = &b
	}
	list, err = c.store.Instances(ctx, f)
	if err != nil {
		return nil, "", c.internal("list instances", err)
	}
	if len(list) == limit {
		next = list[len(list)-1].ID
	}
	return list, next, nil
}

// instance returns one instance and its calls, newest first (at most
// maxLimit).
func (c *core) instance(ctx context.Context, id string) (store.Instance, []store.Call, error) {
	inst, err := c.store.Instance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return inst, nil, errorStatus(http.StatusNotFound, "instance "+strconv.Quote(id)+" not found")
	}
	if err != nil {
		return inst, nil, c.internal("get instance", err)
	}
	calls, err := c.store.Calls(ctx, store.CallFilter{InstanceID: id, Limit: maxLimit})
	if err != nil {
		return inst, nil, c.internal("list calls of instance", err)
	}
	return inst, calls, nil
}

// tenants lists joint-operation tenants selected by the query parameters
// status, after and limit. next is the cursor of the following page, empty
// on the last one.
func (c *core) tenants(ctx context.Context, q url.Values) (list []store.Tenant, next string, err error) {
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.TenantFilter{Status: store.TenantStatus(q.Get("status")), AfterID: q.Get("after"), Limit: limit}
	switch f.Status {
	case "", store.TenantActive, store.TenantDeleted:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "status: want active or deleted")
	}
	list, err = c.store.Tenants(ctx, f)
	if err != nil {
		return nil, "", c.internal("list tenants", err)
	}
	if len(list) == limit {
		next = list[len(list)-1].ID
	}
	return list, next, nil
}

// tenantData is one tenant with everything the Kit synced for it and its
// newest outbox events.
type tenantData struct {
	tenant store.Tenant
	apps   []store.TenantApp
	users  []store.TenantUser
	orgs   []store.TenantOrg
	events []store.TenantEvent
}

// tenantEventsShown is how many of a tenant's newest outbox events the API
// and the console show.
const tenantEventsShown = defaultLimit

// tenant returns tenant id with its apps, users, departments and newest
// events.
func (c *core) tenant(ctx context.Context, id string) (tenantData, error) {
	var d tenantData
	var err error
	d.tenant, err = c.store.Tenant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return d, errorStatus(http.StatusNotFound, "tenant "+strconv.Quote(id)+" not found")
	}
	if err != nil {
		return d, c.internal("get tenant", err)
	}
	if d.apps, err = c.store.TenantApps(ctx, id); err != nil {
		return d, c.internal("list apps of tenant", err)
	}
	if d.users, err = c.store.TenantUsers(ctx, id); err != nil {
		return d, c.internal("list users of tenant", err)
	}
	if d.orgs, err = c.store.TenantOrgs(ctx, id); err != nil {
		return d, c.internal("list departments of tenant", err)
	}
	if d.events, err = c.store.TenantEvents(ctx, id, tenantEventsShown); err != nil {
		return d, c.internal("list events of tenant", err)
	}
	return d, nil
}

// tenantCalls returns the ledger's Kit calls about tenant id, newest first
// (at most maxLimit).
func (c *core) tenantCalls(ctx context.Context, id string) ([]store.Call, error) {
	calls, err := c.store.Calls(ctx, store.CallFilter{TenantID: id, Limit: maxLimit})
	if err != nil {
		return nil, c.internal("list calls of tenant", err)
	}
	return calls, nil
}

// redeliver sends the failed outbox event of tenant id whose Seq is the
// decimal text seqText to the vendor again (tenant.Service.Redeliver) and
// returns the event as it is afterwards: pending, its attempts and error
// cleared, with a fresh delivery job.
func (c *core) redeliver(ctx context.Context, id, seqText string) (store.TenantEvent, error) {
	if c.tenantSvc == nil {
		return store.TenantEvent{}, errorStatus(http.StatusInternalServerError, "re-delivery is not available")
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq <= 0 {
		return store.TenantEvent{}, errorStatus(http.StatusBadRequest, "seq: want a positive integer, got "+strconv.Quote(seqText))
	}
	event := "event " + strconv.FormatInt(seq, 10) + " of tenant " + strconv.Quote(id)
	ev, err := c.tenantSvc.Redeliver(ctx, id, seq)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.TenantEvent{}, errorStatus(http.StatusNotFound, event+" not found")
	case errors.Is(err, store.ErrConflict):
		return store.TenantEvent{}, errorStatus(http.StatusConflict, event+" is not failed: only a failed event can be re-delivered")
	case err != nil:
		return store.TenantEvent{}, c.internal("redeliver tenant event", err)
	}
	c.log.Info("admin re-delivered tenant event", "tenant", id, "seq", seq, "type", ev.Type, "via", c.name)
	return ev, nil
}

// reprovision re-runs the provisioning of instance id and returns the
// instance as it is afterwards.
func (c *core) reprovision(ctx context.Context, id string) (store.Instance, error) {
	if c.service == nil {
		return store.Instance{}, errorStatus(http.StatusInternalServerError, "reprovisioning is not available")
	}
	notFound := errorStatus(http.StatusNotFound, "instance "+strconv.Quote(id)+" not found")
	if _, err := c.store.Instance(ctx, id); errors.Is(err, store.ErrNotFound) {
		return store.Instance{}, notFound
	} else if err != nil {
		return store.Instance{}, c.internal("get instance", err)
	}
	if err := c.service.Reprovision(ctx, id); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return store.Instance{}, notFound
		case errors.Is(err, instance.ErrWrongState), errors.Is(err, store.ErrConflict):
			// Only failed (or stuck) instances can be re-run: a conflict
			// with the instance's state that the caller can read and act on.
			return store.Instance{}, errorStatus(http.StatusConflict, "instance "+strconv.Quote(id)+" cannot be reprovisioned now: "+err.Error())
		default:
			return store.Instance{}, c.internal("reprovision", err)
		}
	}
	c.log.Info("admin reprovisioned instance", "instance", id, "via", c.name)
	inst, err := c.store.Instance(ctx, id)
	if err != nil {
		return store.Instance{}, c.internal("get instance", err)
	}
	return inst, nil
}

// calls lists the ledger, newest first, selected by the query parameters
// activity, instance, order, tenant, code, since, until, before and limit.
func (c *core) calls(ctx context.Context, q url.Values) (calls []store.Call, next string, err error) {
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.CallFilter{
		Activity:   q.Get("activity"),
		InstanceID: q.Get("instance"),
		OrderID:    q.Get("order"),
		TenantID:   q.Get("tenant"),
		ResultCode: q.Get("code"),
		Limit:      limit,
	}
	if f.Since, err = parseTime("since", q.Get("since")); err == nil {
		f.Until, err = parseTime("until", q.Get("until"))
	}
	if err == nil {
		f.BeforeID, err = parseID("before", q.Get("before"))
	}
	if err != nil {
		return nil, "", badRequest(err)
	}
	calls, err = c.store.Calls(ctx, f)
	if err != nil {
		return nil, "", c.internal("list calls", err)
	}
	if len(calls) == limit {
		next = strconv.FormatInt(calls[len(calls)-1].ID, 10)
	}
	return calls, next, nil
}

// jobs lists background jobs, newest first, selected by the query
// parameters kind, state, before and limit.
func (c *core) jobs(ctx context.Context, q url.Values) (jobs []store.Job, next string, err error) {
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.JobFilter{Kind: q.Get("kind"), State: store.JobState(q.Get("state")), Limit: limit}
	switch f.State {
	case "", store.JobAvailable, store.JobRunning, store.JobDone, store.JobDead:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "state: want available, running, done or dead")
	}
	if f.BeforeID, err = parseID("before", q.Get("before")); err != nil {
		return nil, "", badRequest(err)
	}
	jobs, err = c.store.Jobs(ctx, f)
	if err != nil {
		return nil, "", c.internal("list jobs", err)
	}
	if len(jobs) == limit {
		next = strconv.FormatInt(jobs[len(jobs)-1].ID, 10)
	}
	return jobs, next, nil
}

// orders lists order notifications, newest first, selected by the query
// parameters status, order, before and limit.
func (c *core) orders(ctx context.Context, q url.Values) (list []store.OrderNotification, next string, err error) {
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.OrderNotificationFilter{Status: store.OrderNotificationStatus(q.Get("status")), OrderID: q.Get("order"), Limit: limit}
	switch f.Status {
	case "", store.NotificationPending, store.NotificationDelivered, store.NotificationFailed:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "status: want pending, delivered or failed")
	}
	if f.BeforeID, err = parseID("before", q.Get("before")); err != nil {
		return nil, "", badRequest(err)
	}
	list, err = c.store.OrderNotifications(ctx, f)
	if err != nil {
		return nil, "", c.internal("list order notifications", err)
	}
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return list, next, nil
}

// job returns the job whose id is the decimal text idText.
func (c *core) job(ctx context.Context, idText string) (store.Job, error) {
	id, err := jobID(idText)
	if err != nil {
		return store.Job{}, err
	}
	j, err := c.store.Job(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return j, errorStatus(http.StatusNotFound, "job "+strconv.FormatInt(id, 10)+" not found")
	}
	if err != nil {
		return j, c.internal("get job", err)
	}
	return j, nil
}

// retryJob makes a dead or done job available again and returns it.
func (c *core) retryJob(ctx context.Context, idText string) (store.Job, error) {
	id, err := jobID(idText)
	if err != nil {
		return store.Job{}, err
	}
	err = c.store.ReviveJob(ctx, id, c.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Job{}, errorStatus(http.StatusNotFound, "job "+strconv.FormatInt(id, 10)+" not found")
	case errors.Is(err, store.ErrConflict):
		return store.Job{}, errorStatus(http.StatusConflict, "job "+strconv.FormatInt(id, 10)+" is not dead or done: it is still queued or running")
	case err != nil:
		return store.Job{}, c.internal("revive job", err)
	}
	j, err := c.store.Job(ctx, id)
	if err != nil {
		return store.Job{}, c.internal("get job", err)
	}
	c.log.Info("admin revived job", "job_id", id, "kind", j.Kind, "via", c.name)
	return j, nil
}

func jobID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, errorStatus(http.StatusNotFound, "job "+strconv.Quote(s)+" not found")
	}
	return id, nil
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, errors.New("limit: want a number from 1 to 1000")
	}
	return n, nil
}

func parseID(name, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New(name + ": want a positive id")
	}
	return n, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New(name + ": want an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t, nil
}
