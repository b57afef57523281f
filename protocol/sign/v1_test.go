package sign

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

const (
	v1Key       = "9fa6c870-8bb0-4e9b-b71e-4c223300156f"
	v1GetQuery  = "activity=newInstance&businessId=61e834ba&customerId=68cbc86a&orderId=CS1906666666ABCDE&testFlag=1&timeStamp=20170725025113409"
	v1GetToken  = "YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk="
	v1KitBody   = `{"instanceId":"inst-0001","orderId":"CS1906666666ABCDE","tenantId":"tenant-0001","tenantCode":"acme","name":"Acme Ltd","domainName":"https://acme.example.com","flag":1,"testFlag":1,"timeStamp":"20220413093539534"}`
	v1KitToken  = "5huRzM3l2BOGS4G4vF86rodGA/1errQz3NQU62E1inY="
	licenseV1Q  = "activity=getLicense&businessId=b1&customerId=c1&orderId=o1&productId=p1&timeStamp=20240101120000000"
	licenseV1Tk = "dteC4joQtZG3c5cmnTIGKppEyAFsFKD58YfB5LpjlUc="
)

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestAuthTokenKnownAnswers(t *testing.T) {
	tests := []struct {
		name, key, query, want string
	}{
		{"saas-v1 §A.2 GET", v1Key, v1GetQuery, v1GetToken},
		{"license-openapi §B.5", "oldkey123", licenseV1Q, licenseV1Tk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustQuery(t, tt.query)
			params := map[string]string{}
			for k := range q {
				params[k] = q.Get(k)
			}
			if got := AuthToken(tt.key, q.Get("timeStamp"), params); got != tt.want {
				t.Errorf("AuthToken = %s, want %s", got, tt.want)
			}
			got, err := AuthTokenQuery(tt.key, q)
			if err != nil || got != tt.want {
				t.Errorf("AuthTokenQuery = %s, %v; want %s", got, err, tt.want)
			}
			q.Set("authToken", tt.want)
			if err := VerifyAuthTokenQuery(tt.key, q); err != nil {
				t.Errorf("VerifyAuthTokenQuery: %v", err)
			}
		})
	}
	t.Run("saas-v1 §A.2 Kit POST", func(t *testing.T) {
		got, err := AuthTokenJSON(v1Key, []byte(v1KitBody))
		if err != nil || got != v1KitToken {
			t.Errorf("AuthTokenJSON = %s, %v; want %s", got, err, v1KitToken)
		}
		if err := VerifyAuthTokenJSON(v1Key, v1KitToken, []byte(v1KitBody)); err != nil {
			t.Errorf("VerifyAuthTokenJSON: %v", err)
		}
	})
}

func TestAuthTokenCanonicalForm(t *testing.T) {
	base := map[string]string{"b": "2", "a": "1", "timeStamp": "20240101120000000"}
	want := AuthToken("k", "20240101120000000", base)
	same := []map[string]string{
		{"b": "2", "a": "1", "timeStamp": "20240101120000000", "authToken": "whatever"},
		{"b": "2", "a": "1", "timeStamp": "20240101120000000", "empty": ""},
	}
	for _, p := range same {
		if got := AuthToken("k", "20240101120000000", p); got != want {
			t.Errorf("AuthToken(%v) = %s, want %s (authToken and empty values are skipped)", p, got, want)
		}
	}
	// Values are signed decoded and unescaped: "a b&c" is not "a+b%26c".
	p1 := map[string]string{"x": "a b&c", "timeStamp": "1"}
	p2 := map[string]string{"x": "a+b%26c", "timeStamp": "1"}
	if AuthToken("k", "1", p1) == AuthToken("k", "1", p2) {
		t.Error("decoded and encoded values give one token")
	}
	// Sorting is byte-wise: upper case before lower case.
	q := url.Values{"B": {"1"}, "a": {"2"}, "timeStamp": {"3"}}
	got, err := AuthTokenQuery("k", q)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmacSHA256([]byte("k3"), []byte("B=1&a=2&timeStamp=3"))
	if want := b64(mac); got != want {
		t.Errorf("byte-wise order: got %s, want %s", got, want)
	}
}

