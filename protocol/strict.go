package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Strict reading of request bodies.
//
// Ambiguous input is refused, not resolved: every body decoder of the
// package reads its body through decodeFields, which checks it in one pass
// before anything is decoded, and refuses
//
//   - a key given twice in one object, at any depth, also when the two
//     spellings differ only in letter case (encoding/json matches field
//     names case-insensitively, so both would land in the same field);
//   - bytes that are not valid UTF-8, and \u escapes that do not decode to
//     valid UTF-8 (a lone surrogate such as \ud800);
//   - a NUL character (\u0000) in any string or key;
//   - a value of the wrong kind where a field's kind is known: a boolean,
//     an object or an array where the spec prints String (numbers stay
//     accepted, kept as their literal text), and the shapes of the nested
//     lists and objects (userList, orgInfoList, productInfo).
//
// Fields documented as "JSON text in a string" (userList, orgInfo,
// orgInfoList, productInfo) are checked the same way inside the string.
// Tolerance stays where the spec is vague: unknown fields are ignored,
// JSON null counts as absent, Kit integers and booleans keep their
// documented variants (FlexInt, FlexBool).

// maxNesting bounds how deeply a request body may nest objects and arrays.
// Real bodies nest four levels at most.
const maxNesting = 100

// jsonKind is the kind of a JSON value; the values are bits so that a rule
// can allow several.
type jsonKind uint8

const (
	kindNull jsonKind = 1 << iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

// noun names k for error messages.
func (k jsonKind) noun() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindObject:
		return "an object"
	case kindArray:
		return "an array"
	}
	return "a value"
}

// fieldRule says which kinds of value a field may hold.
type fieldRule struct {
	allow jsonKind // kinds accepted; 0 means any
	want  string   // what is expected, for the error message
	text  bool     // a string holds JSON text, checked by the same rule
	elem  shape    // fields of the object(s) below, nil when unknown
}

// shape holds the rules of an object's known fields, keyed by folded name.
type shape map[string]fieldRule

// newShape returns a shape for rules keyed by JSON field name.
func newShape(rules map[string]fieldRule) shape {
	s := make(shape, len(rules))
	for name, r := range rules {
		s[string(foldName(nil, []byte(name)))] = r
	}
	return s
}

// Rules for the kinds of request fields.
var (
	// ruleString: String in the spec; a number is kept as its text.
	ruleString = fieldRule{allow: kindString | kindNumber | kindNull, want: "a string"}
	// ruleNumber: a number, or a string holding one (FlexNumber).
	ruleNumber = fieldRule{allow: kindNumber | kindString | kindNull, want: "a number"}
)

// ruleObject: an object whose fields follow elem.
func ruleObject(elem shape) fieldRule {
	return fieldRule{allow: kindObject | kindNull, want: "an object", elem: elem}
}

// ruleList: an array of objects, or a JSON string holding one.
func ruleList(elem shape) fieldRule {
	return fieldRule{allow: kindArray | kindString | kindNull, want: "an array", text: true, elem: elem}
}

// ruleObjectOrList: an object or an array of objects, or a JSON string
// holding either.
func ruleObjectOrList(elem shape) fieldRule {
	return fieldRule{allow: kindObject | kindArray | kindString | kindNull, want: "an object or an array", text: true, elem: elem}
}

