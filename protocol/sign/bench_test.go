package sign

import (
	"net/url"
	"strconv"
	"testing"
)

// benchBody is a typical newInstance body, about 200 bytes.
const benchBody = `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1","productId":"OFFI846204237451911168"}`

func BenchmarkVerifyV2(b *testing.B) {
	body := []byte(benchBody)
	ts := msText(t0)
	nonces := make([]string, b.N)
	sigs := make([]string, b.N)
	for i := range b.N {
		nonces[i] = "nonce-" + strconv.Itoa(i)
		sigs[i] = V2Signature(specKey, nonces[i], ts, body)
	}
	v := &Verifier{Keys: []string{specKey}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
	ctx := b.Context()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.VerifyV2(ctx, sigs[i], ts, nonces[i], body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkV2Signature(b *testing.B) {
	body := []byte(benchBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		V2Signature(specKey, specNonce, specTimestamp, body)
	}
}

func BenchmarkBodySign(b *testing.B) {
	body := []byte(`{"resultCode":"000000","resultMsg":"success","instanceId":"03pf80c2bae96vc49b80b917bea776d7"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		BodySign(specKey, body)
	}
}

func BenchmarkAuthTokenQuery(b *testing.B) {
	q, err := url.ParseQuery(v1GetQuery + "&customerName=Acme&productId=p1&skuCode=s1&chargingMode=1&periodType=year&periodNumber=1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AuthTokenQuery(v1Key, q); err != nil {
			b.Fatal(err)
		}
	}
}
