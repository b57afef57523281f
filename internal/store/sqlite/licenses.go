package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/koobridge/koobridge/internal/store"
)

const licenseCodeColumns = `code, test, status, expire_time, expire_estimated, order_id, order_line_id, product_id, amount,
	activated_at, checked_at, remote_status, confirmed_at, created_at, updated_at, version`

func scanLicenseCode(sc scanner) (store.LicenseCode, error) {
	var (
		c                                                    store.LicenseCode
		test, expire, estimated, activated, checked, created int64
		confirmed, updated                                   int64
		status                                               string
	)
	if err := sc.Scan(&c.Code, &test, &status, &expire, &estimated, &c.OrderID, &c.OrderLineID, &c.ProductID, &c.Amount,
		&activated, &checked, &c.RemoteStatus, &confirmed, &created, &updated, &c.Version); err != nil {
		return store.LicenseCode{}, err
	}
	c.Test = test != 0
	c.ExpireEstimated = estimated != 0
	c.ConfirmedAt = fromMS(confirmed)
	c.Status = store.LicenseStatus(status)
	c.ExpireTime = fromMS(expire)
	c.ActivatedAt = fromMS(activated)
	c.CheckedAt = fromMS(checked)
	c.CreatedAt = fromMS(created)
	c.UpdatedAt = fromMS(updated)
	return c, nil
}

const licenseEventColumns = `id, code, test, kind, source, detail, at`

func scanLicenseEvent(sc scanner) (store.LicenseEvent, error) {
	var (
		e        store.LicenseEvent
		test, at int64
	)
	if err := sc.Scan(&e.ID, &e.Code, &test, &e.Kind, &e.Source, &e.Detail, &at); err != nil {
		return store.LicenseEvent{}, err
	}
	e.Test = test != 0
	e.At = fromMS(at)
	return e, nil
}

const licenseDeviceColumns = `code, test, device, first_seen, last_seen, reported_at`

func scanLicenseDevice(sc scanner) (store.LicenseDevice, error) {
	var (
		d                           store.LicenseDevice
		test, first, last, reported int64
	)
	if err := sc.Scan(&d.Code, &test, &d.Device, &first, &last, &reported); err != nil {
		return store.LicenseDevice{}, err
	}
	d.Test = test != 0
	d.FirstSeen = fromMS(first)
	d.LastSeen = fromMS(last)
	d.ReportedAt = fromMS(reported)
	return d, nil
}

const licenseGrantColumns = `id, kind, grant_key, instance_id, event_id, order_id, product_id, test, state,
	status, expire_time, request, type, file_name, content_sealed, sha256, attempts, last_error, uploaded_at,
	created_at, updated_at, version`

func scanLicenseGrant(sc scanner) (store.LicenseGrant, error) {
	var (
		g                                        store.LicenseGrant
		test, expire, uploaded, created, updated int64
		kind, state, status                      string
	)
	if err := sc.Scan(&g.ID, &kind, &g.Key, &g.InstanceID, &g.EventID, &g.OrderID, &g.ProductID, &test, &state,
		&status, &expire, &g.Request, &g.Type, &g.FileName, &g.ContentSealed, &g.SHA256, &g.Attempts, &g.LastError,
		&uploaded, &created, &updated, &g.Version); err != nil {
		return store.LicenseGrant{}, err
	}
	g.Kind = store.GrantKind(kind)
	g.Test = test != 0
	g.State = store.GrantState(state)
	g.Status = store.LicenseStatus(status)
	g.ExpireTime = fromMS(expire)
	g.UploadedAt = fromMS(uploaded)
	g.CreatedAt = fromMS(created)
	g.UpdatedAt = fromMS(updated)
	return g, nil
}

const licenseUploadColumns = `id, grant_id, at, outcome, http_status, code, message`

