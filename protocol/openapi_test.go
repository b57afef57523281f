package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const queryOrderMock = `{"resultCode":"MKT.0000","resultMsg":"Success",
 "orderInfo":{"orderId":"MOCKPERIODYEARNEW","orderType":"NEW","createTime":"20241121090846",
  "orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year",
    "periodNumber":1,"expireTime":"20251121235959",
    "productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d1578-…","linearValue":50,"productName":"MOCK测试商品,…"}],
    "extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"ip","value":"127.0.0.1"}],
    "currency":"100","currencyAfterDiscount":"100"}],
  "buyerInfo":{"mobilePhone":"…","email":null,"customerId":"…","customerName":"mock_user_01",
    "customerRealName":"测试用户1","customerType":0,"userId":null,"userName":null},
  "extendParams":[]}}`

func TestQueryOrderMock(t *testing.T) {
	r, err := DecodeQueryOrderResponse([]byte(queryOrderMock))
	if err != nil {
		t.Fatal(err)
	}
	want := QueryOrderResponse{ResultCode: "MKT.0000", ResultMsg: "Success", OrderInfo: &OrderInfo{
		OrderID: "MOCKPERIODYEARNEW", OrderType: OrderTypeNew, CreateTime: "20241121090846",
		OrderLine: []OrderLine{{OrderLineID: "MOCKPERIODYEARNEW-000001", ChargingMode: ChargingPeriod, PeriodType: "year",
			PeriodNumber: "1", ExpireTime: "20251121235959",
			ProductInfo:  ProductInfoList{{ProductID: "OFFI846204237451911168", SKUCode: "0a4d1578-…", LinearValue: "50", ProductName: "MOCK测试商品,…"}},
			ExtendParams: ExtendParamList{{"emailDomainName", "test.xxxx.com"}, {"ip", "127.0.0.1"}},
			Currency:     "100", CurrencyAfterDiscount: "100"}},
		BuyerInfo:    &BuyerInfo{MobilePhone: "…", CustomerID: "…", CustomerName: "mock_user_01", CustomerRealName: "测试用户1", CustomerType: "0"},
		ExtendParams: ExtendParamList{},
	}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got  %#v\nwant %#v", r, want)
	}
	if !r.Success() || r.Code() != "MKT.0000" || r.Msg() != "Success" {
		t.Fatalf("Success/Code/Msg = %v/%q/%q", r.Success(), r.Code(), r.Msg())
	}
	line, ok := r.OrderInfo.Line("MOCKPERIODYEARNEW-000001")
	if !ok || string(line.ChargingMode) != ChargingPeriod {
		t.Fatalf("Line = %v, %v", line, ok)
	}
	if n, err := line.ProductInfo[0].LinearValue.Int64(); err != nil || n != 50 {
		t.Fatalf("linearValue = %d, %v", n, err)
	}
	if v, ok := line.ExtendParams.Get("ip"); !ok || v != "127.0.0.1" {
		t.Fatalf("Get(ip) = %q, %v", v, ok)
	}
	if _, ok := r.OrderInfo.Line("nope"); ok {
		t.Fatal("Line(nope) found")
	}
}