// Shapes of the nested request objects. The top-level String fields are
// checked against the Go type while decoding (decodeFieldsInto).
var (
	productInfoShape = newShape(map[string]fieldRule{
		"productId": ruleString, "skuCode": ruleString, "productName": ruleString, "linearValue": ruleNumber,
	})
	kitUserShape = newShape(map[string]fieldRule{
		"email": ruleString, "employeeCode": ruleString, "entryDate": ruleString, "mobile": ruleString,
		"name": ruleString, "orgCode": ruleString, "position": ruleString, "role": ruleString,
		"userName": ruleString, "workPlace": ruleString,
		"extension": ruleObject(newShape(map[string]fieldRule{
			"entryDate": ruleString, "workPlace": ruleString, "employeeCode": ruleString, "position": ruleString,
		})),
	})
	kitOrgShape = newShape(map[string]fieldRule{
		"orgCode": ruleString, "orgName": ruleString, "name": ruleString, "parentCode": ruleString,
	})

	v2BodyShape       = newShape(map[string]fieldRule{"productInfo": ruleObjectOrList(productInfoShape)})
	authSyncShape     = newShape(map[string]fieldRule{"userList": ruleList(kitUserShape)})
	allOrgSyncShape   = newShape(map[string]fieldRule{"orgInfo": ruleList(kitOrgShape), "orgInfoList": ruleList(kitOrgShape)})
	extendParamsShape = newShape(map[string]fieldRule{}) // saasExtendParams: array of {name, value}, any kinds
)

// kindProblem is the problem text for a value of kind got where want is expected.
func kindProblem(want string, got jsonKind) string {
	return "must be " + want + ", not " + got.noun()
}

// member is one top-level member of a checked request body.
type member struct {
	key  []byte   // the key, unescaped
	kind jsonKind // the value's kind
	raw  []byte   // the value's JSON text
	esc  bool     // a string value holds escapes
}

// fields is a request body that passed the strict checks: its top-level
// members in order. Keys are unique, also apart from letter case.
type fields struct {
	members []member
}

// get returns the member with exactly the key name.
func (f *fields) get(name string) (member, bool) {
	for _, m := range f.members {
		if string(m.key) == name {
			return m, true
		}
	}
	return member{}, false
}

// str returns the String field name ("" when absent or null; a number as
// its text). A boolean, object or array gives a *FieldError.
func (f *fields) str(name string) (string, error) {
	m, ok := f.get(name)
	if !ok {
		return "", nil
	}
	switch m.kind {
	case kindString:
		return jsonString(m.raw, m.esc), nil
	case kindNumber:
		return string(m.raw), nil
	case kindNull:
		return "", nil
	}
	return "", &FieldError{Field: name, Problem: kindProblem("a string", m.kind)}
}

// scanError is a body that is not JSON, or a problem found at the top level.
type scanError struct {
	off int // byte offset of the problem, < 0 when it is not about one place
	msg string
}

func (e *scanError) Error() string {
	if e.off < 0 {
		return e.msg
	}
	return "invalid JSON at byte " + strconv.Itoa(e.off) + ": " + e.msg
}

// decodeFields checks a request body (see the comment at the top of this
// file) and returns its top-level members. sh holds the rules of the
// nested fields, nil when there are none. A UTF-8 byte order mark at the
// start is tolerated: it is not JSON, but some clients send one. Errors
// are a *FieldError naming the field, or a *DecodeError.
func decodeFields(body []byte, what string, sh shape) (*fields, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	s := newScanner(body)
	defer s.release()
	s.top = true
	s.members = make([]member, 0, 16)
	s.skipSpace()
	if s.pos == len(body) {
		return nil, &DecodeError{What: what, Err: &scanError{off: s.pos, msg: "empty body"}}
	}
	if body[s.pos] != '{' {
		return nil, &DecodeError{What: what, Err: errors.New("not a JSON object")}
	}
	if err := s.document(fieldRule{allow: kindObject, elem: sh}); err != nil {
		return nil, wrapScan(err, what)
	}
	return &fields{members: s.members}, nil
}

// checkJSON applies the strict checks to a JSON value that is not a request
// body, such as the decoded saasExtendParams; errors are reported for the
// field named field.
func checkJSON(data []byte, field string, r fieldRule) error {
	s := newScanner(data)
	defer s.release()
	s.path = append(s.path, pathSeg{key: []byte(field), index: -1})
	if err := s.document(r); err != nil {
		var se *scanError
		if errors.As(err, &se) {
			return &FieldError{Field: field, Problem: "not valid JSON: " + se.Error()}
		}
		return err
	}
	return nil
}

