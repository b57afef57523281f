package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// rowsPerInsert is how many rows one multi-row INSERT writes: 500 users
// take 5 statements, and a statement stays far below SQLite's limit of
// bound parameters.
const rowsPerInsert = 100

const tenantColumns = `id, code, name, domain_name, instance_id, order_id, test, status,
	created_at, updated_at, deleted_at, version`

func scanTenant(sc scanner) (store.Tenant, error) {
	var (
		tn                        store.Tenant
		test                      int64
		created, updated, deleted int64
		status                    string
	)
	if err := sc.Scan(&tn.ID, &tn.Code, &tn.Name, &tn.DomainName, &tn.InstanceID, &tn.OrderID, &test, &status,
		&created, &updated, &deleted, &tn.Version); err != nil {
		return store.Tenant{}, err
	}
	tn.Test = test != 0
	tn.Status = store.TenantStatus(status)
	tn.CreatedAt = fromMS(created)
	tn.UpdatedAt = fromMS(updated)
	tn.DeletedAt = fromMS(deleted)
	return tn, nil
}

const tenantAppColumns = `tenant_id, app_id, client_id, client_secret_sealed, instance_id, created_at, updated_at`

func scanTenantApp(sc scanner) (store.TenantApp, error) {
	var (
		a                store.TenantApp
		created, updated int64
	)
	if err := sc.Scan(&a.TenantID, &a.AppID, &a.ClientID, &a.ClientSecretSealed, &a.InstanceID,
		&created, &updated); err != nil {
		return store.TenantApp{}, err
	}
	a.CreatedAt = fromMS(created)
	a.UpdatedAt = fromMS(updated)
	return a, nil
}

const tenantUserColumns = `tenant_id, app_id, user_name, name, org_code, role, enable, revoked,
	position, employee_code, employee_type, mobile_sealed, email_sealed, work_place, entry_date,
	sync_time, created_at, updated_at`

// tenantUserColumnCount is the number of tenantUserColumns.
const tenantUserColumnCount = 18

func scanTenantUser(sc scanner) (store.TenantUser, error) {
	var (
		u                                 store.TenantUser
		enable, revoked, created, updated int64
	)
	if err := sc.Scan(&u.TenantID, &u.AppID, &u.UserName, &u.Name, &u.OrgCode, &u.Role, &enable, &revoked,
		&u.Position, &u.EmployeeCode, &u.EmployeeType, &u.MobileSealed, &u.EmailSealed, &u.WorkPlace, &u.EntryDate,
		&u.SyncTime, &created, &updated); err != nil {
		return store.TenantUser{}, err
	}
	u.Enable = enable != 0
	u.Revoked = revoked != 0
	u.CreatedAt = fromMS(created)
	u.UpdatedAt = fromMS(updated)
	return u, nil
}

// tenantUserArgs lists u in the order of tenantUserColumns.
func tenantUserArgs(u store.TenantUser, now time.Time) []any {
	return []any{u.TenantID, u.AppID, u.UserName, u.Name, u.OrgCode, u.Role, boolInt(u.Enable), boolInt(u.Revoked),
		u.Position, u.EmployeeCode, u.EmployeeType, u.MobileSealed, u.EmailSealed, u.WorkPlace, u.EntryDate,
		u.SyncTime, ms(or(u.CreatedAt, now)), ms(or(u.UpdatedAt, now))}
}

const tenantOrgColumns = `tenant_id, org_code, name, parent_code, created_at, updated_at`

func scanTenantOrg(sc scanner) (store.TenantOrg, error) {
	var (
		o                store.TenantOrg
		created, updated int64
	)
	if err := sc.Scan(&o.TenantID, &o.OrgCode, &o.Name, &o.ParentCode, &created, &updated); err != nil {
		return store.TenantOrg{}, err
	}
	o.CreatedAt = fromMS(created)
	o.UpdatedAt = fromMS(updated)
	return o, nil
}

