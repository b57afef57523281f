package protocol

import "testing"

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
