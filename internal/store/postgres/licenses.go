package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koobridge/koobridge/internal/store"
)

const licenseCodeColumns = `code, test, status, expire_time, expire_estimated, order_id, order_line_id, product_id, amount,
	activated_at, checked_at, remote_status, confirmed_at, created_at, updated_at, version`

func scanLicenseCode(row pgx.Row) (store.LicenseCode, error) {
	var (
		c                                   store.LicenseCode
		expire, activated, checked, created *time.Time
		confirmed, updated                  *time.Time
		status                              string
	)
	if err := row.Scan(&c.Code, &c.Test, &status, &expire, &c.ExpireEstimated, &c.OrderID, &c.OrderLineID, &c.ProductID, &c.Amount,
		&activated, &checked, &c.RemoteStatus, &confirmed, &created, &updated, &c.Version); err != nil {
		return store.LicenseCode{}, err
	}
	c.ConfirmedAt = fromTS(confirmed)
	c.Status = store.LicenseStatus(status)
	c.ExpireTime = fromTS(expire)
	c.ActivatedAt = fromTS(activated)
	c.CheckedAt = fromTS(checked)
	c.CreatedAt = fromTS(created)
	c.UpdatedAt = fromTS(updated)
	return c, nil
}

const licenseEventColumns = `id, code, test, kind, source, detail, at`

func scanLicenseEvent(row pgx.Row) (store.LicenseEvent, error) {
	var (
		e  store.LicenseEvent
		at *time.Time
	)
	if err := row.Scan(&e.ID, &e.Code, &e.Test, &e.Kind, &e.Source, &e.Detail, &at); err != nil {
		return store.LicenseEvent{}, err
	}
	e.At = fromTS(at)
	return e, nil
}

const licenseDeviceColumns = `code, test, device, first_seen, last_seen, reported_at`

func scanLicenseDevice(row pgx.Row) (store.LicenseDevice, error) {
	var (
		d                     store.LicenseDevice
		first, last, reported *time.Time
	)
	if err := row.Scan(&d.Code, &d.Test, &d.Device, &first, &last, &reported); err != nil {
		return store.LicenseDevice{}, err
	}
	d.FirstSeen = fromTS(first)
	d.LastSeen = fromTS(last)
	d.ReportedAt = fromTS(reported)
	return d, nil
}

const licenseGrantColumns = `id, kind, grant_key, instance_id, event_id, order_id, product_id, test, state,
	status, expire_time, request, type, file_name, content_sealed, sha256, attempts, last_error, uploaded_at,
	created_at, updated_at, version`

func scanLicenseGrant(row pgx.Row) (store.LicenseGrant, error) {
	var (
		g                                  store.LicenseGrant
		expire, uploaded, created, updated *time.Time
		kind, state, status                string
	)
	if err := row.Scan(&g.ID, &kind, &g.Key, &g.InstanceID, &g.EventID, &g.OrderID, &g.ProductID, &g.Test, &state,
		&status, &expire, &g.Request, &g.Type, &g.FileName, &g.ContentSealed, &g.SHA256, &g.Attempts, &g.LastError,
		&uploaded, &created, &updated, &g.Version); err != nil {
		return store.LicenseGrant{}, err
	}
	g.Kind = store.GrantKind(kind)
	g.State = store.GrantState(state)
	g.Status = store.LicenseStatus(status)
	g.ExpireTime = fromTS(expire)
	g.UploadedAt = fromTS(uploaded)
	g.CreatedAt = fromTS(created)
	g.UpdatedAt = fromTS(updated)
	return g, nil
}

const licenseUploadColumns = `id, grant_id, at, outcome, http_status, code, message`

func scanLicenseUpload(row pgx.Row) (store.LicenseUpload, error) {
	var (
		u  store.LicenseUpload
		at *time.Time
	)
	if err := row.Scan(&u.ID, &u.GrantID, &at, &u.Outcome, &u.HTTPStatus, &u.Code, &u.Message); err != nil {
		return store.LicenseUpload{}, err
	}
	u.At = fromTS(at)
	return u, nil
}

const licenseKeyColumns = `generation, kid, public, private_sealed, created_at`