func wrapScan(err error, what string) error {
	var se *scanError
	if errors.As(err, &se) {
		return &DecodeError{What: what, Err: se}
	}
	return err
}

// pathSeg is one step of the location being scanned: a key, or an array
// index when index >= 0.
type pathSeg struct {
	key   []byte
	index int
}

// keyRef is a key of an open object: as written, and its folded form in
// the scanner's arena.
type keyRef struct {
	orig     []byte
	from, to int
}

// scanner checks JSON text in one pass: syntax, UTF-8, escapes, NUL,
// duplicate keys and the kinds of the fields a shape knows.
type scanner struct {
	data    []byte
	pos     int
	depth   int
	top     bool      // collect the members of the outermost object
	members []member  // collected members
	path    []pathSeg // location, for error messages
	arena   []byte    // folded keys of the open objects
	keys    []keyRef  // keys of the open objects, innermost last
	buf     []byte    // scratch for unescaping keys
}

// scanners recycles scanners and their buffers: decoders run on every call.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// newScanner returns a scanner of data; give it back with release.
func newScanner(data []byte) *scanner {
	s := scanners.Get().(*scanner)
	s.data = data
	return s
}

// release resets s and returns it to the pool. Nothing s returned may
// point into its buffers.
func (s *scanner) release() {
	clear(s.path[:cap(s.path)])
	clear(s.keys[:cap(s.keys)])
	*s = scanner{path: s.path[:0], keys: s.keys[:0], arena: s.arena[:0], buf: s.buf[:0]}
	scanners.Put(s)
}

// document scans data as one JSON value with nothing but space after it.
func (s *scanner) document(r fieldRule) error {
	if _, err := s.value(r); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return s.syntax("unexpected data after the value")
	}
	return nil
}

// syntax reports malformed JSON at the current position.
func (s *scanner) syntax(msg string) error {
	return &scanError{off: s.pos, msg: msg}
}

// fail reports a problem at the current location: a *FieldError naming the
// field, or a *scanError when the location is the body itself.
func (s *scanner) fail(problem string) error {
	if len(s.path) == 0 {
		return &scanError{off: -1, msg: problem}
	}
	return &FieldError{Field: s.pathString(), Problem: problem}
}

// maxPathLen bounds the field names of error messages (they end up in
// resultMsg).
const maxPathLen = 96

