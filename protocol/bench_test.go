package protocol

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func BenchmarkDecodeV2NewInstance(b *testing.B) {
	body := []byte(v2Seeds[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeV2(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalQueryInstanceResponse(b *testing.B) {
	uv, _ := ParseDecimal("12.5")
	r := QueryInstanceResponse{Response: Response{CodeSuccess, "success."}, Info: []InstanceInfo{{
		InstanceID: "10e758d0-31ad-4c4b-8f1b-81d03469a10e",
		AppInfo: &AppInfo{FrontEndURL: "https://app.example.com", AdminURL: "https://admin.example.com",
			UserName: "admin@example.com", Password: "********", Memo: "中文说明 with ASCII"},
		UsageInfo: []UsageInfo{{UsageValue: uv, StatisticalTime: "20240101010000000"}},
	}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}

// kitAuthSyncBody is an authSync body with 100 users, half of them with a
// nested extension: the largest request a decoder regularly sees.
func kitAuthSyncBody() []byte {
	var b strings.Builder
	b.WriteString(`{"instanceId":"inst-0001","tenantId":"68cbc86abc2018ab880d92f36422fa0e","appId":"KSIDJF1234456","userList":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"userName":"user%03d","name":"张三 %d","orgCode":"10%03d","role":"user","enable":true,"employeeType":1,"mobile":"1590522%04d","email":"user%d@example.com"`, i, i, i, i, i)
		if i%2 == 0 {
			b.WriteString(`,"extension":{"workPlace":"Shenzhen","entryDate":"2020-01-02"}`)
		}
		b.WriteByte('}')
	}
	b.WriteString(`],"currentSyncTime":"20220413093539534","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`)
	return []byte(b.String())
}

func BenchmarkDecodeKitAuthSync(b *testing.B) {
	body := kitAuthSyncBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeKit(KitAuthSync, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeKitTenantSync(b *testing.B) {
	body := []byte(`{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeKit(KitTenantSync, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeLicenseRefresh(b *testing.B) {
	body := []byte(`{"activity":"refreshLicenseCode","expireTime":"20230523201932","license":"PL0000000001","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","productId":"OFFI846204237451911168","scene":"RENEWAL","testFlag":"1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeLicense(body); err != nil {
			b.Fatal(err)
		}
	}
}

const benchQuery = "signature=11C4CD6279191DE931DEF5C51531DFFA9D37969F4E356B8A3A6D8DE4FB357A48&timestamp=1680508066618&nonce=50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"

func BenchmarkParseQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseQuery(benchQuery); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkURLParseQuery is the reference for BenchmarkParseQuery.
func BenchmarkURLParseQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := url.ParseQuery(benchQuery); err != nil {
			b.Fatal(err)
		}
	}
}
