package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// reader holds the reads available inside and outside transactions
// (store.InstanceReader, store.OperationReader,
// store.OrderNotificationReader) over the database or a transaction. The
// Store's reads bound it by the operation timeout; a tx's are bounded by
// the Tx.
type reader struct {
	q querier
}

// tx implements store.Tx.
type tx struct {
	reader
	tx *cachedTx
}

var _ store.Tx = (*tx)(nil)

const instanceColumns = `id, order_id, order_line_id, business_id, test,
	order_state, product_id, sku_code, charging_mode, period_type, period_number,
	linear_value, customer_id, customer_name, expire_time, order_json,
	status, frozen_by, app_front_end_url, app_admin_url, app_user_name,
	app_password_sealed, app_memo, usage_value, usage_time, last_error,
	fail_code, created_at, updated_at, released_at, version`

func scanInstance(sc scanner) (store.Instance, error) {
	var (
		in                                        store.Instance
		test                                      int64
		expire, usage, created, updated, released int64
		orderState, status                        string
	)
	err := sc.Scan(&in.ID, &in.OrderID, &in.OrderLineID, &in.BusinessID, &test,
		&orderState, &in.ProductID, &in.SKUCode, &in.ChargingMode, &in.PeriodType, &in.PeriodNumber,
		&in.LinearValue, &in.CustomerID, &in.CustomerName, &expire, &in.OrderJSON,
		&status, &in.FrozenBy, &in.AppInfo.FrontEndURL, &in.AppInfo.AdminURL, &in.AppInfo.UserName,
		&in.AppInfo.PasswordSealed, &in.AppInfo.Memo, &in.UsageValue, &usage, &in.LastError,
		&in.FailCode, &created, &updated, &released, &in.Version)
	if err != nil {
		return store.Instance{}, err
	}
	in.Test = test != 0
	in.OrderState = store.OrderState(orderState)
	in.Status = store.InstanceStatus(status)
	in.ExpireTime = fromMS(expire)
	in.UsageTime = fromMS(usage)
	in.CreatedAt = fromMS(created)
	in.UpdatedAt = fromMS(updated)
	in.ReleasedAt = fromMS(released)
	return in, nil
}

func (r reader) instance(ctx context.Context, where string, args ...any) (store.Instance, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE `+where, args...)
	in, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Instance{}, store.ErrNotFound
	}
	if err != nil {
		return store.Instance{}, fmt.Errorf("sqlite: read instance: %w", mapErr(err))
	}
	return in, nil
}

// Instance reads the instance with id; store.ErrNotFound if there is none.
func (s *Store) Instance(ctx context.Context, id string) (_ store.Instance, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.Instance(ctx, id)
}

// InstanceByOrderLine reads the instance of an order line; store.ErrNotFound
// if there is none.
func (s *Store) InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (_ store.Instance, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.InstanceByOrderLine(ctx, orderID, orderLineID)
}

// Instance reads the instance with id; store.ErrNotFound if there is none.
func (r reader) Instance(ctx context.Context, id string) (store.Instance, error) {
	return r.instance(ctx, `id = ?`, id)
}

// InstanceByOrderLine reads the instance of an order line; store.ErrNotFound
// if there is none.
func (r reader) InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (store.Instance, error) {
	return r.instance(ctx, `order_id = ? AND order_line_id = ?`, orderID, orderLineID)
}

// InsertInstance inserts inst unless its order line already has an
// instance; the unique constraint decides, so concurrent callers (in any
// process) cannot both insert. Zero CreatedAt and UpdatedAt are set to now.
func (t *tx) InsertInstance(ctx context.Context, inst store.Instance) (bool, error) {
	now := time.Now()
	res, err := t.tx.ExecContext(ctx, `INSERT INTO instances (`+instanceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (order_id, order_line_id) DO NOTHING`,
		inst.ID, inst.OrderID, inst.OrderLineID, inst.BusinessID, boolInt(inst.Test),
		string(inst.OrderState), inst.ProductID, inst.SKUCode, inst.ChargingMode, inst.PeriodType, inst.PeriodNumber,
		inst.LinearValue, inst.CustomerID, inst.CustomerName, ms(inst.ExpireTime), inst.OrderJSON,
		string(inst.Status), inst.FrozenBy, inst.AppInfo.FrontEndURL, inst.AppInfo.AdminURL, inst.AppInfo.UserName,
		inst.AppInfo.PasswordSealed, inst.AppInfo.Memo, inst.UsageValue, ms(inst.UsageTime), inst.LastError,
		inst.FailCode, ms(or(inst.CreatedAt, now)), ms(or(inst.UpdatedAt, now)), ms(inst.ReleasedAt), inst.Version)
	if err != nil {
		return false, fmt.Errorf("sqlite: insert instance: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: insert instance: %w", mapErr(err))
	}
	return n == 1, nil
}