func TestQueryOrderLenient(t *testing.T) {
	body := `{"resultCode":"CBC.0000","orderInfo":{"orderId":"o","orderLine":[{"orderLineId":"l","chargingMode":1,
 "periodNumber":"2","productInfo":{"productId":"p","linearValue":"7"},"extendParams":{"b":"2","a":1}}],
 "buyerInfo":{"customerType":"1"},"extendParams":"[{\"name\":\"n\",\"value\":\"v\"}]","newField":{"x":[1]}}}`
	r, err := DecodeQueryOrderResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	l := r.OrderInfo.OrderLine[0]
	if l.ChargingMode != "1" || l.PeriodNumber != "2" || len(l.ProductInfo) != 1 || l.ProductInfo[0].LinearValue != "7" {
		t.Fatalf("line = %#v", l)
	}
	if !reflect.DeepEqual(l.ExtendParams, ExtendParamList{{"a", "1"}, {"b", "2"}}) {
		t.Fatalf("extendParams object = %#v", l.ExtendParams)
	}
	if !reflect.DeepEqual(r.OrderInfo.ExtendParams, ExtendParamList{{"n", "v"}}) {
		t.Fatalf("extendParams string = %#v", r.OrderInfo.ExtendParams)
	}
	if r.OrderInfo.BuyerInfo.CustomerType != "1" || !r.Success() {
		t.Fatalf("buyer = %#v", r.OrderInfo.BuyerInfo)
	}
	gw, err := DecodeQueryOrderResponse([]byte(`{"error_code":"APIGW.0301","error_msg":"verify aksk signature fail"}`))
	if err != nil || gw.Success() || gw.Code() != APIGWAuthFailed || gw.Msg() != "verify aksk signature fail" {
		t.Fatalf("gateway error = %#v, %v", gw, err)
	}
	for _, bad := range []string{`{`, `[]`, `{"orderInfo":[]}`, `{"orderInfo":{"orderLine":{}}}`} {
		if _, err := DecodeQueryOrderResponse([]byte(bad)); err == nil {
			t.Errorf("DecodeQueryOrderResponse(%s) succeeded", bad)
		}
	}
}

// TestUsagePushBody checks the body of the saas-v2.md §2.5 usage signature
// vector byte for byte: fields must marshal in natural key order.
func TestUsagePushBody(t *testing.T) {
	req := UsagePushRequest{UsageRecords: []UsageRecord{{
		InstanceID: "inst-001", RecordTime: "20240101T010500Z", BeginTime: "20240101T000000Z", EndTime: "20240101T010000Z",
		UsageValue: "1.5", MeteringSN: "sn-0001",
	}}}
	got, err := Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"usage_records":[{"begin_time":"20240101T000000Z","end_time":"20240101T010000Z","instance_id":"inst-001","metering_sn":"sn-0001","record_time":"20240101T010500Z","usage_value":"1.5"}]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	// Every JSON name of every signed struct is in ascending order.
	for _, v := range []any{UsageRecord{RelatePkgInstance: "x"}, OldUsageRecord{RelatePkgInstance: "x"}} {
		b, _ := json.Marshal(v)
		var keys []string
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			dec.Token()
		}
		for i := 1; i < len(keys); i++ {
			if keys[i-1] >= keys[i] {
				t.Errorf("%T keys out of order: %v", v, keys)
			}
		}
	}
}

