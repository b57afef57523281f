package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koobridge/koobridge/internal/store"
)

// reader holds the reads available inside and outside transactions
// (store.InstanceReader, store.OperationReader,
// store.OrderNotificationReader) over the pool or a transaction. In a
// transaction (lock set) the rows it returns are locked until the
// transaction ends. The Store's reads bound it by the operation timeout; a
// tx's are bounded by the Tx.
type reader struct {
	q    querier
	lock bool
}

// forUpdate is appended to reads inside a transaction.
func (r reader) forUpdate() string {
	if r.lock {
		return ` FOR UPDATE`
	}
	return ``
}

// tx implements store.Tx.
type tx struct {
	reader
	tx pgx.Tx
}

var _ store.Tx = (*tx)(nil)

const instanceColumns = `id, order_id, order_line_id, business_id, test,
	order_state, product_id, sku_code, charging_mode, period_type, period_number,
	linear_value, customer_id, customer_name, expire_time, order_json,
	status, frozen_by, app_front_end_url, app_admin_url, app_user_name,
	app_password_sealed, app_memo, usage_value, usage_time, last_error,
	fail_code, created_at, updated_at, released_at, version`

func scanInstance(row pgx.Row) (store.Instance, error) {
	var (
		in                                        store.Instance
		expire, usage, created, updated, released *time.Time
		orderState, status                        string
	)
	err := row.Scan(&in.ID, &in.OrderID, &in.OrderLineID, &in.BusinessID, &in.Test,
		&orderState, &in.ProductID, &in.SKUCode, &in.ChargingMode, &in.PeriodType, &in.PeriodNumber,
		&in.LinearValue, &in.CustomerID, &in.CustomerName, &expire, &in.OrderJSON,
		&status, &in.FrozenBy, &in.AppInfo.FrontEndURL, &in.AppInfo.AdminURL, &in.AppInfo.UserName,
		&in.AppInfo.PasswordSealed, &in.AppInfo.Memo, &in.UsageValue, &usage, &in.LastError,
		&in.FailCode, &created, &updated, &released, &in.Version)
	if err != nil {
		return store.Instance{}, err
	}
	in.OrderState = store.OrderState(orderState)
	in.Status = store.InstanceStatus(status)
	in.ExpireTime = fromTS(expire)
	in.UsageTime = fromTS(usage)
	in.CreatedAt = fromTS(created)
	in.UpdatedAt = fromTS(updated)
	in.ReleasedAt = fromTS(released)
	return in, nil
}

func (r reader) instance(ctx context.Context, where string, args ...any) (store.Instance, error) {
	row := r.q.QueryRow(ctx, `SELECT `+instanceColumns+` FROM instances WHERE `+where+r.forUpdate(), args...)
	in, err := scanInstance(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Instance{}, store.ErrNotFound
	}
	if err != nil {
		return store.Instance{}, fmt.Errorf("postgres: read instance: %w", mapErr(ctx, err))
	}
	return in, nil
}

// Instance reads the instance with id; store.ErrNotFound if there is none.
func (s *Store) Instance(ctx context.Context, id string) (_ store.Instance, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.Instance(ctx, id)
}

// InstanceByOrderLine reads the instance of an order line; store.ErrNotFound
// if there is none.
func (s *Store) InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (_ store.Instance, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.InstanceByOrderLine(ctx, orderID, orderLineID)
}

// Instance reads the instance with id; store.ErrNotFound if there is none.
// Inside a transaction the row stays locked until it ends.
func (r reader) Instance(ctx context.Context, id string) (store.Instance, error) {
	return r.instance(ctx, `id = $1`, txt(id))
}

// InstanceByOrderLine reads the instance of an order line; store.ErrNotFound
// if there is none. Inside a transaction the row stays locked until it ends.
func (r reader) InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (store.Instance, error) {
	return r.instance(ctx, `order_id = $1 AND order_line_id = $2`, txt(orderID), txt(orderLineID))
}