// UpdateInstance writes the mutable fields of inst — all but ID, OrderID,
// OrderLineID, BusinessID, Test and CreatedAt, which are fixed when the
// instance is created — if the stored Version equals inst.Version, and
// increments the Version. A zero UpdatedAt is set to now.
func (t *tx) UpdateInstance(ctx context.Context, inst store.Instance) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE instances SET
		order_state = ?, product_id = ?, sku_code = ?, charging_mode = ?, period_type = ?, period_number = ?,
		linear_value = ?, customer_id = ?, customer_name = ?, expire_time = ?, order_json = ?,
		status = ?, frozen_by = ?, app_front_end_url = ?, app_admin_url = ?, app_user_name = ?,
		app_password_sealed = ?, app_memo = ?, usage_value = ?, usage_time = ?, last_error = ?,
		fail_code = ?, updated_at = ?, released_at = ?, version = version + 1
		WHERE id = ? AND version = ?`,
		string(inst.OrderState), inst.ProductID, inst.SKUCode, inst.ChargingMode, inst.PeriodType, inst.PeriodNumber,
		inst.LinearValue, inst.CustomerID, inst.CustomerName, ms(inst.ExpireTime), inst.OrderJSON,
		string(inst.Status), inst.FrozenBy, inst.AppInfo.FrontEndURL, inst.AppInfo.AdminURL, inst.AppInfo.UserName,
		inst.AppInfo.PasswordSealed, inst.AppInfo.Memo, inst.UsageValue, ms(inst.UsageTime), inst.LastError,
		inst.FailCode, ms(or(inst.UpdatedAt, time.Now())), ms(inst.ReleasedAt),
		inst.ID, inst.Version)
	if err != nil {
		return fmt.Errorf("sqlite: update instance: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: update instance: %w", mapErr(err))
	}
	if n == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRowContext(ctx, `SELECT 1 FROM instances WHERE id = ?`, inst.ID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlite: update instance: %w", mapErr(err))
	}
	return fmt.Errorf("sqlite: update instance %s at version %d: %w", inst.ID, inst.Version, store.ErrConflict)
}

// Instances lists instances in ascending ID order.
func (s *Store) Instances(ctx context.Context, f store.InstanceFilter) (_ []store.Instance, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	query, args := instancesQuery(f)
	return queryAll(ctx, s.db, "list instances", query, args, scanInstance)
}

// instancesQuery is Instances' query and its arguments. A filter by
// status walks instances_status_id, one by the test flag true
// instances_test_id (which holds the test instances only; its condition
// is written as in the index), both in id order (schema version 10), so a
// page reads its rows and stops; test flag false walks the primary key,
// most instances matching.
//
// Where two filters could each walk an index, SQLite, which has no
// statistics, cannot tell which finds fewer rows: the other is written
// with a unary +, which it takes as no index's. An order has a few
// instances, which its unique index finds and a sort orders; test
// instances are few, status or not.
func instancesQuery(f store.InstanceFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	plus := func(noIndex bool) string {
		if noIndex {
			return "+"
		}
		return ""
	}
	byOrder, testTrue := f.OrderID != "", f.Test != nil && *f.Test
	if byOrder {
		where = append(where, `order_id = ?`)
		args = append(args, f.OrderID)
	}
	if f.Status != "" {
		where = append(where, plus(byOrder || testTrue)+`status = ?`)
		args = append(args, string(f.Status))
	}
	if f.Test != nil {
		where = append(where, plus(byOrder)+`test = `+strconv.FormatInt(boolInt(*f.Test), 10))
	}
	if f.AfterID != "" {
		where = append(where, `id > ?`)
		args = append(args, f.AfterID)
	}
	query := `SELECT ` + instanceColumns + ` FROM instances`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id LIMIT ?`
	return query, append(args, limit(f.Limit))
}
