package usageapi

import "testing"

func TestDecodeEdges(t *testing.T) {
	for _, body := range []string{
		`{"records":[{"idempotencyKey":"a","idempotencyKey":"b","instanceId":"i","value":1,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"Value":2,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i\u0000","value":1,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i\ud800","value":1,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1.50000,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1E2,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":-0,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T10:00:00+08:00"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06t10:00:00z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T24:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"0001-01-01T00:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T10:00:00.123456789123Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T10:00:00Z"}],"records":[]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T10:00:00Z"}]} x`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T10:00:00Z"}]}{}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":1,"time":"2026-12-06T10:00:00Z","extra":{"x":1,"x":2}}]}`,
		`{"records":[{"idempotencyKey":"\u00e9","instanceId":"i","value":1,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":100000000,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":99999999.99990,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":0.00001,"time":"2026-12-06T10:00:00Z"}]}`,
		`{"records":[{"idempotencyKey":"a","instanceId":"i","value":00001,"time":"2026-12-06T10:00:00Z"}]}`,
	} {
		in, problems, err := decode([]byte(body))
		t.Logf("%s\n   -> in=%+v problems=%q err=%v", body, in, problems, err)
	}
}
