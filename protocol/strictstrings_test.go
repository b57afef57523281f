package protocol

import (
	"reflect"
	"testing"
)

func decodeStringsAny(b []byte) (any, error) {
	m, err := DecodeStrictStrings(b, "license request", "license", "deviceFingerprint")
	if err != nil {
		return nil, err
	}
	return m, nil
}

func TestDecodeStrictStrings(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want map[string]string
	}{
		{"both", `{"license":"PL1","deviceFingerprint":"AA:BB|||"}`, map[string]string{"license": "PL1", "deviceFingerprint": "AA:BB|||"}},
		{"escapes", `{"license":"P\u004c1","deviceFingerprint":"\u00e9\ud83d\ude00"}`, map[string]string{"license": "PL1", "deviceFingerprint": "é😀"}},
		{"one absent", `{"license":"PL1"}`, map[string]string{"license": "PL1"}},
		{"empty object", ` {} `, map[string]string{}},
		{"byte order mark", "\xef\xbb\xbf{\"license\":\"PL1\"}", map[string]string{"license": "PL1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeStrictStrings([]byte(tc.body), "license request", "license", "deviceFingerprint")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeStrictStringsRefusals(t *testing.T) {
	runRefusals(t, decodeStringsAny, []refusal{
		{"empty", ``, "protocol: decode license request: invalid JSON at byte 0: empty body"},
		{"array", `["PL1"]`, "protocol: decode license request: not a JSON object"},
		{"syntax", `{"license":"PL1",}`, "protocol: decode license request: invalid JSON at byte 17: expected a string key"},
		{"trailing data", `{"license":"PL1"} {}`, "protocol: decode license request: invalid JSON at byte 18: unexpected data after the value"},
		{"duplicate", `{"license":"PL1","license":"PL2"}`, "invalid parameter license: duplicate key"},
		{"duplicate apart from case", `{"license":"PL1","License":"PL2"}`, "invalid parameter License: duplicate key (the same as license apart from letter case)"},
		{"unknown field", `{"license":"PL1","amount":"2"}`, "invalid parameter amount: unknown field (the fields are license, deviceFingerprint)"},
		{"other letter case", `{"License":"PL1"}`, "invalid parameter License: unknown field (the fields are license, deviceFingerprint)"},
		{"number", `{"license":12345}`, "invalid parameter license: must be a string, not a number"},
		{"null", `{"license":null}`, "invalid parameter license: must be a string, not null"},
		{"boolean", `{"deviceFingerprint":true}`, "invalid parameter deviceFingerprint: must be a string, not a boolean"},
		{"object", `{"license":{"code":"PL1"}}`, "invalid parameter license: must be a string, not an object"},
		{"NUL", `{"license":"PL\u00001"}`, "invalid parameter license: contains a NUL character (\\u0000)"},
		{"invalid UTF-8", "{\"license\":\"PL\xff1\"}", "invalid parameter license: not valid UTF-8"},
		{"lone surrogate", `{"license":"PL\ud800"}`, "invalid parameter license: contains a lone surrogate escape (\\ud800)"},
	})
}
