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

const orderNotificationColumns = `id, order_id, order_line_id, test, status, order_json, last_error,
	created_at, updated_at, version`

func scanOrderNotification(row pgx.Row) (store.OrderNotification, error) {
	var (
		n                store.OrderNotification
		created, updated *time.Time
		status           string
	)
	if err := row.Scan(&n.ID, &n.OrderID, &n.OrderLineID, &n.Test, &status, &n.OrderJSON, &n.LastError,
		&created, &updated, &n.Version); err != nil {
		return store.OrderNotification{}, err
	}
	n.Status = store.OrderNotificationStatus(status)
	n.CreatedAt = fromTS(created)
	n.UpdatedAt = fromTS(updated)
	return n, nil
}

// OrderNotification reads the notification of an order line;
// store.ErrNotFound if there is none.
func (s *Store) OrderNotification(ctx context.Context, orderID, orderLineID string) (_ store.OrderNotification, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.OrderNotification(ctx, orderID, orderLineID)
}

// OrderNotification reads the notification of an order line;
// store.ErrNotFound if there is none. Inside a transaction the row stays
// locked until it ends.
func (r reader) OrderNotification(ctx context.Context, orderID, orderLineID string) (store.OrderNotification, error) {
	row := r.q.QueryRow(ctx, `SELECT `+orderNotificationColumns+` FROM order_notifications
		WHERE order_id = $1 AND order_line_id = $2`+r.forUpdate(), txt(orderID), txt(orderLineID))
	n, err := scanOrderNotification(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.OrderNotification{}, store.ErrNotFound
	}
	if err != nil {
		return store.OrderNotification{}, fmt.Errorf("postgres: read order notification: %w", mapErr(ctx, err))
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
	if f.BeforeID > 0 {
		add(`id < ?`, f.BeforeID)
	}
	query := `SELECT ` + orderNotificationColumns + ` FROM order_notifications`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, limit(f.Limit))
	query += ` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))

	return queryAll(ctx, s.q, "list order notifications", query, args, scanOrderNotification)
}

// InsertOrderNotification inserts n unless its order line already has a
// notification; the unique constraint decides, so concurrent callers (in
// any process) cannot both insert: a second insert waits for the first
// transaction and then does nothing. The ID is assigned by the database
// and n.ID is ignored. An empty Status is stored as pending; zero
// CreatedAt and UpdatedAt are set to now.
func (t *tx) InsertOrderNotification(ctx context.Context, n store.OrderNotification) (bool, error) {
	now := time.Now()
	status := n.Status
	if status == "" {
		status = store.NotificationPending
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO order_notifications
		(order_id, order_line_id, test, status, order_json, last_error, created_at, updated_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (order_id, order_line_id) DO NOTHING`,
		txt(n.OrderID), txt(n.OrderLineID), n.Test, txt(string(status)), txt(n.OrderJSON), txt(n.LastError),
		ts(or(n.CreatedAt, now)), ts(or(n.UpdatedAt, now)), n.Version)
	if err != nil {
		return false, fmt.Errorf("postgres: insert order notification: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// UpdateOrderNotification writes Status, OrderJSON, LastError and
// UpdatedAt of n to the notification of n's order line (OrderID,
// OrderLineID) if its stored Version equals n.Version, and increments the
// Version. The other fields are fixed when the notification is inserted. A
// zero UpdatedAt is set to now.
func (t *tx) UpdateOrderNotification(ctx context.Context, n store.OrderNotification) error {
	tag, err := t.tx.Exec(ctx, `UPDATE order_notifications SET
		status = $1, order_json = $2, last_error = $3, updated_at = $4, version = version + 1
		WHERE order_id = $5 AND order_line_id = $6 AND version = $7`,
		txt(string(n.Status)), txt(n.OrderJSON), txt(n.LastError), ts(or(n.UpdatedAt, time.Now())),
		txt(n.OrderID), txt(n.OrderLineID), n.Version)
	if err != nil {
		return fmt.Errorf("postgres: update order notification: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRow(ctx, `SELECT 1 FROM order_notifications WHERE order_id = $1 AND order_line_id = $2`,
		txt(n.OrderID), txt(n.OrderLineID)).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return fmt.Errorf("postgres: update order notification: %w", mapErr(ctx, err))
	}
	return fmt.Errorf("postgres: update order notification %s/%s at version %d: %w",
		n.OrderID, n.OrderLineID, n.Version, store.ErrConflict)
}
