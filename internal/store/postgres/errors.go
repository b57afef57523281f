package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koobridge/koobridge/internal/store"
)

// sqlState returns the SQLSTATE of a server error in err's chain, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// isRetryable reports whether PostgreSQL asks for the transaction to be
// run again: a serialisation failure or a deadlock.
func isRetryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// isConnLoss reports whether err says the database could not be reached
// or the connection broke: the statement did not complete, and a
// transaction it was part of did not commit.
func isConnLoss(err error) bool {
	if err == nil {
		return false
	}
	switch code := sqlState(err); {
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", // admin_shutdown
		code == "57P02", // crash_shutdown
		code == "57P03", // cannot_connect_now
		code == "53300": // too_many_connections
		return true
	case code != "":
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &netErr):
		// context.DeadlineExceeded is a net.Error too, but a context
		// running out says nothing about the connection.
		return !errors.Is(err, context.DeadlineExceeded)
	}
	return false
}

// isServerTrouble reports errors that say the server cannot do the work
// now, whatever the statement: out of disk, memory or other resources
// (class 53), system and I/O errors (class 58), a read-only server (25006,
// typically a demoted primary after a failover) and a dropped database
// (57P04). SQLite's store calls the same conditions unavailable.
func isServerTrouble(err error) bool {
	switch code := sqlState(err); {
	case strings.HasPrefix(code, "53"), strings.HasPrefix(code, "58"), code == "25006", code == "57P04":
		return true
	}
	return false
}

// mapErr wraps failures to reach the database with store.ErrUnavailable
// and leaves other errors as they are. Errors caused by ctx ending are
// returned as such: the caller gave up, the database did not fail.
func mapErr(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)) {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if isConnLoss(err) || isRetryable(err) || isServerTrouble(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}
