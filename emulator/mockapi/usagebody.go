package mockapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/koobridge/koobridge/protocol"
)

// bodyShape is what a usage push body may hold at one place: the fields of
// an object (or of each object of an array) by exact JSON name; nil is a
// plain value.
type bodyShape struct {
	fields map[string]*bodyShape
	names  string // the field names, sorted, for error messages
}

// shapeOf is the shape of a push body whose records are of type rec: an
// object with usage_records only, a list of objects with rec's fields.
func shapeOf(rec any) *bodyShape {
	return newBodyShape(map[string]*bodyShape{"usage_records": newBodyShape(jsonFields(reflect.TypeOf(rec)))})
}

func newBodyShape(fields map[string]*bodyShape) *bodyShape {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	return &bodyShape{fields: fields, names: strings.Join(names, ", ")}
}

// jsonFields maps the JSON names of struct type t's fields to plain
// values: the record types are flat, all strings.
func jsonFields(t reflect.Type) map[string]*bodyShape {
	out := make(map[string]*bodyShape, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = nil
		}
	}
	return out
}

// The push bodies, from the protocol types the seller marshals.
var (
	newPushShape = shapeOf(protocol.UsageRecord{})
	oldPushShape = shapeOf(protocol.OldUsageRecord{})
)

// checkUsageBody refuses a push body KooGallery could read otherwise than
// the seller meant, or whose signature it could not reproduce: a key
// given twice (encoding/json would keep the last), invalid UTF-8 or a
// NUL (protocol.CheckStrictJSON), a field the push does not have, at any
// level, and keys that are not in natural (ascending byte) order in every
// object, which saas-v2.md §7.2 requires of the signed body. The old push
// is held to the same rules: its body is the same records with product_id.
// Errors name the field: a *protocol.FieldError, or a
// *protocol.DecodeError for a body that is not JSON. A byte order mark
// must have been cut off.
func checkUsageBody(body []byte, shape *bodyShape) error {
	if err := protocol.CheckStrictJSON(body, "usage push body"); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := walkBody(dec, shape, ""); err != nil {
		var fe *protocol.FieldError
		if errors.As(err, &fe) {
			return err
		}
		return &protocol.DecodeError{What: "usage push body", Err: err}
	}
	return nil
}

// walkBody reads one value from dec, at path, checking the keys of every
// object below it: known where shape knows them, in ascending order
// everywhere.
func walkBody(dec *json.Decoder, shape *bodyShape, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		prev := ""
		for i := 0; dec.More(); i++ {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			field := key
			if path != "" {
				field = path + "." + key
			}
			var child *bodyShape
			if shape != nil {
				var ok bool
				if child, ok = shape.fields[key]; !ok {
					return &protocol.FieldError{Field: field, Problem: "unknown field (the fields are " + shape.names + ")"}
				}
			}
			if i > 0 && key < prev {
				return &protocol.FieldError{Field: field, Problem: fmt.Sprintf(
					"key %q after %q: keys must be in natural (ascending) order", key, prev)}
			}
			prev = key
			if err := walkBody(dec, child, field); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkBody(dec, shape, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		return nil // a plain value
	}
	_, err = dec.Token() // the closing delimiter
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