func TestUsagePushValidate(t *testing.T) {
	rec := UsageRecord{InstanceID: "i", RecordTime: "20240101T010500Z", BeginTime: "20240101T000000Z", EndTime: "20240101T010000Z",
		UsageValue: "0.0001", MeteringSN: "sn"}
	ok := UsagePushRequest{UsageRecords: []UsageRecord{rec}}
	set := func(f func(*UsageRecord)) UsagePushRequest {
		return UsagePushRequest{UsageRecords: []UsageRecord{rec, with(rec, f)}}
	}
	many := make([]UsageRecord, 1001)
	for i := range many {
		many[i] = rec
	}
	old := OldUsagePushRequest{UsageRecords: []OldUsageRecord{{InstanceID: "i", ProductID: "p", RecordTime: rec.RecordTime,
		BeginTime: rec.BeginTime, EndTime: rec.EndTime, UsageValue: "3"}}}
	runValidate(t, []validateCase{
		{"ok", ok, ""},
		{"1000 ok", UsagePushRequest{UsageRecords: many[:1000]}, ""},
		{"1001", UsagePushRequest{UsageRecords: many}, "usage_records"},
		{"empty", UsagePushRequest{}, "usage_records"},
		{"instance_id missing", set(func(r *UsageRecord) { r.InstanceID = "" }), "usage_records[1].instance_id"},
		{"instance_id 65", set(func(r *UsageRecord) { r.InstanceID = long(65) }), "usage_records[1].instance_id"},
		{"record_time missing", set(func(r *UsageRecord) { r.RecordTime = "" }), "usage_records[1].record_time"},
		{"record_time bad", set(func(r *UsageRecord) { r.RecordTime = "20240101010500" }), "usage_records[1].record_time"},
		{"begin_time bad", set(func(r *UsageRecord) { r.BeginTime = "20241301T000000Z" }), "usage_records[1].begin_time"},
		{"end_time missing", set(func(r *UsageRecord) { r.EndTime = "" }), "usage_records[1].end_time"},
		{"end before begin", set(func(r *UsageRecord) { r.EndTime = "20231231T000000Z" }), "usage_records[1].end_time"},
		{"usage_value missing", set(func(r *UsageRecord) { r.UsageValue = "" }), "usage_records[1].usage_value"},
		{"usage_value zero", set(func(r *UsageRecord) { r.UsageValue = "0.0000" }), "usage_records[1].usage_value"},
		{"usage_value negative", set(func(r *UsageRecord) { r.UsageValue = "-1" }), "usage_records[1].usage_value"},
		{"usage_value 5 decimals", set(func(r *UsageRecord) { r.UsageValue = "1.00001" }), "usage_records[1].usage_value"},
		{"usage_value 21 chars", set(func(r *UsageRecord) { r.UsageValue = "1." + long(19) }), "usage_records[1].usage_value"},
		{"metering_sn missing", set(func(r *UsageRecord) { r.MeteringSN = "" }), "usage_records[1].metering_sn"},
		{"metering_sn 65", set(func(r *UsageRecord) { r.MeteringSN = long(65) }), "usage_records[1].metering_sn"},
		{"relate_pkg_instance 65", set(func(r *UsageRecord) { r.RelatePkgInstance = long(65) }), "usage_records[1].relate_pkg_instance"},
		{"old ok", old, ""},
		{"old empty", OldUsagePushRequest{}, "usage_records"},
		{"old product_id missing", with(old, func(r *OldUsagePushRequest) {
			r.UsageRecords = []OldUsageRecord{with(r.UsageRecords[0], func(o *OldUsageRecord) { o.ProductID = "" })}
		}), "usage_records[0].product_id"},
		{"old usage_value bad", with(old, func(r *OldUsagePushRequest) {
			r.UsageRecords = []OldUsageRecord{with(r.UsageRecords[0], func(o *OldUsageRecord) { o.UsageValue = "x" })}
		}), "usage_records[0].usage_value"},
	})
}

