package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Huawei API Gateway (APIG) AK/SK signing, used for every seller → KooGallery
// Open API call. The rules follow the official Go SDK
// (github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer) and the
// documented vectors; internal/sdkcheck proves the match against the SDK.

const (
	// APIGAlgorithm is the algorithm name that opens the Authorization header
	// and the string to sign.
	APIGAlgorithm = "SDK-HMAC-SHA256"
	// SDKDateHeader carries the signing time; it must be a signed header.
	SDKDateHeader = "X-Sdk-Date"
	// SDKDateFormat is the time layout of SDKDateHeader (always UTC).
	SDKDateFormat = "20060102T150405Z"
	// APIGMaxSkew is the clock difference the gateway tolerates.
	APIGMaxSkew = 15 * time.Minute
	// APIGContentSHA256Header, when present, replaces the body hash in the
	// canonical request with its own value.
	APIGContentSHA256Header = "X-Sdk-Content-Sha256"
	// APIGUnsignedPayload is the APIGContentSHA256Header value that leaves the
	// body out of the signature. The official SDK sends it for every request
	// whose Content-Type is neither JSON nor BSON (multipart uploads, forms).
	APIGUnsignedPayload = "UNSIGNED-PAYLOAD"
)

// Errors returned by VerifyAPIG, wrapped with detail. Test with errors.Is.
var (
	// ErrAPIGMalformed reports a missing or unparsable Authorization header,
	// an unparsable query, or SignedHeaders without x-sdk-date.
	ErrAPIGMalformed = errors.New("sign: APIG: malformed request")
	// ErrAPIGUnknownAK reports an access key the lookup does not know.
	ErrAPIGUnknownAK = errors.New("sign: APIG: unknown access key")
	// ErrAPIGSignature reports a signature that does not match the request.
	ErrAPIGSignature = errors.New("sign: APIG: signature mismatch")
	// ErrAPIGDate reports a missing, unparsable or out-of-window X-Sdk-Date.
	ErrAPIGDate = errors.New("sign: APIG: bad X-Sdk-Date")
)

// apigUnsignedHeaders are the lower-case header names Sign never signs:
// Authorization (it carries the signature), Host (signed from r.Host
// instead), and the names net/http moves out of r.Header or that proxies
// rewrite or drop (transfer framing and hop-by-hop headers), so that what is
// signed is what arrives.
var apigUnsignedHeaders = map[string]bool{
	"authorization":       true,
	"host":                true,
	"content-length":      true,
	"transfer-encoding":   true,
	"trailer":             true,
	"te":                  true,
	"connection":          true,
	"keep-alive":          true,
	"proxy-connection":    true,
	"proxy-authorization": true,
	"proxy-authenticate":  true,
	"upgrade":             true,
}

// APIGSigner signs Open API requests with a Huawei Cloud AK/SK.
type APIGSigner struct{ AK, SK string }

// Sign sets X-Sdk-Date (to now, UTC, unless the request already carries one)
// and Authorization on r. body is the exact bytes that will be sent (nil for
// none).
//
// It signs the host (r.Host, else r.URL.Host) and every header in r.Header
// except Authorization, Content-Length, Transfer-Encoding, Trailer, the
// hop-by-hop headers (Connection, Keep-Alive, Proxy-Connection,
// Proxy-Authorization, Proxy-Authenticate, TE, Upgrade), names containing "_"
// (the official SDK skips them: gateways commonly drop such headers) and an
// empty User-Agent (net/http does not send it). Unlike the official SDK it
// signs Content-Type and Host, as the documented vectors do; the gateway
// accepts any signed set that includes x-sdk-date.
//
// Like the official SDK, when Content-Type is set and names neither JSON nor
// BSON and X-Sdk-Content-Sha256 is absent, Sign adds
// X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD. A present X-Sdk-Content-Sha256 is
// used verbatim in place of the body hash.
//
// A request signed again keeps its X-Sdk-Date; delete the header (or build a
// fresh request) before retrying later than APIGMaxSkew.
func (s APIGSigner) Sign(r *http.Request, body []byte, now time.Time) error {
	if err := s.prepare(r, now); err != nil {
		return err
	}
	var signed []string
	for name, values := range r.Header {
		lname := strings.ToLower(name)
		if apigUnsignedHeaders[lname] || strings.Contains(lname, "_") {
			continue
		}
		if lname == "user-agent" && (len(values) == 0 || values[0] == "") {
			continue
		}
		signed = append(signed, lname)
	}
	if apigHost(r) != "" {
		signed = append(signed, "host")
	}
	return s.sign(r, body, signed)
}

