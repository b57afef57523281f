package testseller

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/protocol"
)

// malformed are signed bodies a correct seller must answer 000002.
var malformed = []string{
	"",
	" ",
	"null",
	"[]",
	"{",
	"}",
	`"newInstance"`,
	"123",
	"true",
	"\x00\x01\x02",
	`{"activity":null}`,
	`{"activity":5}`,
	`{"activity":["newInstance"]}`,
	`{"activity":{"name":"newInstance"}}`,
	`{"activity":"newInstance\u0000"}`,
	"{\"activity\":\"\xff\xfe\"}",
	`{"activity":"` + strings.Repeat("q", 1000) + `"}`,
	`{"activity":"newInstance","orderId":{},"orderLineId":"a","businessId":"b"}`,
	`{"activity":"newInstance","orderId":["a"],"orderLineId":"a","businessId":"b"}`,
	`{"activity":"newInstance","orderId":"a","orderLineId":"a","businessId":"b"} trailing`,
	`{"activity":"newInstance","orderId":"a","orderLineId":"a","businessId":"b"}{}`,
	`{"activity":"newInstance","orderId":"a","orderLineId":"a","businessId":"` + strings.Repeat("é", 65) + `"}`,
	`{"activity":"newInstance","activity":"queryInstance"}`,
	`{"activity":"queryInstance","instanceId":",,,"}`,
	`{"activity":"queryInstance","instanceId":"` + strings.Repeat("i", 65) + `"}`,
	`{"activity":"queryInstance","instanceId":"a","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
	`{"activity":"refreshInstance","instanceId":"i","scene":"RENEWAL","orderId":"o","orderLineId":"l","expireTime":"99999999999999"}`,
	`{"activity":"refreshInstance","instanceId":"i","scene":"RENEWAL","orderId":"o","orderLineId":"l","expireTime":"-1"}`,
	`{"activity":"refreshInstance","instanceId":"i","scene":"RENEWAL","orderId":"o","orderLineId":"l","expireTime":1e400}`,
	`{"activity":"updateInstanceStatus","instanceId":"i","status":"freeze"}`,
	`{"activity":"updateInstanceStatus","instanceId":"i"}`,
	`{"activity":"releaseInstance","instanceId":""}`,
	`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":null}`,
	`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":[1,2]}`,
	`{"activity":"upgradeInstance","instanceId":"i","orderId":"o"}`,
	`{"activity":"newInstance","orderId":"o","orderLineId":"l","businessId":"b","testFlag":"123"}`,
}

// TestMalformedBodies: the correct seller answers every malformed body
// 000002 with a well-formed, signed reply and creates nothing.
func TestMalformedBodies(t *testing.T) {
	e := start(t, Faults{})
	for _, body := range malformed {
		r := e.postRaw([]byte(body))
		checkWire(t, r)
		if r.code != protocol.CodeInvalidParam {
			t.Errorf("body %.80q: resultCode %s (%q), want 000002", body, r.code, r.msg)
		}
	}
	if n := e.s.Instances(); n != 0 {
		t.Errorf("Instances() = %d, want 0", n)
	}
}

// TestMutatedBodies feeds deterministic corruptions of valid bodies (byte
// flips, insertions, truncations) to the seller with and without the
// faults that let more input through. Every answer must be a signed JSON
// reply with a documented result code; a panic would surface as a failed
// request.
func TestMutatedBodies(t *testing.T) {
	valid := []string{
		`{"activity":"newInstance","businessId":"b","orderId":"MOCKONDEMAND","orderLineId":"MOCKONDEMAND-000001","testFlag":"1"}`,
		`{"activity":"queryInstance","instanceId":"a,b,c"}`,
		`{"activity":"refreshInstance","expireTime":"20300101000000000","instanceId":"i","orderId":"o","orderLineId":"l","scene":"RENEWAL"}`,
		`{"activity":"updateInstanceStatus","instanceId":"i","status":"FREEZE"}`,
		`{"activity":"releaseInstance","instanceId":"i","orderId":"o","orderLineId":"l"}`,
		`{"activity":"upgradeInstance","instanceId":"i","orderId":"o","orderLineId":"l"}`,
		`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","skuCode":"s","linearValue":3}}`,
	}
	known := map[protocol.ResultCode]bool{
		protocol.CodeSuccess: true, protocol.CodeInvalidParam: true,
		protocol.CodeInstanceNotFound: true, protocol.CodeProcessing: true,
	}
	junk := []byte(`{}[]":,\ 0123456789eE.+-tfnul` + "\x00\x7f\xff\xc3")
	for _, f := range []Faults{{}, {SkipValidation: true}, {SkipValidation: true, UnknownInstanceOK: true, Async: true}} {
		e := start(t, f)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 400 {
			b := []byte(valid[i%len(valid)])
			for range 1 + rng.IntN(4) {
				switch p := rng.IntN(len(b) + 1); rng.IntN(3) {
				case 0: // replace
					if p < len(b) {
						b[p] = junk[rng.IntN(len(junk))]
					}
				case 1: // insert
					b = append(b[:p], append([]byte{junk[rng.IntN(len(junk))]}, b[p:]...)...)
				case 2: // truncate
					b = b[:p]
				}
			}
			r := e.postRaw(b)
			checkWire(t, r)
			if !known[r.code] {
				t.Errorf("faults %+v, body %q: resultCode %s", f, b, r.code)
			}
		}
	}
}