func scanLicenseUpload(sc scanner) (store.LicenseUpload, error) {
	var (
		u  store.LicenseUpload
		at int64
	)
	if err := sc.Scan(&u.ID, &u.GrantID, &at, &u.Outcome, &u.HTTPStatus, &u.Code, &u.Message); err != nil {
		return store.LicenseUpload{}, err
	}
	u.At = fromMS(at)
	return u, nil
}

const licenseKeyColumns = `generation, kid, public, private_sealed, created_at`

func scanLicenseKey(sc scanner) (store.LicenseKey, error) {
	var (
		k       store.LicenseKey
		created int64
	)
	if err := sc.Scan(&k.Generation, &k.ID, &k.Public, &k.PrivateSealed, &created); err != nil {
		return store.LicenseKey{}, err
	}
	k.CreatedAt = fromMS(created)
	return k, nil
}

// isForeignKey reports whether err is a foreign key violation: a row
// naming a code or grant that is not stored.
//
// Errors here never name a license code: a code is what unlocks the
// vendor's software, and errors end up in logs.
func isForeignKey(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// LicenseCode reads one code; store.ErrNotFound if absent.
func (s *Store) LicenseCode(ctx context.Context, code string, test bool) (_ store.LicenseCode, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.LicenseCode(ctx, code, test)
}

// LicenseCode reads one code; store.ErrNotFound if absent.
func (r reader) LicenseCode(ctx context.Context, code string, test bool) (store.LicenseCode, error) {
	return one(ctx, r.q, "read license code", `SELECT `+licenseCodeColumns+` FROM license_codes
		WHERE code = ? AND test = ?`, scanLicenseCode, code, boolInt(test))
}

// LicenseDevices lists the devices of one code, oldest FirstSeen first.
func (s *Store) LicenseDevices(ctx context.Context, code string, test bool) (_ []store.LicenseDevice, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.LicenseDevices(ctx, code, test)
}

// LicenseDevices lists the devices of one code, oldest FirstSeen first
// (then by Device, so the order is stable).
func (r reader) LicenseDevices(ctx context.Context, code string, test bool) ([]store.LicenseDevice, error) {
	return queryAll(ctx, r.q, "list license devices", `SELECT `+licenseDeviceColumns+` FROM license_devices
		WHERE code = ? AND test = ? ORDER BY first_seen, device`, []any{code, boolInt(test)}, scanLicenseDevice)
}

// LicenseGrant reads the grant of (kind, key); store.ErrNotFound if absent.
func (s *Store) LicenseGrant(ctx context.Context, kind store.GrantKind, key string) (_ store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.LicenseGrant(ctx, kind, key)
}

// LicenseGrant reads the grant of (kind, key); store.ErrNotFound if absent.
func (r reader) LicenseGrant(ctx context.Context, kind store.GrantKind, key string) (store.LicenseGrant, error) {
	return one(ctx, r.q, "read license grant", `SELECT `+licenseGrantColumns+` FROM license_grants
		WHERE kind = ? AND grant_key = ?`, scanLicenseGrant, string(kind), key)
}

// LicenseGrantByID reads one grant; store.ErrNotFound if absent.
func (s *Store) LicenseGrantByID(ctx context.Context, id int64) (_ store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.LicenseGrantByID(ctx, id)
}

// LicenseGrantByID reads one grant; store.ErrNotFound if absent.
func (r reader) LicenseGrantByID(ctx context.Context, id int64) (store.LicenseGrant, error) {
	return one(ctx, r.q, "read license grant", `SELECT `+licenseGrantColumns+` FROM license_grants WHERE id = ?`,
		scanLicenseGrant, id)
}

// LicenseGrantByInstance reads the oldest grant of kind for instanceID;
// store.ErrNotFound if none.
func (s *Store) LicenseGrantByInstance(ctx context.Context, kind store.GrantKind, instanceID string) (_ store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.LicenseGrantByInstance(ctx, kind, instanceID)
}

// LicenseGrantByInstance reads the oldest (lowest ID) grant of kind for
// instanceID; store.ErrNotFound if none. An empty instanceID names no
// instance, so it finds nothing (not a grant stored without one).
func (r reader) LicenseGrantByInstance(ctx context.Context, kind store.GrantKind, instanceID string) (store.LicenseGrant, error) {
	if instanceID == "" {
		return store.LicenseGrant{}, store.ErrNotFound
	}
	return one(ctx, r.q, "read license grant by instance", `SELECT `+licenseGrantColumns+` FROM license_grants
		WHERE instance_id = ? AND kind = ? ORDER BY id LIMIT 1`, scanLicenseGrant, instanceID, string(kind))
}

// LicenseCodes lists the codes matching f by Code, ascending (a code that
// is both a real and a test code: real first).
func (s *Store) LicenseCodes(ctx context.Context, f store.LicenseCodeFilter) (_ []store.LicenseCode, err error) {
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
	if f.OrderID != "" {
		where = append(where, `order_id = ?`)
		args = append(args, f.OrderID)
	}
	if f.Test != nil {
		where = append(where, `test = ?`)
		args = append(args, boolInt(*f.Test))
	}
	if f.AfterCode != "" {
		where = append(where, `code > ?`)
		args = append(args, f.AfterCode)
	}
	query := `SELECT ` + licenseCodeColumns + ` FROM license_codes`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY code, test LIMIT ?`
	args = append(args, limit(f.Limit))
	return queryAll(ctx, s.db, "list license codes", query, args, scanLicenseCode)
}

// LicenseEvents lists the history of one code, newest (At, then ID)
// first, at most n entries (0 means 100; at most 1000).
func (s *Store) LicenseEvents(ctx context.Context, code string, test bool, n int) (_ []store.LicenseEvent, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list license events", `SELECT `+licenseEventColumns+` FROM license_events
		WHERE code = ? AND test = ? ORDER BY at DESC, id DESC LIMIT ?`,
		[]any{code, boolInt(test), limit(n)}, scanLicenseEvent)
}

// LicenseGrants lists the grants matching f, newest (highest ID) first.
func (s *Store) LicenseGrants(ctx context.Context, f store.LicenseGrantFilter) (_ []store.LicenseGrant, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	if f.Kind != "" {
		where = append(where, `kind = ?`)
		args = append(args, string(f.Kind))
	}
	if f.State != "" {
		where = append(where, `state = ?`)
		args = append(args, string(f.State))
	}
	if f.InstanceID != "" {
		where = append(where, `instance_id = ?`)
		args = append(args, f.InstanceID)
	}
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	query := `SELECT ` + licenseGrantColumns + ` FROM license_grants`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))
	return queryAll(ctx, s.db, "list license grants", query, args, scanLicenseGrant)
}

// InsertLicenseUpload records one upload attempt and returns its ID
// (u.ID is ignored); a zero At is stored as now. store.ErrNotFound if the
// grant does not exist (the foreign key decides).
func (s *Store) InsertLicenseUpload(ctx context.Context, u store.LicenseUpload) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var id int64
	err = s.run(ctx, true, func(ctx context.Context, t *cachedTx) error {
		return t.QueryRowContext(ctx, `INSERT INTO license_uploads (grant_id, at, outcome, http_status, code, message)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			u.GrantID, ms(or(u.At, time.Now())), u.Outcome, u.HTTPStatus, u.Code, u.Message).Scan(&id)
	})
	switch {
	case isForeignKey(err):
		return 0, fmt.Errorf("sqlite: insert license upload: grant %d: %w", u.GrantID, store.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("sqlite: insert license upload: %w", mapErr(err))
	}
	return id, nil
}

