package protocol

import (
	"errors"
	"strings"
	"testing"
)

// with returns a copy of v changed by f.
func with[T any](v T, f func(*T)) T {
	f(&v)
	return v
}

// long returns n characters.
func long(n int) string { return strings.Repeat("x", n) }

// validator is anything with a Validate method.
type validator interface{ Validate() error }

type validateCase struct {
	name  string
	req   validator
	field string // "" = valid
}

// runValidate checks each case: valid ones return nil, invalid ones a
// *FieldError naming field.
func runValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantField(t, tc.req.Validate(), tc.field)
		})
	}
}

// wantField asserts err is nil (field == "") or a *FieldError for field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v (%T), want *FieldError for %q", err, err, field)
	}
	if fe.Field != field {
		t.Fatalf("got field %q (%v), want %q", fe.Field, err, field)
	}
	if ResultCodeFor(err) != CodeInvalidParam {
		t.Fatalf("ResultCodeFor = %s, want 000002", ResultCodeFor(err))
	}
}