func TestOpenAPIResult(t *testing.T) {
	var r UsagePushResponse
	body := `{"error_code":"MKT.0101","error_msg":"invalid","extra_info":{"a":1},"fail_records":[{"metering_sn":"x"}]}`
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != MKTInvalidParam || r.ErrorMsg != "invalid" || len(r.Extra) != 2 || r.Success() {
		t.Fatalf("got %#v", r)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back UsagePushResponse
	if err := json.Unmarshal(out, &back); err != nil || back.ErrorCode != r.ErrorCode || len(back.Extra) != 2 {
		t.Fatalf("round trip %s: %#v, %v", out, back, err)
	}
	var okResp UsagePushResponse
	if err := json.Unmarshal([]byte(`{"error_code":"MKT.0000","error_msg":"success"}`), &okResp); err != nil || !okResp.Success() || okResp.Extra != nil {
		t.Fatalf("success = %#v, %v", okResp, err)
	}
	if err := json.Unmarshal([]byte(`[]`), &okResp); err == nil {
		t.Fatal("array decoded")
	}
}

func TestLicenseActivate(t *testing.T) {
	body := `{"error_code":"92020000","error_msg":"success","data":{"license_code_info":"{\"status\":\"ALIVE\",\"expire_time\":\"20230726121646\",\"product_id\":\"12345\",\"amount\":2,\"order_id\":\"CS123\"}"}}`
	var r LicenseActivateResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Success() || r.Data == nil {
		t.Fatalf("got %#v", r)
	}
	info, err := r.Data.Info()
	if err != nil {
		t.Fatal(err)
	}
	want := LicenseCodeInfo{Status: LicenseStatusAlive, ExpireTime: "20230726121646", ProductID: "12345", OrderID: "CS123", Amount: "2"}
	if info != want {
		t.Fatalf("info = %#v", info)
	}
	// A plain object is accepted as well.
	var obj LicenseActivateResponse
	if err := json.Unmarshal([]byte(`{"error_code":"92020000","data":{"license_code_info":{"status":"ALIVE"}}}`), &obj); err != nil {
		t.Fatal(err)
	}
	if info, err := obj.Data.Info(); err != nil || info.Status != "ALIVE" {
		t.Fatalf("object info = %#v, %v", info, err)
	}
	for _, d := range []LicenseActivateData{{}, {LicenseCodeInfo: "not json"}} {
		if _, err := d.Info(); err == nil {
			t.Errorf("Info(%q) succeeded", d.LicenseCodeInfo)
		}
	}
	b, _ := Marshal(LicenseActivateRequest{License: "PL1", RealEffectTime: "20260102153555"})
	if string(b) != `{"license":"PL1","real_effect_time":"20260102153555"}` {
		t.Errorf("activate v1 body = %s", b)
	}
	b, _ = Marshal(LicenseActivateV2Request{LicenseList: []string{"PL****001", "PL****002"}, RealEffectTime: "20260102153555"})
	if string(b) != `{"license_list":["PL****001","PL****002"],"real_effect_time":"20260102153555"}` {
		t.Errorf("activate v2 body = %s", b)
	}
	list := make([]string, 101)
	for i := range list {
		list[i] = "L"
	}
	runValidate(t, []validateCase{
		{"v1 ok", LicenseActivateRequest{License: "L"}, ""},
		{"v1 license missing", LicenseActivateRequest{}, "license"},
		{"v1 license 65", LicenseActivateRequest{License: long(65)}, "license"},
		{"v1 time bad", LicenseActivateRequest{License: "L", RealEffectTime: "2026-01-02"}, "real_effect_time"},
		{"v2 ok", LicenseActivateV2Request{LicenseList: list[:100]}, ""},
		{"v2 101", LicenseActivateV2Request{LicenseList: list}, "license_list"},
		{"v2 empty", LicenseActivateV2Request{}, "license_list"},
		{"v2 blank code", LicenseActivateV2Request{LicenseList: []string{"L", ""}}, "license_list[1]"},
		{"v2 time 17", LicenseActivateV2Request{LicenseList: []string{"L"}, RealEffectTime: "20260102153555000"}, "real_effect_time"},
	})
}

func TestLicenseQuery(t *testing.T) {
	b, _ := Marshal(LicenseQueryRequest{License: "PLXXXXXX", HeartbeatInfo: &HeartbeatInfo{ThirdPartyAccount: "myaccount1", IP: "192.168.1.51"}})
	if want := `{"heartbeatInfo":{"ip":"192.168.1.51","thirdPartyAccount":"myaccount1"},"license":"PLXXXXXX"}`; string(b) != want {
		t.Errorf("query body = %s", b)
	}
	runValidate(t, []validateCase{
		{"ok", LicenseQueryRequest{License: "L"}, ""},
		{"license missing", LicenseQueryRequest{}, "license"},
		{"account missing", LicenseQueryRequest{License: "L", HeartbeatInfo: &HeartbeatInfo{}}, "heartbeatInfo.thirdPartyAccount"},
		{"ip 33", LicenseQueryRequest{License: "L", HeartbeatInfo: &HeartbeatInfo{ThirdPartyAccount: "a", IP: long(33)}}, "heartbeatInfo.ip"},
	})
	var r LicenseQueryResponse
	body := `{"error_code":"92020000","error_msg":"success","data":{"license_code":"PL1","status":"ALIVE","activate_time":"20230101000000","expire_time":"20240101000000","new_field":3}}`
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Success() || r.Data.LicenseCode != "PL1" || r.Data.Status != "ALIVE" || r.Data.ActivateTime != "20230101000000" ||
		r.Data.ExpireTime != "20240101000000" || string(r.Data.Extra["new_field"]) != "3" {
		t.Fatalf("got %#v", r.Data)
	}
	out, _ := json.Marshal(r.Data)
	var back LicenseInfo
	if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, *r.Data) {
		t.Fatalf("round trip %s: %#v, %v", out, back, err)
	}
	if err := json.Unmarshal([]byte(`{"status":[1]}`), &back); err != nil || back.Status != "[1]" {
		t.Fatalf("odd status: %#v, %v", back, err)
	}
}

