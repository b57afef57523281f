// Package mask hides personal data and secrets in what koobridge keeps
// and logs: the ledger's request and response text, stored orders, log
// lines. One rule for every place: mobile numbers keep their first three
// and last four characters (first two and last two when shorter than 11,
// nothing below 7), e-mail addresses their first character and domain,
// account names and names (a "name" field: a person's in the Kit's users)
// their first character; passwords, secrets, tokens, device fingerprints
// and licenses nothing. Identifiers (instanceId, orderId, customerId, …) stay readable:
// they are what an operator searches by.
package mask

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxLedgerText caps the text JSON and Text return. Valid KooGallery
// bodies are a few hundred bytes; the cap bounds what an unauthenticated
// caller can make the ledger store.
const MaxLedgerText = 16 << 10

// sensitivity is how a value is masked, decided by the name of its field.
type sensitivity int

const (
	plain    sensitivity = iota
	secret               // passwords, secrets, tokens: fully replaced
	phone                // mobile numbers: first 3 and last 4 kept
	email                // e-mail addresses: first character and domain kept
	username             // account names: first character kept
)

// classify decides from a JSON field name whether its value is personal
// data or a secret. Identifiers (instanceId, orderId, customerId, …) stay
// readable: they are what an operator searches the ledger by.
func classify(name string) sensitivity {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "password"), strings.Contains(n, "passwd"),
		strings.Contains(n, "secret"), strings.Contains(n, "token"):
		return secret
	case strings.Contains(n, "fingerprint"), n == "license":
		// A device fingerprint (MAC addresses, disk serials) is personal
		// data; "license" is a license's content in a license 1.0 reply.
		// In the 2.0 calls the same field holds a license code, masked
		// with it: the code itself is an identifier, readable in the
		// call's idempotency key, the log and the license tables, where
		// operators look it up.
		return secret
	case strings.Contains(n, "mobile"), strings.Contains(n, "phone"):
		return phone
	case strings.Contains(n, "email"):
		return email
	case n == "username", n == "name":
		// "name" is a person's name in the Kit's authSync users (and an
		// enterprise's or a department's elsewhere: masked alike, as they
		// are shown in full by the admin API).
		return username
	}
	return plain
}

// JSON returns body as compact JSON with personal data and secrets masked
// wherever they occur, by field name, capped at MaxLedgerText. A body that
// is not one JSON value is masked as Text.
func JSON(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep numbers as sent
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return Text(string(body))
	}
	v = maskValue(v, plain)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return Text(string(body))
	}
	return capText(strings.TrimSuffix(buf.String(), "\n"))
}

// maskValue masks v, whose field name had sensitivity s. Fields inside an
// object take the sensitivity of their own name, or their parent's when
// their name says nothing ("password": {"value": …} stays secret).
func maskValue(v any, s sensitivity) any {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			cs := classify(k)
			if cs == plain {
				cs = s
			}
			x[k] = maskValue(child, cs)
		}
		return x
	case []any:
		for i, child := range x {
			x[i] = maskValue(child, s)
		}
		return x
	case string:
		if s == plain {
			if inner, ok := maskJSONText(x); ok {
				return inner
			}
		}
		return maskString(x, s)
	case json.Number:
		if s != plain {
			return maskString(x.String(), s)
		}
		return x
	}
	return v
}