func scanLicenseKey(row pgx.Row) (store.LicenseKey, error) {
	var (
		k       store.LicenseKey
		created *time.Time
	)
	if err := row.Scan(&k.Generation, &k.ID, &k.Public, &k.PrivateSealed, &created); err != nil {
		return store.LicenseKey{}, err
	}
	k.CreatedAt = fromTS(created)
	return k, nil
}

// isForeignKey reports whether err is a foreign key violation: a row
// naming a code or grant that is not stored. In a transaction it aborts
// the transaction, as every failed statement does in PostgreSQL.
//
// Errors here never name a license code: a code is what unlocks the
// vendor's software, and errors end up in logs.
func isForeignKey(err error) bool {
	return sqlState(err) == "23503"
}

// LicenseCode reads one code; store.ErrNotFound if absent.
func (s *Store) LicenseCode(ctx context.Context, code string, test bool) (_ store.LicenseCode, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.LicenseCode(ctx, code, test)
}

// LicenseCode reads one code; store.ErrNotFound if absent. Inside a
// transaction the row stays locked until it ends: the transactions of one
// code (a production call, an activation counting seats) run one at a
// time.
func (r reader) LicenseCode(ctx context.Context, code string, test bool) (store.LicenseCode, error) {
	return one(ctx, r.q, "read license code", `SELECT `+licenseCodeColumns+` FROM license_codes
		WHERE code = $1 AND test = $2`+r.forUpdate(), scanLicenseCode, txt(code), test)
}

// LicenseDevices lists the devices of one code, oldest FirstSeen first.
func (s *Store) LicenseDevices(ctx context.Context, code string, test bool) (_ []store.LicenseDevice, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.LicenseDevices(ctx, code, test)
}

// LicenseDevices lists the devices of one code, oldest FirstSeen first
// (then by Device, so the order is stable). The rows are not locked: the
// code's row is what serialises the transactions of a code.
func (r reader) LicenseDevices(ctx context.Context, code string, test bool) ([]store.LicenseDevice, error) {
	return queryAll(ctx, r.q, "list license devices", `SELECT `+licenseDeviceColumns+` FROM license_devices
		WHERE code = $1 AND test = $2 ORDER BY first_seen, device`, []any{txt(code), test}, scanLicenseDevice)
}

// LicenseGrant reads the grant of (kind, key); store.ErrNotFound if absent.
func (s *Store) LicenseGrant(ctx context.Context, kind store.GrantKind, key string) (_ store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.LicenseGrant(ctx, kind, key)
}

// LicenseGrant reads the grant of (kind, key); store.ErrNotFound if absent.
// Inside a transaction the row stays locked until it ends.
func (r reader) LicenseGrant(ctx context.Context, kind store.GrantKind, key string) (store.LicenseGrant, error) {
	return one(ctx, r.q, "read license grant", `SELECT `+licenseGrantColumns+` FROM license_grants
		WHERE kind = $1 AND grant_key = $2`+r.forUpdate(), scanLicenseGrant, txt(string(kind)), txt(key))
}

// LicenseGrantByID reads one grant; store.ErrNotFound if absent.
func (s *Store) LicenseGrantByID(ctx context.Context, id int64) (_ store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.LicenseGrantByID(ctx, id)
}

// LicenseGrantByID reads one grant; store.ErrNotFound if absent. Inside a
// transaction the row stays locked until it ends.
func (r reader) LicenseGrantByID(ctx context.Context, id int64) (store.LicenseGrant, error) {
	return one(ctx, r.q, "read license grant", `SELECT `+licenseGrantColumns+` FROM license_grants
		WHERE id = $1`+r.forUpdate(), scanLicenseGrant, id)
}

// LicenseGrantByInstance reads the oldest grant of kind for instanceID;
// store.ErrNotFound if none.
func (s *Store) LicenseGrantByInstance(ctx context.Context, kind store.GrantKind, instanceID string) (_ store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.LicenseGrantByInstance(ctx, kind, instanceID)
}

// LicenseGrantByInstance reads the oldest (lowest ID) grant of kind for
// instanceID; store.ErrNotFound if none. An empty instanceID names no
// instance, so it finds nothing (not a grant stored without one). Inside
// a transaction the row stays locked until it ends.
func (r reader) LicenseGrantByInstance(ctx context.Context, kind store.GrantKind, instanceID string) (store.LicenseGrant, error) {
	if instanceID == "" {
		return store.LicenseGrant{}, store.ErrNotFound
	}
	return one(ctx, r.q, "read license grant by instance", `SELECT `+licenseGrantColumns+` FROM license_grants
		WHERE instance_id = $1 AND kind = $2 ORDER BY id LIMIT 1`+r.forUpdate(),
		scanLicenseGrant, txt(instanceID), txt(string(kind)))
}

