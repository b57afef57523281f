package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

const orderNotificationColumns = `id, order_id, order_line_id, test, status, order_json, last_error,
	created_at, updated_at, version`

func scanOrderNotification(sc scanner) (store.OrderNotification, error) {
	var (
		n                      store.OrderNotification
		test, created, updated int64
		status                 string
	)
	if err := sc.Scan(&n.ID, &n.OrderID, &n.OrderLineID, &test, &status, &n.OrderJSON, &n.LastError,
		&created, &updated, &n.Version); err != nil {
		return store.OrderNotification{}, err
	}
	n.Test = test != 0
	n.Status = store.OrderNotificationStatus(status)
	n.CreatedAt = fromMS(created)
	n.UpdatedAt = fromMS(updated)
	return n, nil
}

// OrderNotification reads the notification of an order line;
// store.ErrNotFound if there is none.
func (s *Store) OrderNotification(ctx context.Context, orderID, orderLineID string) (_ store.OrderNotification, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.OrderNotification(ctx, orderID, orderLineID)
}

// OrderNotification reads the notification of an order line;
// store.ErrNotFound if there is none.
func (r reader) OrderNotification(ctx context.Context, orderID, orderLineID string) (store.OrderNotification, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+orderNotificationColumns+` FROM order_notifications
		WHERE order_id = ? AND order_line_id = ?`, orderID, orderLineID)
	n, err := scanOrderNotification(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.OrderNotification{}, store.ErrNotFound
	}
	if err != nil {
		return store.OrderNotification{}, fmt.Errorf("sqlite: read order notification: %w", mapErr(err))
	}
	return n, nil
}

// OrderNotifications lists the notifications matching f, newest (highest
// ID) first.
func (s *Store) OrderNotifications(ctx context.Context, f store.OrderNotificationFilter) (_ []store.OrderNotification, err error) {
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
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	query := `SELECT ` + orderNotificationColumns + ` FROM order_notifications`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))

	return queryAll(ctx, s.db, "list order notifications", query, args, scanOrderNotification)
}

// InsertOrderNotification inserts n unless its order line already has a
// notification; the unique constraint decides, so concurrent callers (in
// any process) cannot both insert. The ID is assigned by the database and
// n.ID is ignored. An empty Status is stored as pending; zero CreatedAt and
// UpdatedAt are set to now.
func (t *tx) InsertOrderNotification(ctx context.Context, n store.OrderNotification) (bool, error) {
	now := time.Now()
	status := n.Status
	if status == "" {
		status = store.NotificationPending
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO order_notifications
		(order_id, order_line_id, test, status, order_json, last_error, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (order_id, order_line_id) DO NOTHING`,
		n.OrderID, n.OrderLineID, boolInt(n.Test), string(status), n.OrderJSON, n.LastError,
		ms(or(n.CreatedAt, now)), ms(or(n.UpdatedAt, now)), n.Version)
	if err != nil {
		return false, fmt.Errorf("sqlite: insert order notification: %w", mapErr(err))
	}
	count, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: insert order notification: %w", mapErr(err))
	}
	return count == 1, nil
}

// UpdateOrderNotification writes Status, OrderJSON, LastError and
// UpdatedAt of n to the notification of n's order line (OrderID,
// OrderLineID) if its stored Version equals n.Version, and increments the
// Version. The other fields are fixed when the notification is inserted. A
// zero UpdatedAt is set to now.
func (t *tx) UpdateOrderNotification(ctx context.Context, n store.OrderNotification) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE order_notifications SET
		status = ?, order_json = ?, last_error = ?, updated_at = ?, version = version + 1
		WHERE order_id = ? AND order_line_id = ? AND version = ?`,
		string(n.Status), n.OrderJSON, n.LastError, ms(or(n.UpdatedAt, time.Now())),
		n.OrderID, n.OrderLineID, n.Version)
	if err != nil {
		return fmt.Errorf("sqlite: update order notification: %w", mapErr(err))
	}
	count, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: update order notification: %w", mapErr(err))
	}
	if count == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRowContext(ctx, `SELECT 1 FROM order_notifications WHERE order_id = ? AND order_line_id = ?`,
		n.OrderID, n.OrderLineID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlite: update order notification: %w", mapErr(err))
	}
	return fmt.Errorf("sqlite: update order notification %s/%s at version %d: %w",
		n.OrderID, n.OrderLineID, n.Version, store.ErrConflict)
}