// maskJSONText masks a string that holds a JSON object or array (the Kit
// sends authSync's userList and allOrgSync's orgInfo as JSON text): the
// fields inside are masked by their names, and the text is compact JSON
// again. ok is false for any other string.
func maskJSONText(v string) (string, bool) {
	t := strings.TrimSpace(v)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return "", false
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var inner any
	if err := dec.Decode(&inner); err != nil || dec.More() {
		return "", false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(maskValue(inner, plain)); err != nil {
		return "", false
	}
	return strings.TrimSuffix(buf.String(), "\n"), true
}

func maskString(v string, s sensitivity) string {
	if v == "" {
		return v
	}
	switch s {
	case secret:
		return "******"
	case phone:
		return Phone(v)
	case email:
		return Email(v)
	case username:
		return Name(v)
	}
	return v
}

// Name masks an account or person's name: its first character and
// "***". "" stays "".
func Name(v string) string {
	if v == "" {
		return ""
	}
	return firstRune(v) + "***"
}

// Phone masks a mobile number: the first three and last four characters of
// one of 11 or more (159****2222), the first and last two of one of 7 to
// 10, "****" for anything shorter. "" stays "".
func Phone(v string) string {
	r := []rune(v)
	switch n := len(r); {
	case n == 0:
		return ""
	case n >= 11:
		return string(r[:3]) + "****" + string(r[n-4:])
	case n >= 7:
		return string(r[:2]) + "****" + string(r[n-2:])
	}
	return "****"
}

// Email masks an e-mail address: the first character of the local part
// and the domain ("alice@example.com" → "a***@example.com"). Text without
// a local part and "@" becomes "***". "" stays "".
func Email(v string) string {
	if v == "" {
		return ""
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 {
		return "***"
	}
	return firstRune(v) + "***" + v[at:]
}

func firstRune(v string) string {
	_, size := utf8.DecodeRuneInString(v)
	return v[:size]
}

// Patterns for text that is not JSON: what a malformed body may still carry.
// A secret's name is one classify masks whole (a field whose name holds
// password, passwd, secret, token or fingerprint, or is license). Its value
// is masked whole: a quoted one up to its closing quote (escaped quotes
// included; to the end of the text when it is never closed), an unquoted
// one up to the next & (a query's separator), since a device fingerprint
// joins several MACs with commas and disk ids may hold spaces (§D.3).
var (
	textSecretName = `(?i)((?:password|passwd|secret|token|fingerprint|\blicense)"?\s*[:=]\s*)`
	textSecretQ    = regexp.MustCompile(textSecretName + `"(?:[^"\\]|\\(?s:.)?)*"?`)
	textSecretU    = regexp.MustCompile(textSecretName + `[^"&\s][^&]*`)
	textEmail      = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+`)
	textPhone      = regexp.MustCompile(`\+?\d{7,}`)
)

// Text masks free text (a body that is not JSON, a query string): secrets
// after their field names, e-mail addresses and runs of seven or more
// digits (phone numbers); invalid UTF-8 becomes U+FFFD. It is capped at
// MaxLedgerText.
func Text(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = textSecretQ.ReplaceAllString(s, `${1}"******"`)
	s = textSecretU.ReplaceAllString(s, "${1}******")
	s = textEmail.ReplaceAllStringFunc(s, Email)
	return capText(textPhone.ReplaceAllStringFunc(s, Phone))
}

// queryEscape writes a masked query value back: only the characters that
// would change how the query splits or decodes are escaped, so that
// "b***@example.com" stays readable.
var queryEscape = strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "=", "%3D", "#", "%23", " ", "+")

// Query masks a URL query string (the parameters of a GET) by parameter
// name, as JSON masks fields: secrets (authToken, …), mobile numbers,
// e-mail addresses and account names by the one rule, whatever form the
// value has (SaaS V1 sends mobilePhone and email encrypted: the cipher
// text is masked too); the other parameters stay as sent. A pair that does
// not unescape, or a query that is not valid UTF-8, is masked as Text. It
// is capped at MaxLedgerText.
func Query(raw string) string {
	if !utf8.ValidString(raw) {
		return Text(raw)
	}
	pairs := strings.Split(raw, "&")
	for i, p := range pairs {
		name, value, _ := strings.Cut(p, "=")
		n, nerr := url.QueryUnescape(name)
		v, verr := url.QueryUnescape(value)
		if nerr != nil || verr != nil {
			pairs[i] = Text(p)
			continue
		}
		if s := classify(n); s != plain {
			pairs[i] = name + "=" + queryEscape.Replace(maskString(v, s))
		}
	}
	return capText(strings.Join(pairs, "&"))
}

// capText cuts s to MaxLedgerText bytes on a rune boundary and says so.
func capText(s string) string {
	if len(s) <= MaxLedgerText {
		return s
	}
	cut := MaxLedgerText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(truncated, %d bytes)", len(s))
}
