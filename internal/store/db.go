package store

import (
	"context"
	"errors"
)

// DB is an open koobridge database: the handle the public package
// github.com/koobridge/koobridge/store returns to vendors and package isv
// takes. Koobridge's own packages reach its Store with Of; a vendor's code
// can only Ping and Close it.
type DB struct {
	s Store
}

// NewDB wraps s as a DB.
func NewDB(s Store) *DB { return &DB{s: s} }

// Of returns the Store behind d; nil for a nil DB.
func Of(d *DB) Store {
	if d == nil {
		return nil
	}
	return d.s
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if d == nil || d.s == nil {
		return errors.New("store: nil DB")
	}
	return d.s.Ping(ctx)
}

// Close closes the database. Calling it again returns nil or the first
// result, as the dialect does.
func (d *DB) Close() error {
	if d == nil || d.s == nil {
		return nil
	}
	return d.s.Close()
}