// filterSQL gathers the conditions of a listing with their numbered
// parameters.
type filterSQL struct {
	conds []string
	args  []any
}

// add appends cond, whose one "?" stands for arg.
func (w *filterSQL) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

// query is head with the conditions, then order and a LIMIT of n.
func (w *filterSQL) query(head, order string, n int) (string, []any) {
	if len(w.conds) > 0 {
		head += ` WHERE ` + strings.Join(w.conds, ` AND `)
	}
	args := append(w.args, limit(n))
	return head + ` ORDER BY ` + order + ` LIMIT $` + strconv.Itoa(len(args)), args
}

// LicenseCodes lists the codes matching f by Code, ascending (a code that
// is both a real and a test code: real first).
func (s *Store) LicenseCodes(ctx context.Context, f store.LicenseCodeFilter) (_ []store.LicenseCode, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var w filterSQL
	if f.Status != "" {
		w.add(`status = ?`, txt(string(f.Status)))
	}
	if f.OrderID != "" {
		w.add(`order_id = ?`, txt(f.OrderID))
	}
	if f.Test != nil {
		w.add(`test = ?`, *f.Test)
	}
	if f.AfterCode != "" {
		w.add(`code > ?`, txt(f.AfterCode))
	}
	query, args := w.query(`SELECT `+licenseCodeColumns+` FROM license_codes`, `code, test`, f.Limit)
	return queryAll(ctx, s.q, "list license codes", query, args, scanLicenseCode)
}

// LicenseEvents lists the history of one code, newest (At, then ID)
// first, at most n entries (0 means 100; at most 1000).
func (s *Store) LicenseEvents(ctx context.Context, code string, test bool, n int) (_ []store.LicenseEvent, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "list license events", `SELECT `+licenseEventColumns+` FROM license_events
		WHERE code = $1 AND test = $2 ORDER BY at DESC, id DESC LIMIT $3`,
		[]any{txt(code), test, limit(n)}, scanLicenseEvent)
}

// LicenseGrants lists the grants matching f, newest (highest ID) first.
func (s *Store) LicenseGrants(ctx context.Context, f store.LicenseGrantFilter) (_ []store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var w filterSQL
	if f.Kind != "" {
		w.add(`kind = ?`, txt(string(f.Kind)))
	}
	if f.State != "" {
		w.add(`state = ?`, txt(string(f.State)))
	}
	if f.InstanceID != "" {
		w.add(`instance_id = ?`, txt(f.InstanceID))
	}
	if f.BeforeID > 0 {
		w.add(`id < ?`, f.BeforeID)
	}
	query, args := w.query(`SELECT `+licenseGrantColumns+` FROM license_grants`, `id DESC`, f.Limit)
	return queryAll(ctx, s.q, "list license grants", query, args, scanLicenseGrant)
}