func TestSoftwareUsageInfo(t *testing.T) {
	three := 3
	req := SoftwareUsageInfoRequest{UsageInfo: []SoftwareUsageEntry{{License: "PL1",
		SoftwareUsageInfo: []SoftwareUsageItem{{ID: "dev-1"}, {ActiveNum: &three}}}}}
	b, _ := Marshal(req)
	if want := `{"usage_info":[{"license":"PL1","software_usage_Info":[{"id":"dev-1"},{"active_num":3}]}]}`; string(b) != want {
		t.Errorf("body = %s", b)
	}
	neg := -1
	entries := make([]SoftwareUsageEntry, 101)
	for i := range entries {
		entries[i] = SoftwareUsageEntry{License: "L"}
	}
	runValidate(t, []validateCase{
		{"ok", req, ""},
		{"empty", SoftwareUsageInfoRequest{}, "usage_info"},
		{"101", SoftwareUsageInfoRequest{UsageInfo: entries}, "usage_info"},
		{"license missing", SoftwareUsageInfoRequest{UsageInfo: []SoftwareUsageEntry{{}}}, "usage_info[0].license"},
		{"neither", SoftwareUsageInfoRequest{UsageInfo: []SoftwareUsageEntry{{License: "L", SoftwareUsageInfo: []SoftwareUsageItem{{}}}}}, "usage_info[0].software_usage_Info[0]"},
		{"both", SoftwareUsageInfoRequest{UsageInfo: []SoftwareUsageEntry{{License: "L", SoftwareUsageInfo: []SoftwareUsageItem{{ID: "x", ActiveNum: &three}}}}}, "usage_info[0].software_usage_Info[0]"},
		{"id 257", SoftwareUsageInfoRequest{UsageInfo: []SoftwareUsageEntry{{License: "L", SoftwareUsageInfo: []SoftwareUsageItem{{ID: long(257)}}}}}, "usage_info[0].software_usage_Info[0].id"},
		{"negative", SoftwareUsageInfoRequest{UsageInfo: []SoftwareUsageEntry{{License: "L", SoftwareUsageInfo: []SoftwareUsageItem{{ActiveNum: &neg}}}}}, "usage_info[0].software_usage_Info[0].active_num"},
	})
	var resp SoftwareUsageInfoResponse
	if err := json.Unmarshal([]byte(`{"error_code":"92020000","error_msg":"ok","data":{"check_fail_list":[]}}`), &resp); err != nil || len(resp.Data) != 1 {
		t.Fatalf("response = %#v, %v", resp, err)
	}
}

func TestIsvUpdateFileReq(t *testing.T) {
	b, _ := Marshal(IsvUpdateFileReq{Type: UploadTypeCharacters, Characters: "LIC-中"})
	if want := `{"characters":"LIC-\u4e2d","type":"CHARACTERS"}`; string(b) != want {
		t.Errorf("body = %s", b)
	}
	runValidate(t, []validateCase{
		{"chars ok", IsvUpdateFileReq{Type: UploadTypeCharacters, Characters: long(1024)}, ""},
		{"file ok", IsvUpdateFileReq{Type: UploadTypeFile, FileName: "a.lic", SHA256: strings.Repeat("ab", 32)}, ""},
		{"type missing", IsvUpdateFileReq{}, "type"},
		{"type bad", IsvUpdateFileReq{Type: "TEXT"}, "type"},
		{"chars missing", IsvUpdateFileReq{Type: UploadTypeCharacters}, "characters"},
		{"chars 1025", IsvUpdateFileReq{Type: UploadTypeCharacters, Characters: long(1025)}, "characters"},
		{"file name missing", IsvUpdateFileReq{Type: UploadTypeFile, SHA256: "x"}, "file_name"},
		{"sha missing", IsvUpdateFileReq{Type: UploadTypeFile, FileName: "a"}, "sha256"},
	})
}
