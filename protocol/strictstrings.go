package protocol

import (
	"slices"
	"strings"
)

// DecodeStrictStrings reads body, a JSON object of string members, for
// koobridge's own small JSON APIs (the license service for the vendor's
// client software), which owe no client the tolerance KooGallery's calls
// do. Besides the checks of every body decoder of this package (no key
// twice, also apart from letter case; valid UTF-8; no NUL; no lone
// surrogate), every key must be one of names, spelled exactly, and every
// value a string: unknown fields, numbers and null are refused. It returns
// the values by name; a name not in the body is not in the map. Errors are
// a *FieldError naming the field, or a *DecodeError.
func DecodeStrictStrings(body []byte, what string, names ...string) (map[string]string, error) {
	f, err := decodeFields(body, what, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(f.members))
	for _, m := range f.members {
		name := string(m.key)
		if !slices.Contains(names, name) {
			return nil, &FieldError{Field: shortName(name), Problem: "unknown field (the fields are " + strings.Join(names, ", ") + ")"}
		}
		if m.kind != kindString {
			return nil, &FieldError{Field: name, Problem: kindProblem("a string", m.kind)}
		}
		out[name] = jsonString(m.raw, m.esc)
	}
	return out, nil
}

// CheckStrictJSON applies the checks of every body decoder of this package
// to body, a JSON object (no key twice, also apart from letter case;
// valid UTF-8; no NUL; no lone surrogate; bounded nesting), for
// koobridge's own JSON APIs that then decode it themselves (the usage
// API). Errors are a *FieldError naming the field, or a *DecodeError.
func CheckStrictJSON(body []byte, what string) error {
	_, err := decodeFields(body, what, nil)
	return err
}