// pathString renders the location as field[2].name; long untrusted keys
// are shortened.
func (s *scanner) pathString() string {
	var b strings.Builder
	for i, seg := range s.path {
		if seg.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(seg.index))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(shortName(string(seg.key)))
	}
	p := b.String()
	if len(p) > maxPathLen {
		// Keep the start and the end, where the field that failed is.
		head, tail := p[:maxPathLen/2], p[len(p)-maxPathLen/2:]
		for !utf8.ValidString(head) {
			head = head[:len(head)-1]
		}
		for !utf8.ValidString(tail) {
			tail = tail[1:]
		}
		p = head + "…" + tail
	}
	return p
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value at s.pos and checks its kind against r.
func (s *scanner) value(r fieldRule) (jsonKind, error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0, s.syntax("unexpected end of input")
	}
	var k jsonKind
	switch c := s.data[s.pos]; {
	case c == '{':
		k = kindObject
	case c == '[':
		k = kindArray
	case c == '"':
		k = kindString
	case c == 't' || c == 'f':
		k = kindBool
	case c == 'n':
		k = kindNull
	case c == '-' || ('0' <= c && c <= '9'):
		k = kindNumber
	default:
		return 0, s.syntax("unexpected character " + quoteByte(c))
	}
	if r.allow != 0 && r.allow&k == 0 {
		return 0, s.fail(kindProblem(r.want, k))
	}
	switch k {
	case kindObject:
		return k, s.object(r.elem)
	case kindArray:
		return k, s.array(r.elem)
	case kindString:
		start := s.pos
		esc, err := s.str(false)
		if err != nil || !r.text {
			return k, err
		}
		return k, s.jsonText(s.data[start:s.pos], esc, r)
	case kindBool:
		if bytes.HasPrefix(s.data[s.pos:], []byte("true")) {
			s.pos += 4
			return k, nil
		}
		return k, s.literal("false")
	case kindNull:
		return k, s.literal("null")
	}
	return k, s.number()
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return s.syntax("invalid literal")
	}
	s.pos += len(word)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() error {
	d, i := s.data, s.pos
	if d[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		s.pos = i
		return s.syntax("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			s.pos = i
			return s.syntax("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			s.pos = i
			return s.syntax("invalid number")
		}
	}
	s.pos = i
	return nil
}

// plainByte marks the string bytes that need no attention: printable ASCII
// other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans a string at s.pos and reports whether it holds escapes. It
// refuses invalid UTF-8, NUL and lone surrogates; key says the string is an
// object key (the location is then its object).
func (s *scanner) str(key bool) (esc bool, err error) {
	d := s.data
	what := ""
	if key {
		what = "an object key "
	}
	i := s.pos + 1
	for {
		for i < len(d) && plainByte[d[i]] {
			i++
		}
		if i >= len(d) {
			s.pos = i
			return esc, s.syntax("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				s.pos = i
				return esc, s.syntax("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				s.pos = i
				return esc, s.syntax("invalid escape")
			}
			r, ok := hex4(d[i+2:])
			if !ok {
				s.pos = i
				return esc, s.syntax("invalid \\u escape")
			}
			switch {
			case r == 0:
				return esc, s.fail(what + "contains a NUL character (\\u0000)")
			case utf16IsHigh(r):
				if i+12 <= len(d) && d[i+6] == '\\' && d[i+7] == 'u' {
					if lo, ok := hex4(d[i+8:]); ok && utf16IsLow(lo) {
						i += 12
						continue
					}
				}
				return esc, s.fail(what + "contains a lone surrogate escape (" + string(d[i:i+6]) + ")")
			case utf16IsLow(r):
				return esc, s.fail(what + "contains a lone surrogate escape (" + string(d[i:i+6]) + ")")
			}
			i += 6
		case c < 0x20:
			s.pos = i
			return esc, s.syntax("control character in string")
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				if key {
					return esc, s.fail("an object key is not valid UTF-8")
				}
				return esc, s.fail("not valid UTF-8")
			}
			i += size
		}
	}
}

func utf16IsHigh(r rune) bool { return 0xD800 <= r && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return 0xDC00 <= r && r < 0xE000 }

// hex4 parses four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// small is the number of keys of an object compared one by one; larger
// objects use a map.
const small = 16

// object scans an object at s.pos; sh holds the rules of its fields.
func (s *scanner) object(sh shape) error {
	s.depth++
	if s.depth > maxNesting {
		return s.syntax("nested more than " + strconv.Itoa(maxNesting) + " levels deep")
	}
	top := s.top && s.depth == 1
	arenaMark, keysMark := len(s.arena), len(s.keys)
	var seen map[string]int // folded key → index in s.keys, for large objects
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.syntax("expected a string key")
		}
		kstart := s.pos
		esc, err := s.str(true)
		if err != nil {
			return err
		}
		key := s.data[kstart+1 : s.pos-1]
		if esc {
			s.buf = appendUnescaped(s.buf[:0], key)
			key = bytes.Clone(s.buf)
		}
		from := len(s.arena)
		s.arena = foldName(s.arena, key)
		folded := s.arena[from:]
		s.path = append(s.path, pathSeg{key: key, index: -1})
		prev := -1
		if seen == nil {
			for i := keysMark; i < len(s.keys); i++ {
				if k := s.keys[i]; bytes.Equal(s.arena[k.from:k.to], folded) {
					prev = i
					break
				}
			}
			if len(s.keys)-keysMark >= small {
				seen = make(map[string]int, 2*small)
				for i := keysMark; i < len(s.keys); i++ {
					seen[string(s.arena[s.keys[i].from:s.keys[i].to])] = i
				}
			}
		} else if i, ok := seen[string(folded)]; ok {
			prev = i
		}
		if prev >= 0 {
			if p := s.keys[prev].orig; !bytes.Equal(p, key) {
				return s.fail("duplicate key (the same as " + shortName(string(p)) + " apart from letter case)")
			}
			return s.fail("duplicate key")
		}
		if seen != nil {
			seen[string(folded)] = len(s.keys)
		}
		s.keys = append(s.keys, keyRef{orig: key, from: from, to: len(s.arena)})
		var r fieldRule
		if sh != nil {
			r = sh[string(folded)]
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.syntax("expected ':' after an object key")
		}
		s.pos++
		s.skipSpace()
		vstart := s.pos
		k, err := s.value(r)
		if err != nil {
			return err
		}
		if top {
			s.members = append(s.members, member{key: key, kind: k, raw: s.data[vstart:s.pos],
				esc: k == kindString && bytes.IndexByte(s.data[vstart:s.pos], '\\') >= 0})
		}
		s.path = s.path[:len(s.path)-1]
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.syntax("unexpected end of input")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			continue
		case '}':
			s.pos++
			s.arena, s.keys = s.arena[:arenaMark], s.keys[:keysMark]
			s.depth--
			return nil
		}
		return s.syntax("expected ',' or '}' after an object member")
	}
}