// InsertLicenseUpload records one upload attempt and returns its ID
// (u.ID is ignored); a zero At is stored as now. store.ErrNotFound if the
// grant does not exist (the foreign key decides).
func (s *Store) InsertLicenseUpload(ctx context.Context, u store.LicenseUpload) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var id int64
	err = s.q.QueryRow(ctx, `INSERT INTO license_uploads (grant_id, at, outcome, http_status, code, message)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		u.GrantID, ts(or(u.At, time.Now())), txt(u.Outcome), u.HTTPStatus, txt(u.Code), txt(u.Message)).Scan(&id)
	switch {
	case isForeignKey(err):
		return 0, fmt.Errorf("postgres: insert license upload: grant %d: %w", u.GrantID, store.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("postgres: insert license upload: %w", mapErr(ctx, err))
	}
	return id, nil
}

// LicenseUploads lists the upload attempts of one grant, oldest (At, then
// ID) first.
func (s *Store) LicenseUploads(ctx context.Context, grantID int64) (_ []store.LicenseUpload, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "list license uploads", `SELECT `+licenseUploadColumns+` FROM license_uploads
		WHERE grant_id = $1 ORDER BY at, id`, []any{grantID}, scanLicenseUpload)
}

// UnreportedLicenseDevices lists at most n (0 means 100; at most 1000)
// devices of real codes seen since their last report (or never reported),
// by code and device. The partial index license_devices_unreported holds
// exactly these rows.
func (s *Store) UnreportedLicenseDevices(ctx context.Context, n int) (_ []store.LicenseDevice, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "list unreported license devices", `SELECT `+licenseDeviceColumns+`
		FROM license_devices WHERE NOT test AND (reported_at IS NULL OR last_seen > reported_at)
		ORDER BY code, device LIMIT $1`, []any{limit(n)}, scanLicenseDevice)
}

// MarkLicenseDevicesReported sets ReportedAt to at for each of devices
// (by Code, Test, Device) whose LastSeen is at or before at, in one
// statement: a device seen after at stays due. Devices that are not
// stored are skipped.
func (s *Store) MarkLicenseDevicesReported(ctx context.Context, devices []store.LicenseDevice, at time.Time) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if len(devices) == 0 {
		return nil
	}
	codes := make([]string, len(devices))
	tests := make([]bool, len(devices))
	names := make([]string, len(devices))
	for i, d := range devices {
		codes[i], tests[i], names[i] = txt(d.Code), d.Test, txt(d.Device)
	}
	if _, err := s.q.Exec(ctx, `UPDATE license_devices d SET reported_at = $1
		FROM unnest($2::text[], $3::boolean[], $4::text[]) AS u(code, test, device)
		WHERE d.code = u.code AND d.test = u.test AND d.device = u.device AND d.last_seen <= $1`,
		ts(at), codes, tests, names); err != nil {
		return fmt.Errorf("postgres: mark license devices reported: %w", mapErr(ctx, err))
	}
	return nil
}

// LicenseKeys lists the token signing keys, newest Generation first.
func (s *Store) LicenseKeys(ctx context.Context) (_ []store.LicenseKey, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "list license keys", `SELECT `+licenseKeyColumns+` FROM license_keys
		ORDER BY generation DESC`, nil, scanLicenseKey)
}

// InsertLicenseKey inserts k unless a key of its generation or kid exists;
// a zero CreatedAt is stored as now.
func (s *Store) InsertLicenseKey(ctx context.Context, k store.LicenseKey) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `INSERT INTO license_keys (`+licenseKeyColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`,
		k.Generation, txt(k.ID), txt(k.Public), txt(k.PrivateSealed), ts(or(k.CreatedAt, time.Now())))
	if err != nil {
		return false, fmt.Errorf("postgres: insert license key: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// InsertLicenseCode inserts c unless a code of the same (Code, Test)
// exists; the primary key decides, so concurrent callers (in any process)
// cannot both insert: a second insert waits for the first transaction and
// then does nothing. Zero CreatedAt and UpdatedAt are stored as now, an
// empty Status as active.
func (t *tx) InsertLicenseCode(ctx context.Context, c store.LicenseCode) (bool, error) {
	now := time.Now()
	status := c.Status
	if status == "" {
		status = store.LicenseActive
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO license_codes (`+licenseCodeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (code, test) DO NOTHING`,
		txt(c.Code), c.Test, txt(string(status)), ts(c.ExpireTime), c.ExpireEstimated, txt(c.OrderID), txt(c.OrderLineID),
		txt(c.ProductID), c.Amount, ts(c.ActivatedAt), ts(c.CheckedAt), txt(c.RemoteStatus), ts(c.ConfirmedAt),
		ts(or(c.CreatedAt, now)), ts(or(c.UpdatedAt, now)), c.Version)
	if err != nil {
		return false, fmt.Errorf("postgres: insert license code: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// UpdateLicenseCode writes every field of c but Code, Test and CreatedAt
// when the stored Version equals c.Version, and increments the Version. A
// zero UpdatedAt is stored as now.
func (t *tx) UpdateLicenseCode(ctx context.Context, c store.LicenseCode) error {
	tag, err := t.tx.Exec(ctx, `UPDATE license_codes SET
		status = $1, expire_time = $2, expire_estimated = $3, order_id = $4, order_line_id = $5, product_id = $6,
		amount = $7, activated_at = $8, checked_at = $9, remote_status = $10, confirmed_at = $11, updated_at = $12,
		version = version + 1
		WHERE code = $13 AND test = $14 AND version = $15`,
		txt(string(c.Status)), ts(c.ExpireTime), c.ExpireEstimated, txt(c.OrderID), txt(c.OrderLineID), txt(c.ProductID),
		c.Amount, ts(c.ActivatedAt), ts(c.CheckedAt), txt(c.RemoteStatus), ts(c.ConfirmedAt), ts(or(c.UpdatedAt, time.Now())),
		txt(c.Code), c.Test, c.Version)
	if err != nil {
		return fmt.Errorf("postgres: update license code: %w", mapErr(ctx, err))
	}
	return t.versioned(ctx, tag, fmt.Sprintf("license code at version %d", c.Version),
		`SELECT 1 FROM license_codes WHERE code = $1 AND test = $2`, txt(c.Code), c.Test)
}

// InsertLicenseEvent appends e to its code's history and returns its ID
// (e.ID is ignored); a zero At is stored as now. store.ErrNotFound if the
// code is not recorded (the foreign key decides).
func (t *tx) InsertLicenseEvent(ctx context.Context, e store.LicenseEvent) (int64, error) {
	var id int64
	err := t.tx.QueryRow(ctx, `INSERT INTO license_events (code, test, kind, source, detail, at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		txt(e.Code), e.Test, txt(e.Kind), txt(e.Source), txt(e.Detail), ts(or(e.At, time.Now()))).Scan(&id)
	switch {
	case isForeignKey(err):
		return 0, fmt.Errorf("postgres: insert license event: code not recorded: %w", store.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("postgres: insert license event: %w", mapErr(ctx, err))
	}
	return id, nil
}

// UpsertLicenseDevice inserts d, or moves the stored device's LastSeen
// forward to d.LastSeen. Two statements, each atomic on its own: the
// INSERT … ON CONFLICT DO NOTHING lets the primary key decide which caller
// inserts (a second one waits for the first transaction, then does
// nothing), and the UPDATE compares LastSeen in the row under its lock, so
// it never moves back whatever the order of concurrent callers. Zero
// FirstSeen and LastSeen are stored as now. store.ErrNotFound if the code
// is not recorded.
func (t *tx) UpsertLicenseDevice(ctx context.Context, d store.LicenseDevice) (bool, error) {
	now := time.Now()
	last := ts(or(d.LastSeen, now))
	tag, err := t.tx.Exec(ctx, `INSERT INTO license_devices (`+licenseDeviceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (code, test, device) DO NOTHING`,
		txt(d.Code), d.Test, txt(d.Device), ts(or(d.FirstSeen, now)), last, ts(d.ReportedAt))
	switch {
	case isForeignKey(err):
		return false, fmt.Errorf("postgres: upsert license device: code not recorded: %w", store.ErrNotFound)
	case err != nil:
		return false, fmt.Errorf("postgres: upsert license device: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if _, err := t.tx.Exec(ctx, `UPDATE license_devices SET last_seen = $1
		WHERE code = $2 AND test = $3 AND device = $4 AND last_seen < $1`,
		last, txt(d.Code), d.Test, txt(d.Device)); err != nil {
		return false, fmt.Errorf("postgres: upsert license device: %w", mapErr(ctx, err))
	}
	return false, nil
}

// TouchLicenseDevice moves the device's LastSeen forward to at and
// reports whether the device is there. One UPDATE, whose own row count
// decides: it inserts nothing, and one running beside a DELETE of the row
// waits for its lock, then finds no row, so a device deleted meanwhile
// stays deleted; GREATEST keeps LastSeen from moving back while still
// counting the row. A zero at is now.
func (t *tx) TouchLicenseDevice(ctx context.Context, code string, test bool, device string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE license_devices SET last_seen = GREATEST(last_seen, $1)
		WHERE code = $2 AND test = $3 AND device = $4`,
		ts(or(at, time.Now())), txt(code), test, txt(device))
	if err != nil {
		return false, fmt.Errorf("postgres: touch license device: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteLicenseDevice removes the device (code, test, device) and reports
// whether it was there. A second concurrent DELETE waits for the row lock
// of the first, then finds no row, so of two deletes one reports true.
func (t *tx) DeleteLicenseDevice(ctx context.Context, code string, test bool, device string) (bool, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM license_devices WHERE code = $1 AND test = $2 AND device = $3`,
		txt(code), test, txt(device))
	if err != nil {
		return false, fmt.Errorf("postgres: delete license device: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// InsertLicenseGrant inserts g unless a grant of the same (Kind, Key)
// exists, and returns the ID of the grant, inserted or stored (g.ID is
// ignored). A second insert waits for the first transaction, then reads
// the grant it committed. Zero CreatedAt and UpdatedAt are stored as now,
// an empty State as pending, an empty Status as active.
func (t *tx) InsertLicenseGrant(ctx context.Context, g store.LicenseGrant) (int64, bool, error) {
	now := time.Now()
	state, status := g.State, g.Status
	if state == "" {
		state = store.GrantPending
	}
	if status == "" {
		status = store.LicenseActive
	}
	var id int64
	err := t.tx.QueryRow(ctx, `INSERT INTO license_grants (kind, grant_key, instance_id, event_id,
		order_id, product_id, test, state, status, expire_time, request, type, file_name, content_sealed, sha256,
		attempts, last_error, uploaded_at, created_at, updated_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
		ON CONFLICT (kind, grant_key) DO NOTHING
		RETURNING id`,
		txt(string(g.Kind)), txt(g.Key), txt(g.InstanceID), txt(g.EventID), txt(g.OrderID), txt(g.ProductID),
		g.Test, txt(string(state)), txt(string(status)), ts(g.ExpireTime), txt(g.Request), txt(g.Type),
		txt(g.FileName), txt(g.ContentSealed), txt(g.SHA256), g.Attempts, txt(g.LastError), ts(g.UploadedAt),
		ts(or(g.CreatedAt, now)), ts(or(g.UpdatedAt, now)), g.Version).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("postgres: insert license grant: %w", mapErr(ctx, err))
	}
	// Not inserted: (kind, key) is taken.
	if err := t.tx.QueryRow(ctx, `SELECT id FROM license_grants WHERE kind = $1 AND grant_key = $2`,
		txt(string(g.Kind)), txt(g.Key)).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("postgres: insert license grant: find the stored grant: %w", mapErr(ctx, err))
	}
	return id, false, nil
}

// UpdateLicenseGrant writes every field of g but ID, Kind, Key and
// CreatedAt when the stored Version equals g.Version, and increments the
// Version. A zero UpdatedAt is stored as now.
func (t *tx) UpdateLicenseGrant(ctx context.Context, g store.LicenseGrant) error {
	tag, err := t.tx.Exec(ctx, `UPDATE license_grants SET
		instance_id = $1, event_id = $2, order_id = $3, product_id = $4, test = $5, state = $6, status = $7,
		expire_time = $8, request = $9, type = $10, file_name = $11, content_sealed = $12, sha256 = $13,
		attempts = $14, last_error = $15, uploaded_at = $16, updated_at = $17, version = version + 1
		WHERE id = $18 AND version = $19`,
		txt(g.InstanceID), txt(g.EventID), txt(g.OrderID), txt(g.ProductID), g.Test, txt(string(g.State)),
		txt(string(g.Status)), ts(g.ExpireTime), txt(g.Request), txt(g.Type), txt(g.FileName),
		txt(g.ContentSealed), txt(g.SHA256), g.Attempts, txt(g.LastError), ts(g.UploadedAt),
		ts(or(g.UpdatedAt, time.Now())), g.ID, g.Version)
	if err != nil {
		return fmt.Errorf("postgres: update license grant: %w", mapErr(ctx, err))
	}
	return t.versioned(ctx, tag, fmt.Sprintf("license grant %d at version %d", g.ID, g.Version),
		`SELECT 1 FROM license_grants WHERE id = $1`, g.ID)
}

// versioned finishes an optimistic update: nil when it wrote its row,
// otherwise store.ErrNotFound when exists (a query of the row) finds
// nothing, store.ErrConflict when the row is there at another version.
func (t *tx) versioned(ctx context.Context, tag pgconn.CommandTag, what, exists string, args ...any) error {
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err := t.tx.QueryRow(ctx, exists, args...).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return fmt.Errorf("postgres: update %s: %w", what, mapErr(ctx, err))
	}
	return fmt.Errorf("postgres: update %s: %w", what, store.ErrConflict)
}
