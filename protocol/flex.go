package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FlexString is a string that also accepts a JSON number or boolean (kept
// as its literal text) and, so decoding never fails on an unexpected shape,
// an object or array (kept as compact JSON text). JSON null leaves it
// unchanged. It marshals as a JSON string. That leniency serves the Open
// API replies; the request decoders refuse a boolean, object or array for
// the String fields of a request before FlexString sees it.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("protocol: empty JSON value")
	}
	switch b[0] {
	case 'n':
		return nil
	case '"':
		if t, ok := plainJSONString(b); ok {
			*s = FlexString(t)
			return nil
		}
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("protocol: decode string: %w", err)
		}
		*s = FlexString(v)
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return fmt.Errorf("protocol: decode string: %w", err)
		}
		*s = FlexString(buf.String())
	default:
		*s = FlexString(b)
	}
	return nil
}

// String returns s as a plain string.
func (s FlexString) String() string { return string(s) }

// plainJSONString returns the content of the JSON string b when it needs no
// decoding: quoted, no escapes, no control characters, valid UTF-8. It is
// the fast path of FlexString: what encoding/json would give, without a
// second pass through it.
func plainJSONString(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	t := b[1 : len(b)-1]
	ascii := true
	for _, c := range t {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(t) {
		return nil, false
	}
	return t, true
}

// FlexNumber is a decimal number kept as its text, accepting a JSON number
// or a string (linearValue, amount). JSON null leaves it unchanged. It
// marshals as a JSON number when its text is one, otherwise as a string.
type FlexNumber string

// UnmarshalJSON implements json.Unmarshaler. Objects and arrays are
// rejected; a string is kept trimmed, even when it is not a number, so
// that decoding stays lenient (Float64 and Int64 report bad text).
func (n *FlexNumber) UnmarshalJSON(b []byte) error {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return fmt.Errorf("protocol: decode number: got %c", t[0])
	}
	var s FlexString
	if err := s.UnmarshalJSON(t); err != nil {
		return err
	}
	if string(t) != "null" {
		*n = FlexNumber(strings.TrimSpace(string(s)))
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (n FlexNumber) MarshalJSON() ([]byte, error) {
	if isJSONNumber(string(n)) {
		return []byte(n), nil
	}
	return json.Marshal(string(n))
}

// String returns the number's text.
func (n FlexNumber) String() string { return string(n) }

// Float64 parses the number.
func (n FlexNumber) Float64() (float64, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, fmt.Errorf("protocol: number %q: %w", string(n), err)
	}
	return f, nil
}

// Int64 parses the number as an integer.
func (n FlexNumber) Int64() (int64, error) {
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("protocol: number %q: %w", string(n), err)
	}
	return i, nil
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if c != '-' && (c < '0' || c > '9') {
		return false
	}
	var v any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return false
	}
	_, ok := v.(json.Number)
	return ok && !d.More() && d.InputOffset() == int64(len(s))
}

// FlexInt is an integer that also accepts a numeric string ("1"). JSON null
// and the empty string leave it unchanged, so a decoder can preset it to
// tell "absent" from 0. It marshals as a JSON number.
type FlexInt int

// UnmarshalJSON implements json.Unmarshaler.
func (i *FlexInt) UnmarshalJSON(b []byte) error {
	var s FlexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	t := strings.TrimSpace(string(s))
	if t == "" || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	v, err := strconv.ParseInt(t, 10, 32)
	if err != nil {
		return fmt.Errorf("protocol: not an integer: %q", t)
	}
	*i = FlexInt(v)
	return nil
}

// FlexBool is a boolean that also accepts "true"/"false" (any case) and
// 1/0 as number or string. JSON null leaves it unchanged.
type FlexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (v *FlexBool) UnmarshalJSON(b []byte) error {
	var s FlexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(string(s))) {
	case "true", "1":
		*v = true
	case "false", "0":
		*v = false
	default:
		return fmt.Errorf("protocol: not a boolean: %q", string(s))
	}
	return nil
}

// decimalScale is 10^4: Decimal keeps four decimal places (Double(12,4)).
const decimalScale = 10000

// Decimal is a decimal number with at most four decimal places, stored
// exactly as an integer count of 1/10000 (usageValue, Double(12,4)). It
// marshals as a JSON number and decodes from a JSON number or string.
type Decimal struct {
	units int64
}

// maxDecimalUnits keeps values well inside float64's exact integer range.
const maxDecimalUnits = 1 << 52

// ParseDecimal parses [-]digits[.digits] with at most four decimals.
func ParseDecimal(s string) (Decimal, error) {
	t := strings.TrimSpace(s)
	if !isDecimal(t, 4) {
		return Decimal{}, fmt.Errorf("protocol: decimal %q: not a number with at most 4 decimals", s)
	}
	neg := strings.HasPrefix(t, "-")
	t = strings.TrimPrefix(t, "-")
	intPart, frac, _ := strings.Cut(t, ".")
	frac += strings.Repeat("0", 4-len(frac))
	ip, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || ip > maxDecimalUnits/decimalScale {
		return Decimal{}, fmt.Errorf("protocol: decimal %q: out of range", s)
	}
	fp, _ := strconv.ParseInt(frac, 10, 64)
	u := ip*decimalScale + fp
	if neg {
		u = -u
	}
	return Decimal{units: u}, nil
}

// DecimalFromFloat rounds f to four decimals. It fails for NaN, infinities
// and values too large to hold exactly.
func DecimalFromFloat(f float64) (Decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > maxDecimalUnits/decimalScale {
		return Decimal{}, fmt.Errorf("protocol: decimal from %v: out of range", f)
	}
	return Decimal{units: int64(math.Round(f * decimalScale))}, nil
}

// String formats d without trailing zeros: "12.5", "3", "-0.0001".
func (d Decimal) String() string {
	u := d.units
	sign := ""
	if u < 0 {
		sign, u = "-", -u
	}
	s := sign + strconv.FormatInt(u/decimalScale, 10)
	if frac := u % decimalScale; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%04d", frac), "0")
	}
	return s
}

// DecimalFromUnits returns the decimal of u ten-thousandths.
func DecimalFromUnits(u int64) Decimal { return Decimal{units: u} }

// Units returns d in ten-thousandths.
func (d Decimal) Units() int64 { return d.units }

// Float64 returns d as a float64.
func (d Decimal) Float64() float64 { return float64(d.units) / decimalScale }

// Sign returns -1, 0 or 1.
func (d Decimal) Sign() int {
	switch {
	case d.units < 0:
		return -1
	case d.units > 0:
		return 1
	}
	return 0
}

// MarshalJSON implements json.Marshaler: a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON implements json.Unmarshaler: a JSON number or a string
// holding one, at most four decimals. JSON null leaves d unchanged.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	var s FlexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	v, err := ParseDecimal(string(s))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// unquoteJSONText returns the JSON text inside b when b is a JSON string
// (fields documented as "JSON text in a string"), and b itself otherwise.
// ok is false when the string is blank.
func unquoteJSONText(b []byte) (text []byte, ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '"' {
		return b, true, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, false, err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false, nil
	}
	return []byte(s), true, nil
}
