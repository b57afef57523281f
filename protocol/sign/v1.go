package sign

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// AuthTokenParam and TimeStampParam are the V1 parameter names that carry
// the token and the time that is folded into the HMAC key.
const (
	AuthTokenParam = "authToken"
	TimeStampParam = "timeStamp"
)

// AuthToken returns the V1 authToken (saas-v1-joint-login.md §A.2,
// license-openapi.md §B.5):
//
//	base64std(HMAC(key + timeStamp, "n1=v1&n2=v2..."))
//
// where the names are sorted byte-wise and the values are plain, already
// decoded text written without any escaping. The authToken parameter and
// empty values are skipped, as in Huawei's sample. params normally holds
// timeStamp itself, which is signed like any other parameter.
func AuthToken(key, timeStamp string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for name, value := range params {
		if name == AuthTokenParam || value == "" {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(params[name])
	}
	mac := hmacSHA256([]byte(key+timeStamp), []byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac)
}

// AuthTokenQuery returns the V1 authToken of a GET request whose decoded
// query is q. The timeStamp is taken from q. It fails if timeStamp is
// missing or if any parameter name appears more than once, because a
// repeated name has no single canonical value and KooGallery never sends
// one.
func AuthTokenQuery(key string, q url.Values) (string, error) {
	params := make(map[string]string, len(q))
	for name, values := range q {
		if len(values) != 1 {
			return "", fmt.Errorf("sign: v1 query: parameter %q appears %d times: %w", name, len(values), ErrMalformedParams)
		}
		params[name] = values[0]
	}
	ts := params[TimeStampParam]
	if ts == "" {
		return "", fmt.Errorf("sign: v1 query: no %s: %w", TimeStampParam, ErrMissing)
	}
	return AuthToken(key, ts, params), nil
}

// AuthTokenJSON returns the V1 authToken of a Kit POST body: the top-level
// fields of the JSON object body, rendered as text. Strings are used as-is,
// numbers as their JSON text, booleans as true or false, objects and arrays
// as compact JSON text; null and "" are skipped. The timeStamp is taken
// from the body. It fails if body is not one JSON object, if a top-level
// name repeats, or if timeStamp is missing.
//
// How Huawei renders non-string fields is UNCONFIRMED; the reading above
// matches the only published example (flag=1) and Huawei's sample, which
// turns the body into a map and prints each value.
func AuthTokenJSON(key string, body []byte) (string, error) {
	params, err := jsonParams(body)
	if err != nil {
		return "", err
	}
	ts := params[TimeStampParam]
	if ts == "" {
		return "", fmt.Errorf("sign: v1 json: no %s: %w", TimeStampParam, ErrMissing)
	}
	return AuthToken(key, ts, params), nil
}

// jsonParams flattens the top-level fields of a JSON object into the text
// values AuthTokenJSON signs. null values map to "" and so are skipped.
func jsonParams(body []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("sign: v1 json: %w: %w", ErrMalformedParams, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("sign: v1 json: body is not a JSON object: %w", ErrMalformedParams)
	}
	params := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("sign: v1 json: %w: %w", ErrMalformedParams, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("sign: v1 json: object key is not a string: %w", ErrMalformedParams)
		}
		if _, dup := params[name]; dup {
			// Parsers disagree on which duplicate wins, so refuse to guess.
			return nil, fmt.Errorf("sign: v1 json: field %q appears twice: %w", name, ErrMalformedParams)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("sign: v1 json: field %q: %w: %w", name, ErrMalformedParams, err)
		}
		text, err := jsonText(raw)
		if err != nil {
			return nil, fmt.Errorf("sign: v1 json: field %q: %w: %w", name, ErrMalformedParams, err)
		}
		params[name] = text
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("sign: v1 json: %w: %w", ErrMalformedParams, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("sign: v1 json: data after the object: %w", ErrMalformedParams)
	}
	return params, nil
}

// jsonText renders one JSON value as the text AuthTokenJSON signs.
func jsonText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("empty value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case 'n':
		return "", nil
	case '{', '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", err
		}
		return b.String(), nil
	default: // numbers, true, false: their JSON text
		return string(raw), nil
	}
}

// VerifyAuthTokenQuery checks the authToken parameter of a decoded V1 GET
// query against key. It does not check the age of timeStamp: no V1 page
// states a window (UNCONFIRMED), so freshness is left to the caller.
func VerifyAuthTokenQuery(key string, q url.Values) error {
	_, err := verifyAuthTokenQuery([]string{key}, q)
	return err
}

// VerifyAuthTokenJSON checks token, the authToken header of a V1 Kit POST,
// against the body and key. Like VerifyAuthTokenQuery it does not check
// the age of timeStamp.
func VerifyAuthTokenJSON(key, token string, body []byte) error {
	_, err := verifyAuthTokenJSON([]string{key}, token, body)
	return err
}

func verifyAuthTokenQuery(keys []string, q url.Values) (int, error) {
	tokens := q[AuthTokenParam]
	if len(tokens) == 0 || tokens[0] == "" {
		return -1, fmt.Errorf("sign: v1 query: no %s: %w", AuthTokenParam, ErrMissing)
	}
	params := make(map[string]string, len(q))
	for name, values := range q {
		if len(values) != 1 {
			return -1, fmt.Errorf("sign: v1 query: parameter %q appears %d times: %w", name, len(values), ErrMalformedParams)
		}
		params[name] = values[0]
	}
	ts := params[TimeStampParam]
	if ts == "" {
		return -1, fmt.Errorf("sign: v1 query: no %s: %w", TimeStampParam, ErrMissing)
	}
	return matchAuthToken(keys, tokens[0], ts, params, "v1 query")
}

func verifyAuthTokenJSON(keys []string, token string, body []byte) (int, error) {
	if token == "" {
		return -1, fmt.Errorf("sign: v1 json: no %s header: %w", AuthTokenParam, ErrMissing)
	}
	params, err := jsonParams(body)
	if err != nil {
		return -1, err
	}
	ts := params[TimeStampParam]
	if ts == "" {
		return -1, fmt.Errorf("sign: v1 json: no %s: %w", TimeStampParam, ErrMissing)
	}
	return matchAuthToken(keys, token, ts, params, "v1 json")
}

// matchAuthToken compares token with the authToken under every key, in
// constant time, and returns the index of the first key that matches.
func matchAuthToken(keys []string, token, ts string, params map[string]string, what string) (int, error) {
	if len(keys) == 0 {
		return -1, fmt.Errorf("sign: %s: %w (%w)", what, ErrNoKeys, ErrSignature)
	}
	// A '+' left unescaped in a raw query decodes to a space; base64 has no
	// spaces, so restoring it cannot make a wrong token match.
	token = strings.ReplaceAll(token, " ", "+")
	found := -1
	for i, key := range keys {
		want := AuthToken(key, ts, params)
		if subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return -1, fmt.Errorf("sign: %s: authToken does not match any of %d keys: %w", what, len(keys), ErrSignature)
	}
	return found, nil
}
