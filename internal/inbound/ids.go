package inbound

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxActivityLen caps an activity read from an unverified or undecodable
// call before it goes to the ledger and the log.
const maxActivityLen = 64

// peekActivity reads the activity a call names, before it is verified or
// decoded: to pick the family at a shared route (and so the key), and for
// the ledger. A POST names it in its JSON body, a GET in its query. It is
// never trusted further: the family's decoder reads the activity again,
// strictly. It reads the body as the decoders do (a leading byte-order
// mark skipped, the key "activity" exactly), and only as far as it needs:
// a top-level "activity" string is found even in a body cut short at the
// size limit, so that the refusal of an oversized call is signed with its
// family's key.
func peekActivity(method string, body []byte, q url.Values) string {
	var a string
	if method == http.MethodGet {
		a = q.Get("activity")
	} else {
		a = bodyActivity(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	}
	if utf8.RuneCountInString(a) > maxActivityLen {
		a = string([]rune(a)[:maxActivityLen])
	}
	return strings.ToValidUTF8(a, "\uFFFD")
}

// bodyActivity scans the top level of a JSON object for the string value
// of the key "activity" (the last one, as encoding/json would take it,
// among those it reaches); "" when there is none or the body is not an
// object.
func bodyActivity(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	var found string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return found
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return found
		}
		if key == "activity" {
			var a string
			if json.Unmarshal(v, &a) == nil {
				found = a
			}
		}
	}
	return found
}

// maxRequestIDLen is the longest X-Request-Id taken from a caller.
const maxRequestIDLen = 64

// requestID returns the caller's X-Request-Id when it is short and made of
// safe characters (it goes into logs and the ledger), a fresh one
// otherwise.
func requestID(h string) string {
	if h != "" && len(h) <= maxRequestIDLen && strings.IndexFunc(h, unsafeIDRune) < 0 {
		return h
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func unsafeIDRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	case r == '-', r == '_', r == '.', r == ':':
		return false
	}
	return true
}