// LicenseUploads lists the upload attempts of one grant, oldest (At, then
// ID) first.
func (s *Store) LicenseUploads(ctx context.Context, grantID int64) (_ []store.LicenseUpload, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list license uploads", `SELECT `+licenseUploadColumns+` FROM license_uploads
		WHERE grant_id = ? ORDER BY at, id`, []any{grantID}, scanLicenseUpload)
}

// UnreportedLicenseDevices lists at most n (0 means 100; at most 1000)
// devices of real codes seen since their last report, by code and device.
// The partial index license_devices_unreported holds exactly these rows.
func (s *Store) UnreportedLicenseDevices(ctx context.Context, n int) (_ []store.LicenseDevice, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list unreported license devices", `SELECT `+licenseDeviceColumns+`
		FROM license_devices WHERE test = 0 AND last_seen > reported_at
		ORDER BY code, device LIMIT ?`, []any{limit(n)}, scanLicenseDevice)
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
	keys := make([][3]any, len(devices))
	for i, d := range devices {
		keys[i] = [3]any{d.Code, boolInt(d.Test), d.Device}
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return fmt.Errorf("sqlite: mark license devices reported: %w", err)
	}
	if _, err := s.exec(ctx, `UPDATE license_devices SET reported_at = :at
		WHERE last_seen <= :at AND (code, test, device) IN (
			SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(:list))`,
		sql.Named("at", ms(at)), sql.Named("list", string(list))); err != nil {
		return fmt.Errorf("sqlite: mark license devices reported: %w", err)
	}
	return nil
}

// LicenseKeys lists the token signing keys, newest Generation first.
func (s *Store) LicenseKeys(ctx context.Context) (_ []store.LicenseKey, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list license keys", `SELECT `+licenseKeyColumns+` FROM license_keys
		ORDER BY generation DESC`, nil, scanLicenseKey)
}

// InsertLicenseKey inserts k unless a key of its generation or kid exists;
// a zero CreatedAt is stored as now.
func (s *Store) InsertLicenseKey(ctx context.Context, k store.LicenseKey) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `INSERT INTO license_keys (`+licenseKeyColumns+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		k.Generation, k.ID, k.Public, k.PrivateSealed, ms(or(k.CreatedAt, time.Now())))
	if err != nil {
		return false, fmt.Errorf("sqlite: insert license key: %w", err)
	}
	return inserted(res, "insert license key")
}

// InsertLicenseCode inserts c unless a code of the same (Code, Test)
// exists; the primary key decides, so concurrent callers (in any process)
// cannot both insert. Zero CreatedAt and UpdatedAt are stored as now, an
// empty Status as active.
func (t *tx) InsertLicenseCode(ctx context.Context, c store.LicenseCode) (bool, error) {
	now := time.Now()
	status := c.Status
	if status == "" {
		status = store.LicenseActive
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO license_codes (`+licenseCodeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (code, test) DO NOTHING`,
		c.Code, boolInt(c.Test), string(status), ms(c.ExpireTime), boolInt(c.ExpireEstimated), c.OrderID, c.OrderLineID,
		c.ProductID, c.Amount, ms(c.ActivatedAt), ms(c.CheckedAt), c.RemoteStatus, ms(c.ConfirmedAt),
		ms(or(c.CreatedAt, now)), ms(or(c.UpdatedAt, now)), c.Version)
	if err != nil {
		return false, fmt.Errorf("sqlite: insert license code: %w", mapErr(err))
	}
	return inserted(res, "insert license code")
}

// UpdateLicenseCode writes every field of c but Code, Test and CreatedAt
// when the stored Version equals c.Version, and increments the Version. A
// zero UpdatedAt is stored as now.
func (t *tx) UpdateLicenseCode(ctx context.Context, c store.LicenseCode) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE license_codes SET
		status = ?, expire_time = ?, expire_estimated = ?, order_id = ?, order_line_id = ?, product_id = ?, amount = ?,
		activated_at = ?, checked_at = ?, remote_status = ?, confirmed_at = ?, updated_at = ?, version = version + 1
		WHERE code = ? AND test = ? AND version = ?`,
		string(c.Status), ms(c.ExpireTime), boolInt(c.ExpireEstimated), c.OrderID, c.OrderLineID, c.ProductID, c.Amount,
		ms(c.ActivatedAt), ms(c.CheckedAt), c.RemoteStatus, ms(c.ConfirmedAt), ms(or(c.UpdatedAt, time.Now())),
		c.Code, boolInt(c.Test), c.Version)
	if err != nil {
		return fmt.Errorf("sqlite: update license code: %w", mapErr(err))
	}
	return t.versioned(ctx, res, fmt.Sprintf("license code at version %d", c.Version),
		`SELECT 1 FROM license_codes WHERE code = ? AND test = ?`, c.Code, boolInt(c.Test))
}