// upsertTenantOrgs is the statement that writes departments, followed by
// their rows.
const upsertTenantOrgs = `INSERT INTO tenant_orgs (` + tenantOrgColumns + `) VALUES `

// tenantOrgsConflict ends upsertTenantOrgs: an existing department is
// overwritten, its CreatedAt kept.
const tenantOrgsConflict = ` ON CONFLICT (tenant_id, org_code) DO UPDATE SET
	name = excluded.name, parent_code = excluded.parent_code, updated_at = excluded.updated_at`

const tenantEventColumns = `id, tenant_id, seq, event_id, type, payload_sealed, state, last_error,
	attempts, created_at, updated_at`

func scanTenantEvent(sc scanner) (store.TenantEvent, error) {
	var (
		e                store.TenantEvent
		state            string
		created, updated int64
	)
	if err := sc.Scan(&e.ID, &e.TenantID, &e.Seq, &e.EventID, &e.Type, &e.PayloadSealed, &state, &e.LastError,
		&e.Attempts, &created, &updated); err != nil {
		return store.TenantEvent{}, err
	}
	e.State = store.TenantEventState(state)
	e.CreatedAt = fromMS(created)
	e.UpdatedAt = fromMS(updated)
	return e, nil
}

// one reads the single row of query with scan; store.ErrNotFound if there
// is none.
func one[T any](ctx context.Context, q querier, what, query string, scan func(scanner) (T, error), args ...any) (T, error) {
	v, err := scan(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, store.ErrNotFound
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("sqlite: %s: %w", what, mapErr(err))
	}
	return v, nil
}

// Tenant reads the tenant with id, deleted or not; store.ErrNotFound if
// there is none.
func (s *Store) Tenant(ctx context.Context, id string) (_ store.Tenant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.Tenant(ctx, id)
}

