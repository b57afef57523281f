package inbound_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// BenchmarkPipeline is the pipeline's own cost per call on SQLite: strict
// query, family pick, V2 signature, the nonce recorded, strict decoding of
// a real queryInstance body, validation, a family that answers at once,
// the reply with its Body-Sign and the ledger row (written behind the
// reply, in batches: the benchmark waits for the last before it stops).
// Two families share the path, as on the production path.
func BenchmarkPipeline(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "kb.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	answer := protocol.NewResponse(protocol.CodeSuccess, "success")
	serve := func(context.Context, inbound.Request) (inbound.Outcome, error) {
		return inbound.Outcome{Response: answer, Code: protocol.CodeSuccess}, nil
	}
	decode := func(c *inbound.Call) (inbound.Request, error) { return protocol.DecodeV2(c.Body) }
	s, err := inbound.New(inbound.Config{
		Families: []*inbound.Family{
			{Name: "v2", Method: http.MethodPost, Path: "/produce", Keys: inbound.KeyBasic, Scheme: inbound.URLSignature,
				Activities: []string{protocol.ActivityQueryInstance}, Decode: decode, Serve: serve},
			{Name: "order", Method: http.MethodPost, Path: "/produce", Keys: inbound.KeyGeneral, Scheme: inbound.URLSignature,
				Activities: []string{protocol.ActivityOrderNotify}, Decode: decode, Serve: serve},
		},
		Keys:   inbound.Keys{inbound.KeyBasic: {basicKey}, inbound.KeyGeneral: {generalKey}},
		Store:  st,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"1"}`
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		nonce := "bench-nonce-" + strconv.Itoa(i)
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		req := httptest.NewRequest(http.MethodPost, "/produce?signature="+sign.V2Signature(basicKey, nonce, ts, []byte(body))+
			"&timestamp="+ts+"&nonce="+nonce, strings.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"000000"`) {
			b.Fatalf("answer %d %s", w.Code, w.Body)
		}
	}
	s.Wait()
}
