package emulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// BenchmarkCheckReply measures the debugger's checks on a correct
// queryInstance answer: Body-Sign, JSON, fields, lengths and memo escapes.
func BenchmarkCheckReply(b *testing.B) {
	body := []byte(`{"resultCode":"000000","resultMsg":"success","info":[{"instanceId":"i1","appInfo":{"frontEndUrl":"https://app.example.com","adminUrl":"https://admin.example.com","userName":"admin","password":"p","memo":"\u6b22\u8fce"},"usageInfo":[{"usageValue":1.5,"statisticalTime":"20240101010000000"}]}]}`)
	h := http.Header{}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Body-Sign", sign.BodySign(vecKey, body))
	rc := replyCheck{key: vecKey, expect: []protocol.ResultCode{protocol.CodeSuccess}, iface: protocol.ActivityQueryInstance, fieldRule: v2Fields}
	b.ReportAllocs()
	for b.Loop() {
		if _, vs := checkReply(rc, http.StatusOK, h, body); len(vs) != 0 {
			b.Fatal(vs)
		}
	}
}

// BenchmarkSend measures one signed call and its checks against an
// in-memory seller over loopback HTTP: the emulator's cost per call.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(testseller.New(vecKey, testseller.Faults{}))
	defer srv.Close()
	s := seller{client: srv.Client(), url: srv.URL, key: vecKey, deadline: 5 * time.Second}
	c := Call{Interface: protocol.ActivityQueryInstance, Body: []byte(`{"activity":"queryInstance","instanceId":"nope"}`),
		Expect: []protocol.ResultCode{protocol.CodeInstanceNotFound}}
	b.ReportAllocs()
	for b.Loop() {
		if a := send(context.Background(), s, V2, c, time.Now()); !a.OK() {
			b.Fatal(a.Violations)
		}
	}
}