// Tenant reads the tenant with id, deleted or not; store.ErrNotFound if
// there is none.
func (r reader) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	return one(ctx, r.q, "read tenant", `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, scanTenant, id)
}

// TenantApp reads one app of a tenant; store.ErrNotFound if there is none.
func (s *Store) TenantApp(ctx context.Context, tenantID, appID string) (_ store.TenantApp, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.TenantApp(ctx, tenantID, appID)
}

// TenantApp reads one app of a tenant; store.ErrNotFound if there is none.
func (r reader) TenantApp(ctx context.Context, tenantID, appID string) (store.TenantApp, error) {
	return one(ctx, r.q, "read tenant app", `SELECT `+tenantAppColumns+` FROM tenant_apps
		WHERE tenant_id = ? AND app_id = ?`, scanTenantApp, tenantID, appID)
}

// TenantApps lists a tenant's apps by AppID.
func (s *Store) TenantApps(ctx context.Context, tenantID string) (_ []store.TenantApp, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.TenantApps(ctx, tenantID)
}

// TenantApps lists a tenant's apps by AppID.
func (r reader) TenantApps(ctx context.Context, tenantID string) ([]store.TenantApp, error) {
	return queryAll(ctx, r.q, "list tenant apps", `SELECT `+tenantAppColumns+` FROM tenant_apps
		WHERE tenant_id = ? ORDER BY app_id`, []any{tenantID}, scanTenantApp)
}

// TenantUsers lists a tenant's users by (AppID, UserName).
func (s *Store) TenantUsers(ctx context.Context, tenantID string) (_ []store.TenantUser, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.TenantUsers(ctx, tenantID)
}

// TenantUsers lists a tenant's users by (AppID, UserName).
func (r reader) TenantUsers(ctx context.Context, tenantID string) ([]store.TenantUser, error) {
	return queryAll(ctx, r.q, "list tenant users", `SELECT `+tenantUserColumns+` FROM tenant_users
		WHERE tenant_id = ? ORDER BY app_id, user_name`, []any{tenantID}, scanTenantUser)
}

// TenantOrgs lists a tenant's departments by OrgCode.
func (s *Store) TenantOrgs(ctx context.Context, tenantID string) (_ []store.TenantOrg, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.TenantOrgs(ctx, tenantID)
}

// TenantOrgs lists a tenant's departments by OrgCode.
func (r reader) TenantOrgs(ctx context.Context, tenantID string) ([]store.TenantOrg, error) {
	return queryAll(ctx, r.q, "list tenant orgs", `SELECT `+tenantOrgColumns+` FROM tenant_orgs
		WHERE tenant_id = ? ORDER BY org_code`, []any{tenantID}, scanTenantOrg)
}

// TenantEvent reads the outbox event with id; store.ErrNotFound if there
// is none.
func (s *Store) TenantEvent(ctx context.Context, id int64) (_ store.TenantEvent, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.TenantEvent(ctx, id)
}

// TenantEvent reads the outbox event with id; store.ErrNotFound if there
// is none.
func (r reader) TenantEvent(ctx context.Context, id int64) (store.TenantEvent, error) {
	return one(ctx, r.q, "read tenant event", `SELECT `+tenantEventColumns+` FROM tenant_events WHERE id = ?`,
		scanTenantEvent, id)
}

// NextTenantEvent reads the pending event of tenantID with the lowest Seq;
// store.ErrNotFound when none is pending.
func (s *Store) NextTenantEvent(ctx context.Context, tenantID string) (_ store.TenantEvent, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.NextTenantEvent(ctx, tenantID)
}

// NextTenantEvent reads the pending event of tenantID with the lowest Seq;
// store.ErrNotFound when none is pending.
func (r reader) NextTenantEvent(ctx context.Context, tenantID string) (store.TenantEvent, error) {
	return one(ctx, r.q, "read next tenant event", `SELECT `+tenantEventColumns+` FROM tenant_events
		WHERE tenant_id = ? AND state = 'pending' ORDER BY seq LIMIT 1`, scanTenantEvent, tenantID)
}

// Tenants lists the tenants matching f by ID (byte order).
func (s *Store) Tenants(ctx context.Context, f store.TenantFilter) (_ []store.Tenant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	if f.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, string(f.Status))
	}
	if f.AfterID != "" {
		where = append(where, `id > ?`)
		args = append(args, f.AfterID)
	}
	query := `SELECT ` + tenantColumns + ` FROM tenants`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit(f.Limit))
	return queryAll(ctx, s.db, "list tenants", query, args, scanTenant)
}

// TenantEvents lists a tenant's events, highest Seq first, at most limit
// (0 means 100, at most 1000).
func (s *Store) TenantEvents(ctx context.Context, tenantID string, n int) (_ []store.TenantEvent, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list tenant events", `SELECT `+tenantEventColumns+` FROM tenant_events
		WHERE tenant_id = ? ORDER BY seq DESC LIMIT ?`, []any{tenantID, limit(n)}, scanTenantEvent)
}

// LeaseTenantEvents gives worker the delivery lease of tenantID's outbox
// until now+lease when nobody holds it, its holder's lease ended before
// now, or worker holds it already; it reports whether worker holds it. An
// empty worker is an error. One
// upsert of the tenant's stream row (created if missing) decides, under
// SQLite's write lock.
func (s *Store) LeaseTenantEvents(ctx context.Context, tenantID, worker string, now time.Time, lease time.Duration) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if worker == "" {
		return false, errors.New("sqlite: lease tenant events: empty worker")
	}
	res, err := s.exec(ctx, `INSERT INTO tenant_streams (tenant_id, leased_by, leased_until)
		VALUES (:tenant, :worker, :until)
		ON CONFLICT (tenant_id) DO UPDATE SET leased_by = excluded.leased_by, leased_until = excluded.leased_until
		WHERE tenant_streams.leased_by = '' OR tenant_streams.leased_by = excluded.leased_by
			OR tenant_streams.leased_until < :now`,
		sql.Named("tenant", tenantID), sql.Named("worker", worker),
		sql.Named("until", ms(now.Add(lease))), sql.Named("now", ms(now)))
	if err != nil {
		return false, fmt.Errorf("sqlite: lease tenant events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: lease tenant events: %w", mapErr(err))
	}
	return n == 1, nil
}

// ReleaseTenantEvents ends worker's lease of tenantID's outbox; nothing
// happens when worker does not hold it.
func (s *Store) ReleaseTenantEvents(ctx context.Context, tenantID, worker string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if _, err := s.exec(ctx, `UPDATE tenant_streams SET leased_by = '', leased_until = 0
		WHERE tenant_id = ? AND leased_by = ?`, tenantID, worker); err != nil {
		return fmt.Errorf("sqlite: release tenant events: %w", err)
	}
	return nil
}

// SetTenantEventState sets the State, LastError and UpdatedAt (now, or the
// wall clock when now is zero) of event id; store.ErrNotFound if there is
// none.
func (s *Store) SetTenantEventState(ctx context.Context, id int64, state store.TenantEventState, lastErr string, now time.Time) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `UPDATE tenant_events SET state = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		string(state), lastErr, ms(or(now, time.Now())), id)
	if err != nil {
		return fmt.Errorf("sqlite: set tenant event state: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: set tenant event state: %w", mapErr(err))
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// FailTenantEventAttempt records one failed delivery of event id, in one
// UPDATE … RETURNING: Attempts incremented, LastError and UpdatedAt set,
// and a pending event failed once Attempts reaches maxAttempts.
func (s *Store) FailTenantEventAttempt(ctx context.Context, id int64, lastErr string, maxAttempts int, now time.Time) (_ store.TenantEvent, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var e store.TenantEvent
	err = s.run(ctx, true, func(ctx context.Context, t *cachedTx) error {
		var err error
		e, err = scanTenantEvent(t.QueryRowContext(ctx, `UPDATE tenant_events SET attempts = attempts + 1,
			last_error = ?, updated_at = ?,
			state = CASE WHEN state = 'pending' AND attempts + 1 >= ? THEN 'failed' ELSE state END
			WHERE id = ? RETURNING `+tenantEventColumns, lastErr, ms(or(now, time.Now())), maxAttempts, id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.TenantEvent{}, store.ErrNotFound
	}
	if err != nil {
		return store.TenantEvent{}, fmt.Errorf("sqlite: record tenant event attempt: %w", mapErr(err))
	}
	return e, nil
}

// LockTenant creates tenantID's stream row if needed. SQLite's single
// writer serialises transactions already; the row is created here as in
// PostgreSQL, where the same upsert locks it.
func (t *tx) LockTenant(ctx context.Context, tenantID string) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO tenant_streams (tenant_id) VALUES (?)
		ON CONFLICT (tenant_id) DO UPDATE SET next_seq = tenant_streams.next_seq`, tenantID); err != nil {
		return fmt.Errorf("sqlite: lock tenant: %w", mapErr(err))
	}
	return nil
}

// UpsertTenant inserts tn, or overwrites the stored tenant with its ID:
// every field but CreatedAt, and the Version incremented. tn.Version is
// ignored; an empty Status is stored as active, zero CreatedAt and
// UpdatedAt as now.
func (t *tx) UpsertTenant(ctx context.Context, tn store.Tenant) error {
	now := time.Now()
	status := tn.Status
	if status == "" {
		status = store.TenantActive
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO tenants (`+tenantColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
			domain_name = excluded.domain_name, instance_id = excluded.instance_id, order_id = excluded.order_id,
			test = excluded.test, status = excluded.status, updated_at = excluded.updated_at,
			deleted_at = excluded.deleted_at, version = tenants.version + 1`,
		tn.ID, tn.Code, tn.Name, tn.DomainName, tn.InstanceID, tn.OrderID, boolInt(tn.Test), string(status),
		ms(or(tn.CreatedAt, now)), ms(or(tn.UpdatedAt, now)), ms(tn.DeletedAt)); err != nil {
		return fmt.Errorf("sqlite: upsert tenant: %w", mapErr(err))
	}
	return nil
}

// UpsertTenantApp inserts a, or overwrites the stored app of (TenantID,
// AppID) but its CreatedAt. Zero times are stored as now.
func (t *tx) UpsertTenantApp(ctx context.Context, a store.TenantApp) error {
	now := time.Now()
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO tenant_apps (`+tenantAppColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, app_id) DO UPDATE SET client_id = excluded.client_id,
			client_secret_sealed = excluded.client_secret_sealed, instance_id = excluded.instance_id,
			updated_at = excluded.updated_at`,
		a.TenantID, a.AppID, a.ClientID, a.ClientSecretSealed, a.InstanceID,
		ms(or(a.CreatedAt, now)), ms(or(a.UpdatedAt, now))); err != nil {
		return fmt.Errorf("sqlite: upsert tenant app: %w", mapErr(err))
	}
	return nil
}

// DeleteTenantApp deletes an app of a tenant and reports whether it
// existed. Its users stay.
func (t *tx) DeleteTenantApp(ctx context.Context, tenantID, appID string) (bool, error) {
	n, err := t.delete(ctx, "delete tenant app", `DELETE FROM tenant_apps WHERE tenant_id = ? AND app_id = ?`, tenantID, appID)
	return n == 1, err
}

// UpsertTenantUsers inserts or overwrites users by (TenantID, AppID,
// UserName), CreatedAt kept, with one multi-row statement per
// rowsPerInsert users. When users names one key twice, the last wins. Zero
// times are stored as now.
func (t *tx) UpsertTenantUsers(ctx context.Context, users []store.TenantUser) error {
	users = lastByKey(users, func(u store.TenantUser) [3]string { return [3]string{u.TenantID, u.AppID, u.UserName} })
	now := time.Now()
	return t.insertRows(ctx, "upsert tenant users", `INSERT INTO tenant_users (`+tenantUserColumns+`) VALUES `,
		` ON CONFLICT (tenant_id, app_id, user_name) DO UPDATE SET name = excluded.name, org_code = excluded.org_code,
			role = excluded.role, enable = excluded.enable, revoked = excluded.revoked, position = excluded.position,
			employee_code = excluded.employee_code, employee_type = excluded.employee_type,
			mobile_sealed = excluded.mobile_sealed, email_sealed = excluded.email_sealed,
			work_place = excluded.work_place, entry_date = excluded.entry_date, sync_time = excluded.sync_time,
			updated_at = excluded.updated_at`,
		tenantUserColumnCount, len(users), func(i int) []any { return tenantUserArgs(users[i], now) })
}

// DeleteTenantUsers deletes the named users of an app and returns how many
// existed.
func (t *tx) DeleteTenantUsers(ctx context.Context, tenantID, appID string, userNames []string) (int64, error) {
	if len(userNames) == 0 {
		return 0, nil
	}
	names, err := json.Marshal(userNames)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete tenant users: %w", err)
	}
	return t.delete(ctx, "delete tenant users", `DELETE FROM tenant_users WHERE tenant_id = ? AND app_id = ?
		AND user_name IN (SELECT value FROM json_each(?))`, tenantID, appID, string(names))
}

// UpsertTenantOrg inserts or overwrites a department by (TenantID,
// OrgCode), CreatedAt kept. Zero times are stored as now.
func (t *tx) UpsertTenantOrg(ctx context.Context, o store.TenantOrg) error {
	return t.insertOrgs(ctx, "upsert tenant org", o.TenantID, []store.TenantOrg{o})
}

// DeleteTenantOrg deletes a department and reports whether it existed.
func (t *tx) DeleteTenantOrg(ctx context.Context, tenantID, orgCode string) (bool, error) {
	n, err := t.delete(ctx, "delete tenant org", `DELETE FROM tenant_orgs WHERE tenant_id = ? AND org_code = ?`, tenantID, orgCode)
	return n == 1, err
}

// ReplaceTenantOrgs deletes the tenant's departments and inserts orgs, all
// under tenantID, in the transaction. When orgs names one OrgCode twice,
// the last wins. Zero times are stored as now.
func (t *tx) ReplaceTenantOrgs(ctx context.Context, tenantID string, orgs []store.TenantOrg) error {
	if _, err := t.delete(ctx, "replace tenant orgs", `DELETE FROM tenant_orgs WHERE tenant_id = ?`, tenantID); err != nil {
		return err
	}
	return t.insertOrgs(ctx, "replace tenant orgs", tenantID, lastByKey(orgs, func(o store.TenantOrg) string { return o.OrgCode }))
}

// insertOrgs upserts orgs, whose OrgCodes are distinct, under tenantID.
func (t *tx) insertOrgs(ctx context.Context, what, tenantID string, orgs []store.TenantOrg) error {
	now := time.Now()
	return t.insertRows(ctx, what, upsertTenantOrgs, tenantOrgsConflict, 6, len(orgs), func(i int) []any {
		o := orgs[i]
		return []any{tenantID, o.OrgCode, o.Name, o.ParentCode, ms(or(o.CreatedAt, now)), ms(or(o.UpdatedAt, now))}
	})
}

// ClearTenant deletes every app, user and department of a tenant; the
// tenant row, its events and its stream stay.
func (t *tx) ClearTenant(ctx context.Context, tenantID string) error {
	for _, table := range []string{"tenant_apps", "tenant_users", "tenant_orgs"} {
		if _, err := t.delete(ctx, "clear tenant", `DELETE FROM `+table+` WHERE tenant_id = ?`, tenantID); err != nil {
			return err
		}
	}
	return nil
}

// InsertTenantEvent appends e to its tenant's outbox with the tenant's next
// Seq, taken from the tenant's stream row by one upsert, and returns its ID
// and Seq. When an event with e.EventID is stored already, nothing is
// inserted (and no Seq used up): the stored event's ID and Seq are
// returned with inserted false. An empty State is stored as pending, zero
// times as now; e.ID and e.Seq are ignored.
func (t *tx) InsertTenantEvent(ctx context.Context, e store.TenantEvent) (id, seq int64, inserted bool, err error) {
	if e.TenantID == "" || e.EventID == "" {
		return 0, 0, false, fmt.Errorf("sqlite: insert tenant event: tenant id %q and event id %q must not be empty", e.TenantID, e.EventID)
	}
	stored := func() (int64, int64, bool, error) {
		err := t.tx.QueryRowContext(ctx, `SELECT id, seq FROM tenant_events WHERE event_id = ?`, e.EventID).Scan(&id, &seq)
		return id, seq, err == nil, err
	}
	if id, seq, ok, err := stored(); ok || !errors.Is(err, sql.ErrNoRows) {
		if err != nil {
			return 0, 0, false, fmt.Errorf("sqlite: insert tenant event: find event %s: %w", e.EventID, mapErr(err))
		}
		return id, seq, false, nil
	}
	if err := t.tx.QueryRowContext(ctx, `INSERT INTO tenant_streams (tenant_id, next_seq) VALUES (?, 2)
		ON CONFLICT (tenant_id) DO UPDATE SET next_seq = tenant_streams.next_seq + 1
		RETURNING next_seq - 1`, e.TenantID).Scan(&seq); err != nil {
		return 0, 0, false, fmt.Errorf("sqlite: insert tenant event: next seq of tenant %s: %w", e.TenantID, mapErr(err))
	}
	now := time.Now()
	state := e.State
	if state == "" {
		state = store.TenantEventPending
	}
	err = t.tx.QueryRowContext(ctx, `INSERT INTO tenant_events
		(tenant_id, seq, event_id, type, payload_sealed, state, last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO NOTHING
		RETURNING id`,
		e.TenantID, seq, e.EventID, e.Type, e.PayloadSealed, string(state), e.LastError,
		ms(or(e.CreatedAt, now)), ms(or(e.UpdatedAt, now))).Scan(&id)
	if err == nil {
		return id, seq, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, fmt.Errorf("sqlite: insert tenant event: %w", mapErr(err))
	}
	// Stored since the first look (by a concurrent transaction, where the
	// database allows one): give the Seq back, which this transaction
	// still holds, and answer with the stored event.
	if _, err := t.tx.ExecContext(ctx, `UPDATE tenant_streams SET next_seq = next_seq - 1 WHERE tenant_id = ?`, e.TenantID); err != nil {
		return 0, 0, false, fmt.Errorf("sqlite: insert tenant event: give back seq: %w", mapErr(err))
	}
	if id, seq, _, err = stored(); err != nil {
		return 0, 0, false, fmt.Errorf("sqlite: insert tenant event: find event %s: %w", e.EventID, mapErr(err))
	}
	return id, seq, false, nil
}

// RedeliverTenantEvent puts the failed event of tenantID with Seq seq back
// to pending (Attempts 0, LastError "", UpdatedAt now or the wall clock
// when now is zero) in one UPDATE … RETURNING, and returns it as stored.
// When no row is updated, a read tells store.ErrNotFound (no such event)
// from store.ErrConflict (it is pending or delivered).
func (t *tx) RedeliverTenantEvent(ctx context.Context, tenantID string, seq int64, now time.Time) (store.TenantEvent, error) {
	e, err := scanTenantEvent(t.tx.QueryRowContext(ctx, `UPDATE tenant_events
		SET state = 'pending', attempts = 0, last_error = '', updated_at = ?
		WHERE tenant_id = ? AND seq = ? AND state = 'failed'
		RETURNING `+tenantEventColumns, ms(or(now, time.Now())), tenantID, seq))
	if err == nil {
		return e, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.TenantEvent{}, fmt.Errorf("sqlite: redeliver event %d of tenant %s: %w", seq, tenantID, mapErr(err))
	}
	var state string
	err = t.tx.QueryRowContext(ctx, `SELECT state FROM tenant_events WHERE tenant_id = ? AND seq = ?`, tenantID, seq).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TenantEvent{}, store.ErrNotFound
	}
	if err != nil {
		return store.TenantEvent{}, fmt.Errorf("sqlite: redeliver event %d of tenant %s: %w", seq, tenantID, mapErr(err))
	}
	return store.TenantEvent{}, fmt.Errorf("sqlite: redeliver event %d of tenant %s: it is %s, not failed: %w", seq, tenantID, state, store.ErrConflict)
}

// delete runs a DELETE and returns how many rows it deleted.
func (t *tx) delete(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", what, mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", what, mapErr(err))
	}
	return n, nil
}

// insertRows writes n rows of cols columns each, args(i) giving row i's
// values, as "head (…), (…), … tail" statements of at most rowsPerInsert
// rows.
func (t *tx) insertRows(ctx context.Context, what, head, tail string, cols, n int, args func(i int) []any) error {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	for from := 0; from < n; from += rowsPerInsert {
		to := min(from+rowsPerInsert, n)
		var b strings.Builder
		b.WriteString(head)
		all := make([]any, 0, (to-from)*cols)
		for i := from; i < to; i++ {
			if i > from {
				b.WriteString(", ")
			}
			b.WriteString(row)
			all = append(all, args(i)...)
		}
		b.WriteString(tail)
		if _, err := t.tx.ExecContext(ctx, b.String(), all...); err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, mapErr(err))
		}
	}
	return nil
}

// lastByKey returns items without those whose key a later item has: the
// last of each key wins, at its own position.
func lastByKey[T any, K comparable](items []T, key func(T) K) []T {
	seen := make(map[K]bool, len(items))
	keep := make([]bool, len(items))
	n := 0
	for i := len(items) - 1; i >= 0; i-- {
		if k := key(items[i]); !seen[k] {
			seen[k], keep[i] = true, true
			n++
		}
	}
	if n == len(items) {
		return items
	}
	out := make([]T, 0, n)
	for i, v := range items {
		if keep[i] {
			out = append(out, v)
		}
	}
	return out
}
