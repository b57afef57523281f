package protocol

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseQuery is the strict counterpart of url.ParseQuery for the query
// strings of KooGallery's calls (signature, timestamp and nonce of the
// POST interfaces; every parameter of the V1 GET interfaces). It splits
// rawQuery on '&' and decodes names and values as url.ParseQuery does
// ('+' is a space), keeping values verbatim (no trimming), but refuses
// instead of guessing:
//
//   - a parameter given more than once (*FieldError "given N times in the
//     query string"), so that two signatures, timestamps or nonces are never
//     resolved by picking one;
//   - a malformed percent-escape, a ';' separator;
//   - a name or value that is not valid UTF-8 once decoded, or that holds
//     a NUL character.
//
// Problems of a value give a *FieldError whose Field is the parameter name
// (shortened when long or unusual); problems of a name, which cannot be
// quoted, a *DecodeError. Both map to CodeInvalidParam. Call it before
// authentication, on every route.
func ParseQuery(rawQuery string) (url.Values, error) {
	v := url.Values{}
	repeated, hasRepeat := "", false
	for rawQuery != "" {
		var seg string
		seg, rawQuery, _ = strings.Cut(rawQuery, "&")
		if seg == "" {
			continue
		}
		if strings.Contains(seg, ";") {
			return nil, queryError("';' is not a separator (use '&')")
		}
		rawName, rawValue, _ := strings.Cut(seg, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, queryError("malformed percent-escape in a parameter name")
		}
		switch textProblem(name) {
		case problemNotUTF8:
			return nil, queryError("a parameter name is not valid UTF-8")
		case problemNUL:
			return nil, queryError("a parameter name contains a NUL character")
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, &FieldError{Field: shortName(name), Problem: "malformed percent-escape"}
		}
		if problem := textProblem(value); problem != "" {
			return nil, &FieldError{Field: shortName(name), Problem: problem}
		}
		old := v[name]
		if len(old) == 1 && !hasRepeat {
			repeated, hasRepeat = name, true
		}
		v[name] = append(old, value)
	}
	if hasRepeat {
		return nil, &FieldError{Field: shortName(repeated),
			Problem: "given " + strconv.Itoa(len(v[repeated])) + " times in the query string"}
	}
	return v, nil
}

// queryError is a *DecodeError about the query string.
func queryError(msg string) error {
	return &DecodeError{What: "query string", Err: errors.New(msg)}
}

// Problems of decoded query text.
const (
	problemNotUTF8 = "not valid UTF-8"
	problemNUL     = "contains a NUL character"
)

// textProblem says what makes decoded text unacceptable, or "".
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return problemNotUTF8
	}
	if strings.IndexByte(s, 0) >= 0 {
		return problemNUL
	}
	return ""
}
