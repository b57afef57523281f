package isv_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	kstore "github.com/koobridge/koobridge/store"
)

// ambiguousCase is one validly signed call whose meaning is up to the
// parser: each must be refused with 000002 and a message naming the
// problem, before any write, on every database alike.
type ambiguousCase struct {
	name    string
	body    string
	repeat  string // a query parameter given a second time
	msgPart string
}

var ambiguousCases = []ambiguousCase{
	{name: "two signatures", body: newInstanceBody("AMB-1", "AMB-1-000001"), repeat: "signature", msgPart: "signature"},
	{name: "two timestamps", body: newInstanceBody("AMB-2", "AMB-2-000001"), repeat: "timestamp", msgPart: "timestamp"},
	{name: "two nonces", body: newInstanceBody("AMB-3", "AMB-3-000001"), repeat: "nonce", msgPart: "nonce"},
	{name: "duplicated activity key", msgPart: "duplicate key",
		body: `{"activity":"queryInstance","activity":"newInstance","businessId":"b-4","orderId":"AMB-4","orderLineId":"AMB-4-000001"}`},
	{name: "orderId true", msgPart: "orderId: must be a string, not a boolean",
		body: `{"activity":"newInstance","businessId":"b-5","orderId":true,"orderLineId":"AMB-5-000001"}`},
	{name: "orderLineId false", msgPart: "orderLineId: must be a string, not a boolean",
		body: `{"activity":"newInstance","businessId":"b-6","orderId":"AMB-6","orderLineId":false}`},
	{name: "businessId true", msgPart: "businessId: must be a string, not a boolean",
		body: `{"activity":"newInstance","businessId":true,"orderId":"AMB-7","orderLineId":"AMB-7-000001"}`},
	{name: "orderId not UTF-8", msgPart: "orderId: not valid UTF-8",
		body: "{\"activity\":\"newInstance\",\"businessId\":\"b-8\",\"orderId\":\"AMB-\xff8\",\"orderLineId\":\"AMB-8-000001\"}"},
	{name: "NUL in orderId", msgPart: "orderId: contains a NUL character",
		body: `{"activity":"newInstance","businessId":"b-9","orderId":"AMB-\u00009","orderLineId":"AMB-9-000001"}`},
	{name: "orderNotify with a duplicated testFlag", msgPart: "duplicate key",
		body: `{"activity":"orderNotify","orderId":"AMB-11","orderLineId":"AMB-11-000001","testFlag":"1","testFlag":"0"}`},
	{name: "orderNotify with orderId true", msgPart: "orderId: must be a string, not a boolean",
		body: `{"activity":"orderNotify","orderId":true,"orderLineId":"AMB-12-000001","testFlag":"0"}`},
	{name: "orderNotify with two nonces", body: `{"activity":"orderNotify","orderId":"AMB-13","orderLineId":"AMB-13-000001","testFlag":"0"}`,
		repeat: "nonce", msgPart: "nonce"},
	{name: "lone surrogate in orderLineId", msgPart: "orderLineId: contains a lone surrogate",
		body: `{"activity":"newInstance","businessId":"b-10","orderId":"AMB-10","orderLineId":"AMB-10-\ud800"}`},
}

// TestAmbiguousInputRefused: the calls of the issue that were once
// answered 000000 and created an instance. Each is refused with 000002
// naming the problem, writes nothing, and is answered the same on SQLite
// and PostgreSQL.
func TestAmbiguousInputRefused(t *testing.T) {
	dbs := []struct {
		name string
		open func(t *testing.T) *kstore.DB
	}{
		{"sqlite", nil},
		{"postgres", func(t *testing.T) *kstore.DB {
			db, err := kstore.Open(context.Background(), pgtest.Schema(t, pgtest.DSN(t)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
	}
	answers := map[string]map[string]string{} // case → database → resultMsg
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, func(c *isv.Config) {
				if db.open != nil {
					c.DB = db.open(t)
				}
			})
			for _, tc := range ambiguousCases {
				t.Run(tc.name, func(t *testing.T) {
					before := e.state(t)
					rq := request{}
					if tc.repeat != "" {
						nonce := randomNonce(t)
						q := signedQuery(key1, nonce, time.Now(), []byte(tc.body))
						q[tc.repeat] = append(q[tc.repeat], q.Get(tc.repeat)+"0")
						rq.query = q
					}
					r := e.do(t, tc.body, rq)
					checkReply(t, r, http.StatusOK, key1)
					wantCode(t, r, protocol.CodeInvalidParam)
					if !strings.Contains(r.msg(), tc.msgPart) {
						t.Errorf("resultMsg %q does not name %q", r.msg(), tc.msgPart)
					}
					if after := e.state(t); after != before {
						t.Errorf("state changed: before %+v, after %+v", before, after)
					}
					if answers[tc.name] == nil {
						answers[tc.name] = map[string]string{}
					}
					answers[tc.name][db.name] = r.code() + " " + r.msg()
				})
			}
			// The same order lines, asked unambiguously, are new: nothing
			// of them was stored.
			if _, err := e.st.InstanceByOrderLine(context.Background(), "AMB-4", "AMB-4-000001"); err == nil {
				t.Error("the call with a duplicated key created an instance")
			}
		})
	}
	for name, byDB := range answers {
		if len(byDB) == 2 && byDB["sqlite"] != byDB["postgres"] {
			t.Errorf("%s: SQLite answered %q, PostgreSQL %q", name, byDB["sqlite"], byDB["postgres"])
		}
	}
}