// SignHeaders is Sign with an explicit list of headers to sign (names in any
// case; x-sdk-date is always added). It exists to reproduce other signers'
// choices, such as the official SDK leaving out Content-Type and Host. A
// listed header missing from r is an error.
func (s APIGSigner) SignHeaders(r *http.Request, body []byte, now time.Time, names []string) error {
	if err := s.prepare(r, now); err != nil {
		return err
	}
	signed := []string{"x-sdk-date"}
	for _, name := range names {
		signed = append(signed, strings.ToLower(name))
	}
	return s.sign(r, body, signed)
}

// prepare checks the keys and sets X-Sdk-Date and, for non-JSON bodies,
// X-Sdk-Content-Sha256.
func (s APIGSigner) prepare(r *http.Request, now time.Time) error {
	if s.AK == "" || s.SK == "" {
		return errors.New("sign: APIG sign: AK and SK are required")
	}
	// The AK is written unquoted into Authorization; these would break parsing.
	if strings.ContainsAny(s.AK, ",; \t\r\n") {
		return fmt.Errorf("sign: APIG sign: AK %q contains a separator or space", s.AK)
	}
	if r.URL == nil {
		return errors.New("sign: APIG sign: request has no URL")
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	if date := r.Header.Get(SDKDateHeader); date != "" {
		if _, err := apigParseDate(date); err != nil {
			return fmt.Errorf("sign: APIG sign: %w", err)
		}
	} else {
		r.Header.Set(SDKDateHeader, now.UTC().Format(SDKDateFormat))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" &&
		!strings.Contains(ct, "application/json") && !strings.Contains(ct, "application/bson") &&
		r.Header.Get(APIGContentSHA256Header) == "" {
		r.Header.Set(APIGContentSHA256Header, APIGUnsignedPayload)
	}
	return nil
}

// sign computes and sets Authorization for the given lower-case signed
// header names (deduplicated and sorted here).
func (s APIGSigner) sign(r *http.Request, body []byte, signed []string) error {
	slices.Sort(signed)
	signed = slices.Compact(signed)
	headers, err := apigRequestHeaders(r, signed)
	if err != nil {
		return fmt.Errorf("sign: APIG sign: %w", err)
	}
	query, err := apigRequestQuery(r)
	if err != nil {
		return fmt.Errorf("sign: APIG sign: %w", err)
	}
	bodyHash := apigHexSHA256(body)
	if v := r.Header.Get(APIGContentSHA256Header); v != "" {
		bodyHash = v
	}
	cr := apigCanonicalRequest(apigMethod(r), APIGCanonicalURI(r.URL.Path), query, headers, signed, bodyHash)
	sig := APIGSignature(s.SK, APIGStringToSign(r.Header.Get(SDKDateHeader), cr))
	r.Header.Set("Authorization", APIGAuthorization(s.AK, signed, sig))
	return nil
}

// VerifyAPIG checks a signed request on the receiving side: it parses
// Authorization, looks up the SK for the AK, rebuilds the canonical request
// from r and body with the listed SignedHeaders (which must include
// x-sdk-date), checks |now - X-Sdk-Date| <= skew (skew <= 0 means
// APIGMaxSkew) and compares signatures in constant time. It returns the AK on
// success and an error wrapping ErrAPIGMalformed, ErrAPIGUnknownAK,
// ErrAPIGDate or ErrAPIGSignature otherwise.
//
// A request carrying X-Sdk-Content-Sha256 is verified with that value in
// place of the body hash, as the gateway does; the value must be
// UNSIGNED-PAYLOAD or the hex SHA-256 of body.
func VerifyAPIG(r *http.Request, body []byte, lookupSK func(ak string) (sk string, ok bool), now time.Time, skew time.Duration) (ak string, err error) {
	auths := r.Header.Values("Authorization")
	if len(auths) != 1 {
		return "", fmt.Errorf("%w: want one Authorization header, have %d", ErrAPIGMalformed, len(auths))
	}
	ak, signed, gotSig, err := ParseAPIGAuthorization(auths[0])
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(signed, func(h string) bool { return strings.EqualFold(h, "x-sdk-date") }) {
		return "", fmt.Errorf("%w: x-sdk-date is not in SignedHeaders", ErrAPIGMalformed)
	}
	if r.URL == nil {
		return "", fmt.Errorf("%w: request has no URL", ErrAPIGMalformed)
	}
	query, err := apigRequestQuery(r)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrAPIGMalformed, err)
	}

	date := r.Header.Get(SDKDateHeader)
	t, err := apigParseDate(date)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrAPIGDate, err)
	}

	var sk string
	ok := false
	if lookupSK != nil {
		sk, ok = lookupSK(ak)
	}
	if !ok || sk == "" {
		return "", fmt.Errorf("%w: %q", ErrAPIGUnknownAK, ak)
	}

	if skew <= 0 {
		skew = APIGMaxSkew
	}
	if d := now.Sub(t); d > skew || d < -skew {
		return "", fmt.Errorf("%w: %s is %s away from now, more than %s", ErrAPIGDate, date, d.Round(time.Second), skew)
	}

	lower := make([]string, len(signed))
	for i, h := range signed {
		lower[i] = strings.ToLower(h)
	}
	headers, err := apigRequestHeaders(r, lower)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrAPIGSignature, err)
	}

	bodyHash := apigHexSHA256(body)
	if v := r.Header.Get(APIGContentSHA256Header); v != "" {
		// Without this check a client could claim any hash for the body.
		if v != APIGUnsignedPayload && !strings.EqualFold(v, bodyHash) {
			return "", fmt.Errorf("%w: %s does not match the body", ErrAPIGSignature, APIGContentSHA256Header)
		}
		bodyHash = v
	}

	cr := apigCanonicalRequest(apigMethod(r), APIGCanonicalURI(r.URL.Path), query, headers, lower, bodyHash)
	want := APIGSignature(sk, APIGStringToSign(date, cr))
	if !equalFoldConstantTime(gotSig, want) {
		return "", fmt.Errorf("%w (access key %q, signed headers %s)", ErrAPIGSignature, ak, strings.Join(signed, ";"))
	}
	return ak, nil
}