func TestAuthTokenQueryErrors(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  error
	}{
		{"no timeStamp", "activity=newInstance", ErrMissing},
		{"empty timeStamp", "activity=newInstance&timeStamp=", ErrMissing},
		{"repeated name", "a=1&a=2&timeStamp=1", ErrMalformedParams},
		{"repeated timeStamp", "timeStamp=1&timeStamp=2", ErrMalformedParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := AuthTokenQuery("k", mustQuery(t, tt.query)); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAuthTokenJSONRendering(t *testing.T) {
	body := `{ "s":"x y", "n":1.50, "neg":-2e3, "t":true, "f":false, "z":null, "e":"",
		"o":{ "b": [1, 2], "a" : "q" }, "arr":[ ], "u":"\u4e2d\n", "timeStamp":"20220420114117642" }`
	want := AuthToken("k", "20220420114117642", map[string]string{
		"s": "x y", "n": "1.50", "neg": "-2e3", "t": "true", "f": "false",
		"o": `{"b":[1,2],"a":"q"}`, "arr": "[]", "u": "中\n", "timeStamp": "20220420114117642",
	})
	got, err := AuthTokenJSON("k", []byte(body))
	if err != nil || got != want {
		t.Errorf("AuthTokenJSON = %s, %v; want %s", got, err, want)
	}
	// A numeric timeStamp is used as its JSON text.
	got, err = AuthTokenJSON("k", []byte(`{"a":"1","timeStamp":20220420114117642}`))
	if want := AuthToken("k", "20220420114117642", map[string]string{"a": "1", "timeStamp": "20220420114117642"}); err != nil || got != want {
		t.Errorf("numeric timeStamp: %s, %v; want %s", got, err, want)
	}
}

func TestAuthTokenJSONErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
	}{
		{"empty", ``, ErrMalformedParams},
		{"not JSON", `timeStamp=1`, ErrMalformedParams},
		{"array", `[{"timeStamp":"1"}]`, ErrMalformedParams},
		{"string", `"x"`, ErrMalformedParams},
		{"truncated", `{"timeStamp":"1"`, ErrMalformedParams},
		{"bad value", `{"timeStamp":"1","a":tru}`, ErrMalformedParams},
		{"trailing data", `{"timeStamp":"1"}{}`, ErrMalformedParams},
		{"trailing garbage", `{"timeStamp":"1"} x`, ErrMalformedParams},
		{"duplicate name", `{"a":"1","a":"2","timeStamp":"1"}`, ErrMalformedParams},
		{"no timeStamp", `{"a":"1"}`, ErrMissing},
		{"null timeStamp", `{"a":"1","timeStamp":null}`, ErrMissing},
		{"empty timeStamp", `{"a":"1","timeStamp":""}`, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := AuthTokenJSON("k", []byte(tt.body)); !errors.Is(err, tt.want) {
				t.Errorf("AuthTokenJSON = %q, %v; want error %v", tok, err, tt.want)
			}
		})
	}
}

func TestVerifyAuthTokenQuery(t *testing.T) {
	withToken := func(raw string) url.Values {
		q := mustQuery(t, v1GetQuery)
		if raw != "" {
			q.Set("authToken", raw)
		}
		return q
	}
	tests := []struct {
		name string
		key  string
		q    url.Values
		want error
	}{
		{"good", v1Key, withToken(v1GetToken), nil},
		{"unescaped plus decoded as space", v1Key, withToken(strings.ReplaceAll(v1GetToken, "+", " ")), nil},
		{"wrong key", v1Key + "x", withToken(v1GetToken), ErrSignature},
		{"lowercased token", v1Key, withToken(strings.ToLower(v1GetToken)), ErrSignature},
		{"missing token", v1Key, withToken(""), ErrMissing},
		{"tampered value", v1Key, func() url.Values { q := withToken(v1GetToken); q.Set("orderId", "other"); return q }(), ErrSignature},
		{"added value", v1Key, func() url.Values { q := withToken(v1GetToken); q.Set("extra", "1"); return q }(), ErrSignature},
		{"two tokens", v1Key, func() url.Values { q := withToken(v1GetToken); q.Add("authToken", v1GetToken); return q }(), ErrMalformedParams},
		{"no timeStamp", v1Key, func() url.Values { q := withToken(v1GetToken); q.Del("timeStamp"); return q }(), ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyAuthTokenQuery(tt.key, tt.q)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyAuthTokenJSON(t *testing.T) {
	tests := []struct {
		name, key, token, body string
		want                   error
	}{
		{"good", v1Key, v1KitToken, v1KitBody, nil},
		{"wrong key", "other", v1KitToken, v1KitBody, ErrSignature},
		{"tampered body", v1Key, v1KitToken, strings.Replace(v1KitBody, `"flag":1`, `"flag":0`, 1), ErrSignature},
		{"no token", v1Key, "", v1KitBody, ErrMissing},
		{"not an object", v1Key, v1KitToken, `[]`, ErrMalformedParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyAuthTokenJSON(tt.key, tt.token, []byte(tt.body))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifierAuthTokenRotation(t *testing.T) {
	v := &Verifier{Keys: []string{"old", v1Key}}
	q := mustQuery(t, v1GetQuery)
	q.Set("authToken", v1GetToken)
	if i, err := v.VerifyAuthTokenQuery(q); err != nil || i != 1 {
		t.Errorf("VerifyAuthTokenQuery = %d, %v; want 1, nil", i, err)
	}
	if i, err := v.VerifyAuthTokenJSON(v1KitToken, []byte(v1KitBody)); err != nil || i != 1 {
		t.Errorf("VerifyAuthTokenJSON = %d, %v; want 1, nil", i, err)
	}
	empty := &Verifier{}
	if _, err := empty.VerifyAuthTokenQuery(q); !errors.Is(err, ErrNoKeys) || !errors.Is(err, ErrSignature) {
		t.Errorf("no keys: err = %v, want ErrNoKeys and ErrSignature", err)
	}
	if _, err := (&Verifier{Keys: []string{"a", "b"}}).VerifyAuthTokenJSON(v1KitToken, []byte(v1KitBody)); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong keys: err = %v, want ErrSignature", err)
	}
}