// array scans an array at s.pos; when elem is set its elements must be
// objects with those fields (or null).
func (s *scanner) array(elem shape) error {
	s.depth++
	if s.depth > maxNesting {
		return s.syntax("nested more than " + strconv.Itoa(maxNesting) + " levels deep")
	}
	r := fieldRule{}
	if elem != nil {
		r = ruleObject(elem)
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for i := 0; ; i++ {
		s.path = append(s.path, pathSeg{index: i})
		if _, err := s.value(r); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.syntax("unexpected end of input")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			continue
		case ']':
			s.pos++
			s.depth--
			return nil
		}
		return s.syntax("expected ',' or ']' after an array element")
	}
}

// jsonText checks the JSON text held in the string raw (quotes included)
// for a field documented as "JSON text in a string"; blank text is absent.
// The text is checked like the body, by r without its string form.
func (s *scanner) jsonText(raw []byte, esc bool, r fieldRule) error {
	text := raw[1 : len(raw)-1]
	if esc {
		text = appendUnescaped(nil, text)
	}
	text = bytes.TrimSpace(text) // as unquoteJSONText does
	if len(text) == 0 {
		return nil
	}
	inner := r
	inner.allow &^= kindString
	inner.text = false
	inner.want = "JSON text of " + r.want
	data, pos, top, depth := s.data, s.pos, s.top, len(s.path)
	s.data, s.pos, s.top = text, 0, false
	err := s.document(inner)
	var se *scanError
	if errors.As(err, &se) {
		// Name the field that holds the text, not a place inside it.
		s.path = s.path[:depth]
		err = s.fail("not valid JSON text (" + se.msg + " at byte " + strconv.Itoa(se.off) + ")")
	}
	s.data, s.pos, s.top = data, pos, top
	return err
}

// quoteByte shows a byte of malformed input: 'x' when printable ASCII,
// otherwise its hex value.
func quoteByte(c byte) string {
	if c > ' ' && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// appendUnescaped appends the string content b (between the quotes, already
// checked by scanner.str) to dst with its escapes decoded.
func appendUnescaped(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch b[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(b[i+2:])
			if utf16IsHigh(r) {
				lo, _ := hex4(b[i+8:])
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, b[i+1])
		}
		i += 2
	}
	return dst
}