// APIGCanonicalURI returns the canonical URI of a decoded request path: each
// "/"-separated segment RFC 3986-escaped, with a trailing "/" appended when
// absent. Like the official signers it takes the decoded path, so an escaped
// "/" inside a segment counts as a separator.
func APIGCanonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = apigEscape(s)
	}
	uri := strings.Join(segs, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri
}

// APIGCanonicalQuery returns the canonical query string: RFC 3986-escaped
// names and values (space as %20, upper-case hex) joined as name=value with
// "&", "name=" for an empty value, sorted by name and then value. Sorting is
// on the unescaped strings, as the official SDK does (UNCONFIRMED what the
// gateway does; the two orders differ only for names or values whose bytes
// straddle "%" once escaped).
func APIGCanonicalQuery(q url.Values) string {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		values := slices.Clone(q[name])
		slices.Sort(values)
		for _, v := range values {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(apigEscape(name))
			b.WriteByte('=')
			b.WriteString(apigEscape(v))
		}
	}
	return b.String()
}

// APIGCanonicalRequest assembles the canonical request. headers maps
// lower-case names to values (trimmed when rendered); signed lists the
// signed names in the order to render them (sorted, lower-case, for a
// conforming request). A signed name missing from headers renders no line,
// as in the official SDK.
func APIGCanonicalRequest(method, canonicalURI, canonicalQuery string, headers map[string]string, signed []string, bodyHashHex string) string {
	multi := make(map[string][]string, len(headers))
	for k, v := range headers {
		multi[k] = []string{v}
	}
	return apigCanonicalRequest(method, canonicalURI, canonicalQuery, multi, signed, bodyHashHex)
}

// apigCanonicalRequest is APIGCanonicalRequest for headers with several
// values: each value gets its own "name:value" line, values sorted, as the
// official signers do (UNCONFIRMED for the gateway; repeated signed headers
// are best avoided).
func apigCanonicalRequest(method, canonicalURI, canonicalQuery string, headers map[string][]string, signed []string, bodyHashHex string) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery)
	b.WriteByte('\n')
	for _, name := range signed {
		values := slices.Clone(headers[name])
		slices.Sort(values)
		for _, v := range values {
			b.WriteString(name)
			b.WriteByte(':')
			b.WriteString(strings.TrimSpace(v))
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(bodyHashHex)
	return b.String()
}

// APIGStringToSign returns the string to sign for a canonical request signed
// at sdkDate (the X-Sdk-Date value).
func APIGStringToSign(sdkDate, canonicalRequest string) string {
	return APIGAlgorithm + "\n" + sdkDate + "\n" + apigHexSHA256([]byte(canonicalRequest))
}

// APIGSignature returns HMAC-SHA256(sk, stringToSign) as lower-case hex.
func APIGSignature(sk, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256([]byte(sk), []byte(stringToSign)))
}

// APIGAuthorization returns the Authorization header value
// "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex".
func APIGAuthorization(ak string, signed []string, signature string) string {
	return APIGAlgorithm + " Access=" + ak + ", SignedHeaders=" + strings.Join(signed, ";") + ", Signature=" + signature
}