// instanceArgs lists the mutable fields of inst in the order of
// instanceColumns from order_state to fail_code.
func instanceArgs(inst store.Instance) []any {
	return []any{
		txt(string(inst.OrderState)), txt(inst.ProductID), txt(inst.SKUCode), txt(inst.ChargingMode), txt(inst.PeriodType), inst.PeriodNumber,
		txt(inst.LinearValue), txt(inst.CustomerID), txt(inst.CustomerName), ts(inst.ExpireTime), txt(inst.OrderJSON),
		txt(string(inst.Status)), txt(inst.FrozenBy), txt(inst.AppInfo.FrontEndURL), txt(inst.AppInfo.AdminURL), txt(inst.AppInfo.UserName),
		txt(inst.AppInfo.PasswordSealed), txt(inst.AppInfo.Memo), txt(inst.UsageValue), ts(inst.UsageTime), txt(inst.LastError),
		txt(inst.FailCode),
	}
}

// placeholders returns "$from, …, $to".
func placeholders(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		if i > from {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i))
	}
	return b.String()
}

// InsertInstance inserts inst unless its order line already has an
// instance; the unique constraint decides, so concurrent callers (in any
// process) cannot both insert: a second insert waits for the first
// transaction and then does nothing. Zero CreatedAt and UpdatedAt are set
// to now.
func (t *tx) InsertInstance(ctx context.Context, inst store.Instance) (bool, error) {
	now := time.Now()
	args := append([]any{txt(inst.ID), txt(inst.OrderID), txt(inst.OrderLineID), txt(inst.BusinessID), inst.Test},
		instanceArgs(inst)...)
	args = append(args, ts(or(inst.CreatedAt, now)), ts(or(inst.UpdatedAt, now)), ts(inst.ReleasedAt), inst.Version)
	tag, err := t.tx.Exec(ctx, `INSERT INTO instances (`+instanceColumns+`)
		VALUES (`+placeholders(1, len(args))+`)
		ON CONFLICT (order_id, order_line_id) DO NOTHING`, args...)
	if err != nil {
		return false, fmt.Errorf("postgres: insert instance: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// UpdateInstance writes the mutable fields of inst — all but ID, OrderID,
// OrderLineID, BusinessID, Test and CreatedAt, which are fixed when the
// instance is created — if the stored Version equals inst.Version, and
// increments the Version. A zero UpdatedAt is set to now.
func (t *tx) UpdateInstance(ctx context.Context, inst store.Instance) error {
	args := append(instanceArgs(inst), ts(or(inst.UpdatedAt, time.Now())), ts(inst.ReleasedAt), txt(inst.ID), inst.Version)
	tag, err := t.tx.Exec(ctx, `UPDATE instances SET
		order_state = $1, product_id = $2, sku_code = $3, charging_mode = $4, period_type = $5, period_number = $6,
		linear_value = $7, customer_id = $8, customer_name = $9, expire_time = $10, order_json = $11,
		status = $12, frozen_by = $13, app_front_end_url = $14, app_admin_url = $15, app_user_name = $16,
		app_password_sealed = $17, app_memo = $18, usage_value = $19, usage_time = $20, last_error = $21,
		fail_code = $22, updated_at = $23, released_at = $24, version = version + 1
		WHERE id = $25 AND version = $26`, args...)
	if err != nil {
		return fmt.Errorf("postgres: update instance: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRow(ctx, `SELECT 1 FROM instances WHERE id = $1`, txt(inst.ID)).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return fmt.Errorf("postgres: update instance: %w", mapErr(ctx, err))
	}
	return fmt.Errorf("postgres: update instance %s at version %d: %w", inst.ID, inst.Version, store.ErrConflict)
}

// Instances lists instances in ascending ID order (byte order).
func (s *Store) Instances(ctx context.Context, f store.InstanceFilter) (_ []store.Instance, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Status != "" {
		add(`status = ?`, txt(string(f.Status)))
	}
	if f.OrderID != "" {
		add(`order_id = ?`, txt(f.OrderID))
	}
	// The test flag is written out: true as instances_test_id's condition
	// (schema version 10), which a generic plan can then use too.
	if f.Test != nil && *f.Test {
		where = append(where, `test`)
	}
	if f.Test != nil && !*f.Test {
		where = append(where, `NOT test`)
	}
	if f.AfterID != "" {
		add(`id > ?`, txt(f.AfterID))
	}
	query := `SELECT ` + instanceColumns + ` FROM instances`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, limit(f.Limit))
	query += ` ORDER BY id LIMIT $` + strconv.Itoa(len(args))

	return queryAll(ctx, s.q, "list instances", query, args, scanInstance)
}