// jsonString returns the content of the checked JSON string raw.
func jsonString(raw []byte, esc bool) string {
	b := raw[1 : len(raw)-1]
	if !esc {
		return string(b)
	}
	return string(appendUnescaped(make([]byte, 0, len(b)), b))
}

// foldName appends the case-folded form of name to dst, as encoding/json
// folds names to match them to struct fields: ASCII letters upper-cased,
// other runes replaced by the smallest rune of their fold set.
func foldName(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	return dst
}

// shortName returns an untrusted field or parameter name fit for an error
// message: as it is when it is short and plain, otherwise quoted and cut
// to 32 characters.
func shortName(name string) string {
	if name == "" {
		return `""`
	}
	plain := len(name) <= 64
	for i := 0; plain && i < len(name); i++ {
		c := name[i]
		plain = c > ' ' && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		return name
	}
	if utf8.RuneCountInString(name) > 32 {
		return strconv.Quote(truncateRunes(name, 32)) + "…"
	}
	return strconv.Quote(name)
}

// structFields maps the JSON names of a request struct to its fields.
type structFields struct {
	exact  map[string]int // JSON name → field index
	folded map[string]int // folded JSON name → field index
}

var structFieldsCache sync.Map // reflect.Type → *structFields

func structFieldsOf(t reflect.Type) *structFields {
	if sf, ok := structFieldsCache.Load(t); ok {
		return sf.(*structFields)
	}
	sf := &structFields{exact: map[string]int{}, folded: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		sf.exact[name] = i
		sf.folded[string(foldName(nil, []byte(name)))] = i
	}
	structFieldsCache.Store(t, sf)
	return sf
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodeFieldsInto decodes checked fields into the struct v points to. A
// key matches a field as in encoding/json (exactly, else apart from letter
// case); unknown keys and null values are skipped. A plain string field
// takes a string or a number (kept as its text): a boolean, object or
// array gives a *FieldError. Other fields decode with their UnmarshalJSON
// or encoding/json; a failure gives a *FieldError naming the field.
func decodeFieldsInto(f *fields, what string, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return &DecodeError{What: what, Err: fmt.Errorf("cannot decode into %T", v)}
	}
	rv = rv.Elem()
	sf := structFieldsOf(rv.Type())
	var fold [64]byte
	for _, m := range f.members {
		if m.kind == kindNull {
			continue
		}
		i, ok := sf.exact[string(m.key)]
		if !ok {
			if i, ok = sf.folded[string(foldName(fold[:0], m.key))]; !ok {
				continue
			}
		}
		fv := rv.Field(i)
		if err := setField(fv, m); err != nil {
			return &FieldError{Field: shortName(string(m.key)), Problem: err.Error()}
		}
	}
	return nil
}

// setField decodes one member into the field fv; the error is the problem
// text.
func setField(fv reflect.Value, m member) error {
	if fv.Kind() == reflect.Pointer && fv.Type().Implements(unmarshalerType) {
		if fv.IsNil() {
			fv.Set(reflect.New(fv.Type().Elem()))
		}
		return fieldProblem(fv.Interface().(json.Unmarshaler).UnmarshalJSON(m.raw))
	}
	if u, ok := fv.Addr().Interface().(json.Unmarshaler); ok {
		return fieldProblem(u.UnmarshalJSON(m.raw))
	}
	if fv.Kind() == reflect.String {
		switch m.kind {
		case kindString:
			fv.SetString(jsonString(m.raw, m.esc))
		case kindNumber:
			fv.SetString(string(m.raw))
		default:
			return errors.New(kindProblem("a string", m.kind))
		}
		return nil
	}
	return fieldProblem(json.Unmarshal(m.raw, fv.Addr().Interface()))
}

// fieldProblem shortens a decoding error to a problem text of at most 120
// characters (it may quote the value).
func fieldProblem(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), "protocol: ", "")
	if utf8.RuneCountInString(msg) > 120 {
		msg = truncateRunes(msg, 120) + "…"
	}
	return errors.New(msg)
}