// ParseAPIGAuthorization parses an Authorization header value written by
// APIGAuthorization. It is tolerant of spacing (spaces after commas and
// around "=" are optional) and of the case of the algorithm and part names,
// but every part must appear exactly once, unknown parts are rejected, the
// signature must be 64 hex digits and the signed header names must be HTTP
// tokens. Errors wrap ErrAPIGMalformed.
func ParseAPIGAuthorization(v string) (ak string, signed []string, signature string, err error) {
	v = strings.TrimSpace(v)
	i := strings.IndexAny(v, " \t")
	if i < 0 || !strings.EqualFold(v[:i], APIGAlgorithm) {
		return "", nil, "", fmt.Errorf("%w: Authorization does not start with %q", ErrAPIGMalformed, APIGAlgorithm+" ")
	}
	var haveAK, haveSigned, haveSig bool
	for part := range strings.SplitSeq(v[i+1:], ",") {
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return "", nil, "", fmt.Errorf("%w: Authorization part %q has no \"=\"", ErrAPIGMalformed, strings.TrimSpace(part))
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case strings.EqualFold(key, "Access") && !haveAK:
			haveAK, ak = true, val
		case strings.EqualFold(key, "SignedHeaders") && !haveSigned:
			haveSigned, signed = true, strings.Split(val, ";")
		case strings.EqualFold(key, "Signature") && !haveSig:
			haveSig, signature = true, val
		default:
			return "", nil, "", fmt.Errorf("%w: Authorization part %q is unknown or repeated", ErrAPIGMalformed, key)
		}
	}
	switch {
	case !haveAK || !haveSigned || !haveSig:
		return "", nil, "", fmt.Errorf("%w: Authorization needs Access, SignedHeaders and Signature", ErrAPIGMalformed)
	case ak == "" || strings.ContainsAny(ak, " \t"):
		return "", nil, "", fmt.Errorf("%w: Authorization has an empty or spaced Access", ErrAPIGMalformed)
	case len(signature) != sha256.Size*2 || !apigIsHex(signature):
		return "", nil, "", fmt.Errorf("%w: Authorization Signature is not 64 hex digits", ErrAPIGMalformed)
	}
	for _, h := range signed {
		if !apigIsToken(h) {
			return "", nil, "", fmt.Errorf("%w: SignedHeaders entry %q is not a header name", ErrAPIGMalformed, h)
		}
	}
	return ak, signed, signature, nil
}

// apigRequestHeaders collects the values of the lower-case signed names from
// r: host from r.Host (else r.URL.Host), the rest from r.Header, merging
// names that differ only in case.
func apigRequestHeaders(r *http.Request, signed []string) (map[string][]string, error) {
	want := make(map[string]bool, len(signed))
	for _, h := range signed {
		want[h] = true
	}
	headers := make(map[string][]string, len(signed))
	for name, values := range r.Header {
		lname := strings.ToLower(name)
		if want[lname] && lname != "host" {
			headers[lname] = append(headers[lname], values...)
		}
	}
	// net/http sends only the first User-Agent value.
	if ua := headers["user-agent"]; len(ua) > 1 {
		headers["user-agent"] = ua[:1]
	}
	if want["host"] {
		if host := apigHost(r); host != "" {
			headers["host"] = []string{host}
		}
	}
	for _, h := range signed {
		if _, ok := headers[h]; !ok {
			return nil, fmt.Errorf("signed header %q is not in the request", h)
		}
	}
	return headers, nil
}

// apigRequestQuery returns the canonical query of r's raw query. Like the
// official signers (which use url.Values), a literal "+" decodes to a space:
// UNCONFIRMED for the gateway, so senders should write %20 and %2B.
func apigRequestQuery(r *http.Request) (string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", fmt.Errorf("parse query: %w", err)
	}
	return APIGCanonicalQuery(q), nil
}

// apigHost is the host the request goes to (client) or came to (server).
func apigHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	if r.URL != nil {
		return r.URL.Host
	}
	return ""
}

// apigMethod returns r.Method as sent: net/http treats "" as GET and sends
// other methods verbatim, and so does the official SDK.
func apigMethod(r *http.Request) string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// apigParseDate parses an X-Sdk-Date value strictly.
func apigParseDate(v string) (time.Time, error) {
	t, err := time.Parse(SDKDateFormat, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse %s %q: %w", SDKDateHeader, v, err)
	}
	return t, nil
}

// apigHexSHA256 returns the lower-case hex SHA-256 of b.
func apigHexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// apigEscape percent-encodes every byte of s outside the RFC 3986
// unreserved set with upper-case hex.
func apigEscape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !apigUnreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if apigUnreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}

func apigUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func apigIsHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// apigIsToken reports whether s is a non-empty RFC 9110 token.
func apigIsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