// InsertLicenseEvent appends e to its code's history and returns its ID
// (e.ID is ignored); a zero At is stored as now. store.ErrNotFound if the
// code is not recorded (the foreign key decides).
func (t *tx) InsertLicenseEvent(ctx context.Context, e store.LicenseEvent) (int64, error) {
	var id int64
	err := t.tx.QueryRowContext(ctx, `INSERT INTO license_events (code, test, kind, source, detail, at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		e.Code, boolInt(e.Test), e.Kind, e.Source, e.Detail, ms(or(e.At, time.Now()))).Scan(&id)
	switch {
	case isForeignKey(err):
		return 0, fmt.Errorf("sqlite: insert license event: code not recorded: %w", store.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("sqlite: insert license event: %w", mapErr(err))
	}
	return id, nil
}

// UpsertLicenseDevice inserts d, or moves the stored device's LastSeen
// forward to d.LastSeen. Two statements, each atomic on its own: the
// INSERT … ON CONFLICT DO NOTHING lets the primary key decide which caller
// inserts, and the UPDATE compares LastSeen in the row, so it never moves
// back whatever the order of concurrent callers. Zero FirstSeen and
// LastSeen are stored as now. store.ErrNotFound if the code is not
// recorded.
func (t *tx) UpsertLicenseDevice(ctx context.Context, d store.LicenseDevice) (bool, error) {
	now := time.Now()
	last := ms(or(d.LastSeen, now))
	res, err := t.tx.ExecContext(ctx, `INSERT INTO license_devices (`+licenseDeviceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (code, test, device) DO NOTHING`,
		d.Code, boolInt(d.Test), d.Device, ms(or(d.FirstSeen, now)), last, ms(d.ReportedAt))
	switch {
	case isForeignKey(err):
		return false, fmt.Errorf("sqlite: upsert license device: code not recorded: %w", store.ErrNotFound)
	case err != nil:
		return false, fmt.Errorf("sqlite: upsert license device: %w", mapErr(err))
	}
	ok, err := inserted(res, "upsert license device")
	if err != nil || ok {
		return ok, err
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE license_devices SET last_seen = ?
		WHERE code = ? AND test = ? AND device = ? AND last_seen < ?`,
		last, d.Code, boolInt(d.Test), d.Device, last); err != nil {
		return false, fmt.Errorf("sqlite: upsert license device: %w", mapErr(err))
	}
	return false, nil
}

// TouchLicenseDevice moves the device's LastSeen forward to at and
// reports whether the device is there. One UPDATE, whose own row count
// decides: it inserts nothing, so a device deleted meanwhile stays
// deleted; MAX keeps LastSeen from moving back while still counting the
// row. A zero at is now.
func (t *tx) TouchLicenseDevice(ctx context.Context, code string, test bool, device string, at time.Time) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE license_devices SET last_seen = MAX(last_seen, ?)
		WHERE code = ? AND test = ? AND device = ?`,
		ms(or(at, time.Now())), code, boolInt(test), device)
	if err != nil {
		return false, fmt.Errorf("sqlite: touch license device: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: touch license device: %w", mapErr(err))
	}
	return n == 1, nil
}

// DeleteLicenseDevice removes the device (code, test, device) and reports
// whether it was there; the DELETE's own row count decides, so of two
// concurrent deletes one reports true.
func (t *tx) DeleteLicenseDevice(ctx context.Context, code string, test bool, device string) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM license_devices WHERE code = ? AND test = ? AND device = ?`,
		code, boolInt(test), device)
	if err != nil {
		return false, fmt.Errorf("sqlite: delete license device: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: delete license device: %w", mapErr(err))
	}
	return n == 1, nil
}

// InsertLicenseGrant inserts g unless a grant of the same (Kind, Key)
// exists, and returns the ID of the grant, inserted or stored (g.ID is
// ignored). Zero CreatedAt and UpdatedAt are stored as now, an empty State
// as pending, an empty Status as active.
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
	err := t.tx.QueryRowContext(ctx, `INSERT INTO license_grants (kind, grant_key, instance_id, event_id,
		order_id, product_id, test, state, status, expire_time, request, type, file_name, content_sealed, sha256,
		attempts, last_error, uploaded_at, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, grant_key) DO NOTHING
		RETURNING id`,
		string(g.Kind), g.Key, g.InstanceID, g.EventID, g.OrderID, g.ProductID, boolInt(g.Test), string(state),
		string(status), ms(g.ExpireTime), g.Request, g.Type, g.FileName, g.ContentSealed, g.SHA256,
		g.Attempts, g.LastError, ms(g.UploadedAt), ms(or(g.CreatedAt, now)), ms(or(g.UpdatedAt, now)),
		g.Version).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("sqlite: insert license grant: %w", mapErr(err))
	}
	// Not inserted: (kind, key) is taken.
	if err := t.tx.QueryRowContext(ctx, `SELECT id FROM license_grants WHERE kind = ? AND grant_key = ?`,
		string(g.Kind), g.Key).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("sqlite: insert license grant: find the stored grant: %w", mapErr(err))
	}
	return id, false, nil
}

// UpdateLicenseGrant writes every field of g but ID, Kind, Key and
// CreatedAt when the stored Version equals g.Version, and increments the
// Version. A zero UpdatedAt is stored as now.
func (t *tx) UpdateLicenseGrant(ctx context.Context, g store.LicenseGrant) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE license_grants SET
		instance_id = ?, event_id = ?, order_id = ?, product_id = ?, test = ?, state = ?, status = ?,
		expire_time = ?, request = ?, type = ?, file_name = ?, content_sealed = ?, sha256 = ?, attempts = ?,
		last_error = ?, uploaded_at = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ?`,
		g.InstanceID, g.EventID, g.OrderID, g.ProductID, boolInt(g.Test), string(g.State), string(g.Status),
		ms(g.ExpireTime), g.Request, g.Type, g.FileName, g.ContentSealed, g.SHA256, g.Attempts,
		g.LastError, ms(g.UploadedAt), ms(or(g.UpdatedAt, time.Now())),
		g.ID, g.Version)
	if err != nil {
		return fmt.Errorf("sqlite: update license grant: %w", mapErr(err))
	}
	return t.versioned(ctx, res, fmt.Sprintf("license grant %d at version %d", g.ID, g.Version),
		`SELECT 1 FROM license_grants WHERE id = ?`, g.ID)
}

// versioned finishes an optimistic update: nil when it wrote its row,
// otherwise store.ErrNotFound when exists (a query of the row) finds
// nothing, store.ErrConflict when the row is there at another version.
func (t *tx) versioned(ctx context.Context, res sql.Result, what, exists string, args ...any) error {
	ok, err := inserted(res, "update "+what)
	if err != nil || ok {
		return err
	}
	var one int
	err = t.tx.QueryRowContext(ctx, exists, args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlite: update %s: %w", what, mapErr(err))
	}
	return fmt.Errorf("sqlite: update %s: %w", what, store.ErrConflict)
}
