package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeV2Examples(t *testing.T) {
	tests := []struct {
		name string
		body string
		want V2Request
		test bool
	}{
		{
			name: "newInstance example",
			body: `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`,
			want: NewInstanceRequest{ActivityName: "newInstance", BusinessID: "87b94795-0603-4e24-8ae5-69420d60e3c8",
				OrderID: "CS2211181819B4LVS", OrderLineID: "CS2211181819B4LVS-000001", TestFlag: "1"},
			test: true,
		},
		{
			name: "queryInstance example",
			body: `{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"1"}`,
			want: QueryInstanceRequest{ActivityName: "queryInstance", InstanceID: "10e758d0-31ad-4c4b-8f1b-81d03469a10e", TestFlag: "1"},
			test: true,
		},
		{
			name: "refreshInstance with 17-digit expireTime",
			body: `{"activity":"refreshInstance","expireTime":"20221124023618256","instanceId":"i1","orderId":"o1","orderLineId":"o1-000001","scene":"RENEWAL"}`,
			want: RefreshInstanceRequest{ActivityName: "refreshInstance", ExpireTime: "20221124023618256", InstanceID: "i1",
				OrderID: "o1", OrderLineID: "o1-000001", Scene: "RENEWAL"},
		},
		{
			name: "updateInstanceStatus, numeric testFlag and null",
			body: `{"activity":"updateInstanceStatus","instanceId":"i1","status":"FREEZE","testFlag":1,"extra":null,"unknown":{"a":1}}`,
			want: UpdateInstanceStatusRequest{ActivityName: "updateInstanceStatus", InstanceID: "i1", Status: "FREEZE", TestFlag: "1"},
			test: true,
		},
		{
			name: "releaseInstance testFlag 0",
			body: `{"activity":"releaseInstance","instanceId":"i1","orderId":"o2","orderLineId":"o2-000001","testFlag":"0"}`,
			want: ReleaseInstanceRequest{ActivityName: "releaseInstance", InstanceID: "i1", OrderID: "o2", OrderLineID: "o2-000001", TestFlag: "0"},
		},
		{
			name: "upgradeInstance",
			body: `{"activity":"upgradeInstance","instanceId":"i1","orderId":"o3","orderLineId":"o3-000001"}`,
			want: UpgradeInstanceRequest{ActivityName: "upgradeInstance", InstanceID: "i1", OrderID: "o3", OrderLineID: "o3-000001"},
		},
		{
			name: "changeInstanceCheck object, numeric linearValue",
			body: `{"activity":"changeInstanceCheck","instanceId":"i1","productInfo":{"productId":"p1","skuCode":"s1","linearValue":50,"productName":"名","x":1}}`,
			want: ChangeInstanceCheckRequest{ActivityName: "changeInstanceCheck", InstanceID: "i1",
				ProductInfo: &ProductInfo{ProductID: "p1", SKUCode: "s1", LinearValue: "50", ProductName: "名"}},
		},
		{
			name: "changeInstanceCheck string-encoded, string linearValue",
			body: `{"activity":"changeInstanceCheck","instanceId":"i1","productInfo":"{\"productId\":\"p1\",\"skuCode\":\"s1\",\"linearValue\":\"5\"}"}`,
			want: ChangeInstanceCheckRequest{ActivityName: "changeInstanceCheck", InstanceID: "i1",
				ProductInfo: &ProductInfo{ProductID: "p1", SKUCode: "s1", LinearValue: "5"}},
		},
		{
			name: "changeInstanceCheck array",
			body: `{"activity":"changeInstanceCheck","instanceId":"i1","productInfo":[{"productId":"p1","skuCode":"s1"}]}`,
			want: ChangeInstanceCheckRequest{ActivityName: "changeInstanceCheck", InstanceID: "i1",
				ProductInfo: &ProductInfo{ProductID: "p1", SKUCode: "s1"}},
		},
		{
			name: "getLicenseAsync",
			body: `{"activity":"getLicenseAsync","instanceId":"i1","effectiveTime":"2023-10-27 10:30:15 z","eventId":"e1","deviceFingerprint":"04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672","testFlag":"1"}`,
			want: GetLicenseAsyncRequest{ActivityName: "getLicenseAsync", InstanceID: "i1", EffectiveTime: "2023-10-27 10:30:15 z",
				EventID: "e1", DeviceFingerprint: "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672", TestFlag: "1"},
			test: true,
		},
		{
			name: "orderNotify example",
			body: `{"activity":"orderNotify","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`,
			want: OrderNotifyRequest{ActivityName: "orderNotify", OrderID: "CS2211181819B4LVS", OrderLineID: "CS2211181819B4LVS-000001", TestFlag: "1"},
			test: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeV2([]byte(tc.body))
			if err != nil {
				t.Fatalf("DecodeV2: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
			if got.Activity() != tc.want.Activity() {
				t.Fatalf("Activity = %q", got.Activity())
			}
			if got.IsTest() != tc.test {
				t.Fatalf("IsTest = %v, want %v", got.IsTest(), tc.test)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestDecodeV2Errors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		field     string // "" means a *DecodeError
		wantField bool
	}{
		{"malformed", `{"activity":`, "", false},
		{"not an object", `[1,2]`, "", false},
		{"null", `null`, "", false},
		{"empty", ``, "", false},
		// An object where a String is expected names the field (it was a
		// raw encoding/json *DecodeError before).
		{"wrong type", `{"activity":"newInstance","orderId":{"a":1}}`, "orderId", true},
		{"missing activity", `{"orderId":"o1"}`, "activity", true},
		{"unknown activity", `{"activity":"fooInstance"}`, "activity", true},
		{"license activity", `{"activity":"releaseLicenseCode","license":"x"}`, "activity", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeV2([]byte(tc.body))
			if err == nil || r != nil {
				t.Fatalf("got %v, %v; want error", r, err)
			}
			if ResultCodeFor(err) != CodeInvalidParam {
				t.Fatalf("ResultCodeFor(%v) = %s", err, ResultCodeFor(err))
			}
			if tc.wantField {
				wantField(t, err, tc.field)
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %T %v, want *DecodeError", err, err)
			}
		})
	}
}

func TestV2Validate(t *testing.T) {
	ni := NewInstanceRequest{ActivityName: "newInstance", BusinessID: "b", OrderID: "o", OrderLineID: "l", TestFlag: "1"}
	qi := QueryInstanceRequest{ActivityName: "queryInstance", InstanceID: "a, b,,c"}
	ri := RefreshInstanceRequest{ActivityName: "refreshInstance", ExpireTime: "20240101000000", InstanceID: "i",
		OrderID: "o", OrderLineID: "l", Scene: SceneRenewal}
	us := UpdateInstanceStatusRequest{ActivityName: "updateInstanceStatus", InstanceID: "i", Status: StatusUnfreeze}
	rl := ReleaseInstanceRequest{ActivityName: "releaseInstance", InstanceID: "i"}
	up := UpgradeInstanceRequest{ActivityName: "upgradeInstance", InstanceID: "i", OrderID: "o", OrderLineID: "l"}
	cc := ChangeInstanceCheckRequest{ActivityName: "changeInstanceCheck", InstanceID: "i", ProductInfo: &ProductInfo{ProductID: "p"}}
	ids101 := strings.TrimSuffix(strings.Repeat("id,", 101), ",")
	ids100 := strings.TrimSuffix(strings.Repeat("id,", 100), ",")
	runValidate(t, []validateCase{
		{"newInstance ok", ni, ""},
		{"newInstance 64 runes of CJK ok", with(ni, func(r *NewInstanceRequest) { r.OrderID = strings.Repeat("中", 64) }), ""},
		{"newInstance activity missing", with(ni, func(r *NewInstanceRequest) { r.ActivityName = "" }), "activity"},
		{"newInstance activity wrong", with(ni, func(r *NewInstanceRequest) { r.ActivityName = "queryInstance" }), "activity"},
		{"newInstance orderId missing", with(ni, func(r *NewInstanceRequest) { r.OrderID = "" }), "orderId"},
		{"newInstance orderId blank", with(ni, func(r *NewInstanceRequest) { r.OrderID = "  " }), "orderId"},
		{"newInstance orderId 65", with(ni, func(r *NewInstanceRequest) { r.OrderID = long(65) }), "orderId"},
		{"newInstance orderId 65 runes", with(ni, func(r *NewInstanceRequest) { r.OrderID = strings.Repeat("中", 65) }), "orderId"},
		{"newInstance orderLineId missing", with(ni, func(r *NewInstanceRequest) { r.OrderLineID = "" }), "orderLineId"},
		{"newInstance orderLineId 65", with(ni, func(r *NewInstanceRequest) { r.OrderLineID = long(65) }), "orderLineId"},
		{"newInstance businessId missing", with(ni, func(r *NewInstanceRequest) { r.BusinessID = "" }), "businessId"},
		{"newInstance businessId 65", with(ni, func(r *NewInstanceRequest) { r.BusinessID = long(65) }), "businessId"},
		{"newInstance testFlag 3", with(ni, func(r *NewInstanceRequest) { r.TestFlag = "123" }), "testFlag"},
		{"newInstance first failure wins", with(ni, func(r *NewInstanceRequest) { r.OrderID, r.BusinessID = "", "" }), "orderId"},

		{"queryInstance ok", qi, ""},
		{"queryInstance 100 ok", with(qi, func(r *QueryInstanceRequest) { r.InstanceID = ids100 }), ""},
		{"queryInstance 101", with(qi, func(r *QueryInstanceRequest) { r.InstanceID = ids101 }), "instanceId"},
		{"queryInstance missing", with(qi, func(r *QueryInstanceRequest) { r.InstanceID = " , " }), "instanceId"},
		{"queryInstance id 65", with(qi, func(r *QueryInstanceRequest) { r.InstanceID = "a," + long(65) }), "instanceId"},
		{"queryInstance activity", with(qi, func(r *QueryInstanceRequest) { r.ActivityName = long(21) }), "activity"},

		{"refreshInstance ok", ri, ""},
		{"refreshInstance 17 digits ok", with(ri, func(r *RefreshInstanceRequest) { r.ExpireTime = "20221124023618256" }), ""},
		{"refreshInstance unknown scene ok", with(ri, func(r *RefreshInstanceRequest) { r.Scene = "SOMETHING_NEW" }), ""},
		{"refreshInstance scene missing", with(ri, func(r *RefreshInstanceRequest) { r.Scene = "" }), "scene"},
		{"refreshInstance scene 65", with(ri, func(r *RefreshInstanceRequest) { r.Scene = long(65) }), "scene"},
		{"refreshInstance orderId missing", with(ri, func(r *RefreshInstanceRequest) { r.OrderID = "" }), "orderId"},
		{"refreshInstance orderLineId 65", with(ri, func(r *RefreshInstanceRequest) { r.OrderLineID = long(65) }), "orderLineId"},
		{"refreshInstance instanceId missing", with(ri, func(r *RefreshInstanceRequest) { r.InstanceID = "" }), "instanceId"},
		{"refreshInstance productId 65", with(ri, func(r *RefreshInstanceRequest) { r.ProductID = long(65) }), "productId"},
		{"refreshInstance expireTime missing", with(ri, func(r *RefreshInstanceRequest) { r.ExpireTime = "" }), "expireTime"},
		{"refreshInstance expireTime bad", with(ri, func(r *RefreshInstanceRequest) { r.ExpireTime = "20241301000000" }), "expireTime"},
		{"refreshInstance expireTime 15", with(ri, func(r *RefreshInstanceRequest) { r.ExpireTime = "202401010000001" }), "expireTime"},

		{"updateInstanceStatus ok", us, ""},
		{"updateInstanceStatus instanceId 65", with(us, func(r *UpdateInstanceStatusRequest) { r.InstanceID = long(65) }), "instanceId"},
		{"updateInstanceStatus status missing", with(us, func(r *UpdateInstanceStatusRequest) { r.Status = "" }), "status"},
		{"updateInstanceStatus status bad", with(us, func(r *UpdateInstanceStatusRequest) { r.Status = "NORMAL" }), "status"},
		{"updateInstanceStatus status lower", with(us, func(r *UpdateInstanceStatusRequest) { r.Status = "freeze" }), "status"},

		{"releaseInstance ok", rl, ""},
		{"releaseInstance instanceId missing", with(rl, func(r *ReleaseInstanceRequest) { r.InstanceID = "" }), "instanceId"},
		{"releaseInstance orderId 65", with(rl, func(r *ReleaseInstanceRequest) { r.OrderID = long(65) }), "orderId"},
		{"releaseInstance orderLineId 65", with(rl, func(r *ReleaseInstanceRequest) { r.OrderLineID = long(65) }), "orderLineId"},

		{"upgradeInstance ok", up, ""},
		{"upgradeInstance instanceId missing", with(up, func(r *UpgradeInstanceRequest) { r.InstanceID = "" }), "instanceId"},
		{"upgradeInstance orderId missing", with(up, func(r *UpgradeInstanceRequest) { r.OrderID = "" }), "orderId"},
		{"upgradeInstance orderLineId missing", with(up, func(r *UpgradeInstanceRequest) { r.OrderLineID = "" }), "orderLineId"},
		{"upgradeInstance orderLineId 65", with(up, func(r *UpgradeInstanceRequest) { r.OrderLineID = long(65) }), "orderLineId"},

		{"changeInstanceCheck ok", cc, ""},
		{"changeInstanceCheck instanceId missing", with(cc, func(r *ChangeInstanceCheckRequest) { r.InstanceID = "" }), "instanceId"},
		{"changeInstanceCheck productInfo missing", with(cc, func(r *ChangeInstanceCheckRequest) { r.ProductInfo = nil }), "productInfo"},
		{"changeInstanceCheck productId 65", with(cc, func(r *ChangeInstanceCheckRequest) { r.ProductInfo = &ProductInfo{ProductID: FlexString(long(65))} }), "productInfo.productId"},
	})
}

func TestQueryInstanceIDs(t *testing.T) {
	got := QueryInstanceRequest{InstanceID: " a, b,,c ,"}.InstanceIDs()
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := (QueryInstanceRequest{}).InstanceIDs(); len(got) != 0 {
		t.Fatalf("empty: got %q", got)
	}
}

func TestRefreshExpiry(t *testing.T) {
	for s, want := range map[string]time.Time{
		"20221124023618256": time.Date(2022, 11, 24, 2, 36, 18, 256e6, time.UTC),
		"20221124023618":    time.Date(2022, 11, 24, 2, 36, 18, 0, time.UTC),
	} {
		got, err := RefreshInstanceRequest{ExpireTime: s}.Expiry()
		if err != nil || !got.Equal(want) {
			t.Errorf("Expiry(%s) = %v, %v; want %v", s, got, err, want)
		}
	}
}

// TestMarshalV2RequestOrder checks that a request marshals to KooGallery's
// own byte order: the body of the saas-v2.md §2.5 signature vector.
func TestMarshalV2RequestOrder(t *testing.T) {
	r := NewInstanceRequest{ActivityName: ActivityNewInstance, BusinessID: "87b94795-0603-4e24-8ae5-69420d60e3c8",
		OrderID: "CS2211181819B4LVS", OrderLineID: "CS2211181819B4LVS-000001", TestFlag: "1"}
	got, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestMarshalResponses(t *testing.T) {
	uv, err := ParseDecimal("12.5")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"newInstance example", NewInstanceResponse{Response{CodeSuccess, "success"}, "03pf80c2bae96vc49b80b917bea776d7"},
			`{"resultCode":"000000","resultMsg":"success","instanceId":"03pf80c2bae96vc49b80b917bea776d7"}`},
		{"Body-Sign vector body", NewInstanceResponse{Response{CodeSuccess, "success"}, "inst-001"},
			`{"resultCode":"000000","resultMsg":"success","instanceId":"inst-001"}`},
		{"plain response", Response{ResultCode: CodeSuccess, ResultMsg: "success."}, `{"resultCode":"000000","resultMsg":"success."}`},
		{"queryInstance example", QueryInstanceResponse{Response: Response{CodeSuccess, "success."}, Info: []InstanceInfo{{
			InstanceID: "10e758d0-31ad-4c4b-8f1b-81d03469a10e",
			AppInfo: &AppInfo{FrontEndURL: "https://app.example.com", AdminURL: "https://admin.example.com",
				UserName: "admin@example.com", Password: "********", Memo: "中文"},
			UsageInfo: []UsageInfo{{UsageValue: uv, StatisticalTime: "20240101010000000"}},
		}}}, `{"resultCode":"000000","resultMsg":"success.","info":[{"instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e",` +
			`"appInfo":{"frontEndUrl":"https://app.example.com","adminUrl":"https://admin.example.com",` +
			`"userName":"admin@example.com","password":"********","memo":"\u4e2d\u6587"},` +
			`"usageInfo":[{"usageValue":12.5,"statisticalTime":"20240101010000000"}]}]}`},
		{"V1 newInstance", V1NewInstanceResponse{Response: Response{CodeSuccess, "success."}, EncryptType: "1", InstanceID: "i",
			AppInfo: &AppInfo{FrontEndURL: "https://a"}},
			`{"resultCode":"000000","resultMsg":"success.","encryptType":"1","instanceId":"i","appInfo":{"frontEndUrl":"https://a"}}`},
		{"error response", ErrorResponse(&FieldError{"orderId", "missing"}),
			`{"resultCode":"000002","resultMsg":"invalid parameter orderId: missing"}`},
		{"new response default msg", NewResponse(CodeInstanceNotFound, ""), `{"resultCode":"000003","resultMsg":"instance does not exist"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestQueryInstanceResponseValidate(t *testing.T) {
	uv, _ := ParseDecimal("1.5")
	ok := QueryInstanceResponse{Response: Response{ResultCode: CodeSuccess}, Info: []InstanceInfo{{
		InstanceID: "i", AppInfo: &AppInfo{FrontEndURL: "https://a"},
		UsageInfo: []UsageInfo{{UsageValue: uv, StatisticalTime: "20240101010000000"}}}}}
	neg, _ := ParseDecimal("-1")
	big, _ := ParseDecimal("100000000")
	app := AppInfo{FrontEndURL: "u"}
	runValidate(t, []validateCase{
		{"ok", ok, ""},
		{"instanceId missing", with(ok, func(r *QueryInstanceResponse) { r.Info = []InstanceInfo{{}} }), "info[0].instanceId"},
		{"frontEndUrl missing", with(ok, func(r *QueryInstanceResponse) {
			r.Info = []InstanceInfo{{InstanceID: "i", AppInfo: &AppInfo{}}}
		}), "info[0].appInfo.frontEndUrl"},
		{"statisticalTime bad", with(ok, func(r *QueryInstanceResponse) {
			r.Info = []InstanceInfo{{InstanceID: "i", UsageInfo: []UsageInfo{{StatisticalTime: "20240101010000"}}}}
		}), "info[0].usageInfo[0].statisticalTime"},
		{"statisticalTime missing", with(ok, func(r *QueryInstanceResponse) {
			r.Info = []InstanceInfo{{InstanceID: "i", UsageInfo: []UsageInfo{{}}}}
		}), "info[0].usageInfo[0].statisticalTime"},
		{"usageValue negative", UsageInfo{UsageValue: neg, StatisticalTime: "20240101010000000"}, "usageInfo.usageValue"},
		{"usageValue too big", UsageInfo{UsageValue: big, StatisticalTime: "20240101010000000"}, "usageInfo.usageValue"},
		{"dashboardUrl 513", UsageInfo{StatisticalTime: "20240101010000000", DashboardURL: long(513)}, "usageInfo.dashboardUrl"},
		{"relatedInstanceId 65", UsageInfo{StatisticalTime: "20240101010000000", RelatedInstanceID: long(65)}, "usageInfo.relatedInstanceId"},
		{"encryptType 4", with(ok, func(r *QueryInstanceResponse) { r.EncryptType = "1234" }), "encryptType"},
		{"app ok at limits", AppInfo{FrontEndURL: long(512), AdminURL: long(512), UserName: long(128), Password: long(128), Memo: long(1024)}, ""},
		{"app frontEndUrl 513", with(app, func(a *AppInfo) { a.FrontEndURL = long(513) }), "appInfo.frontEndUrl"},
		{"app adminUrl 513", with(app, func(a *AppInfo) { a.AdminURL = long(513) }), "appInfo.adminUrl"},
		{"app userName 129", with(app, func(a *AppInfo) { a.UserName = long(129) }), "appInfo.userName"},
		{"app password 129", with(app, func(a *AppInfo) { a.Password = long(129) }), "appInfo.password"},
		{"app memo 1025", with(app, func(a *AppInfo) { a.Memo = long(1025) }), "appInfo.memo"},
		{"instance info direct", InstanceInfo{}, "info.instanceId"},
	})
}

func TestNewInstanceResponseValidate(t *testing.T) {
	ok := NewInstanceResponse{Response: Response{ResultCode: CodeSuccess}, InstanceID: "i"}
	v1 := V1NewInstanceResponse{Response: Response{ResultCode: CodeSuccess}, InstanceID: "i", EncryptType: "1", AppInfo: &AppInfo{FrontEndURL: "u"}}
	runValidate(t, []validateCase{
		{"ok", ok, ""},
		{"processing needs id", with(ok, func(r *NewInstanceResponse) { r.ResultCode, r.InstanceID = CodeProcessing, "" }), "instanceId"},
		{"failure needs no id", with(ok, func(r *NewInstanceResponse) { r.ResultCode, r.InstanceID = CodeSoldOut, "" }), ""},
		{"id 65", with(ok, func(r *NewInstanceResponse) { r.InstanceID = long(65) }), "instanceId"},
		{"code missing", with(ok, func(r *NewInstanceResponse) { r.ResultCode = "" }), "resultCode"},
		{"msg 256", with(ok, func(r *NewInstanceResponse) { r.ResultMsg = long(256) }), "resultMsg"},
		{"v1 ok", v1, ""},
		{"v1 frontEndUrl missing", with(v1, func(r *V1NewInstanceResponse) { r.AppInfo = &AppInfo{} }), "appInfo.frontEndUrl"},
		{"v1 encryptType 4", with(v1, func(r *V1NewInstanceResponse) { r.EncryptType = "1234" }), "encryptType"},
		{"v1 id missing", with(v1, func(r *V1NewInstanceResponse) { r.InstanceID = "" }), "instanceId"},
	})
	r, err := DecodeV2([]byte("\xef\xbb\xbf" + v2Seeds[0]))
	if err != nil || r.Activity() != ActivityNewInstance {
		t.Fatalf("BOM body: %v, %v", r, err)
	}
}
