package protocol

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeLicenseExamples(t *testing.T) {
	tests := []struct {
		name string
		body string
		want V2Request
		test bool
	}{
		{
			name: "refreshLicenseCode example",
			body: `{"activity":"refreshLicenseCode","expireTime":"20230523201932","license":"******","orderId":"******","orderLineId":"******","productId":"******","scene":"RENEWAL","testFlag":"1"}`,
			want: RefreshLicenseCodeRequest{ActivityName: "refreshLicenseCode", ExpireTime: "20230523201932", License: "******",
				OrderID: "******", OrderLineID: "******", ProductID: "******", Scene: "RENEWAL", TestFlag: "1"},
			test: true,
		},
		{
			name: "releaseLicenseCode (signature example body)",
			body: `{"activity":"releaseLicenseCode","license":"PL0000000001","testFlag":"1"}`,
			want: ReleaseLicenseCodeRequest{ActivityName: "releaseLicenseCode", License: "PL0000000001", TestFlag: "1"},
			test: true,
		},
		{
			name: "updateLicenseCodeStatus",
			body: `{"activity":"updateLicenseCodeStatus","license":"PL1","status":"UNFREEZE","testFlag":"0"}`,
			want: UpdateLicenseCodeStatusRequest{ActivityName: "updateLicenseCodeStatus", License: "PL1", Status: "UNFREEZE", TestFlag: "0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeLicense([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
			if got.IsTest() != tc.test || got.Activity() != tc.want.Activity() {
				t.Fatalf("IsTest/Activity = %v/%q", got.IsTest(), got.Activity())
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, body := range []string{`{"activity":"newInstance"}`, `{}`, `{`, `[]`} {
		if r, err := DecodeLicense([]byte(body)); err == nil || r != nil || ResultCodeFor(err) != CodeInvalidParam {
			t.Errorf("DecodeLicense(%s) = %v, %v", body, r, err)
		}
	}
	exp, err := RefreshLicenseCodeRequest{ExpireTime: "20230523201932"}.Expiry()
	if err != nil || !exp.Equal(time.Date(2023, 5, 23, 20, 19, 32, 0, time.UTC)) {
		t.Errorf("Expiry = %v, %v", exp, err)
	}
}

func TestLicenseValidate(t *testing.T) {
	rf := RefreshLicenseCodeRequest{ActivityName: "refreshLicenseCode", ExpireTime: "20230523201932", License: "L", OrderID: "o",
		OrderLineID: "l", Scene: SceneUnsubscribeRenewalPeriod}
	us := UpdateLicenseCodeStatusRequest{ActivityName: "updateLicenseCodeStatus", License: "L", Status: "FREEZE"}
	rl := ReleaseLicenseCodeRequest{ActivityName: "releaseLicenseCode", License: "L"}
	ga := GetLicenseAsyncRequest{ActivityName: "getLicenseAsync", InstanceID: "i", EffectiveTime: "2023-10-27 10:30:15 z", EventID: "e"}
	on := OrderNotifyRequest{ActivityName: "orderNotify", OrderID: "o", OrderLineID: "l", TestFlag: "0"}
	runValidate(t, []validateCase{
		{"refresh ok", rf, ""},
		{"refresh activity wrong", with(rf, func(r *RefreshLicenseCodeRequest) { r.ActivityName = "refreshInstance" }), "activity"},
		{"refresh scene missing", with(rf, func(r *RefreshLicenseCodeRequest) { r.Scene = "" }), "scene"},
		{"refresh scene 65", with(rf, func(r *RefreshLicenseCodeRequest) { r.Scene = long(65) }), "scene"},
		{"refresh orderId missing", with(rf, func(r *RefreshLicenseCodeRequest) { r.OrderID = "" }), "orderId"},
		{"refresh orderLineId 65", with(rf, func(r *RefreshLicenseCodeRequest) { r.OrderLineID = long(65) }), "orderLineId"},
		{"refresh license missing", with(rf, func(r *RefreshLicenseCodeRequest) { r.License = "" }), "license"},
		{"refresh license 65", with(rf, func(r *RefreshLicenseCodeRequest) { r.License = long(65) }), "license"},
		{"refresh productId 65", with(rf, func(r *RefreshLicenseCodeRequest) { r.ProductID = long(65) }), "productId"},
		{"refresh expireTime missing", with(rf, func(r *RefreshLicenseCodeRequest) { r.ExpireTime = "" }), "expireTime"},
		{"refresh expireTime bad", with(rf, func(r *RefreshLicenseCodeRequest) { r.ExpireTime = "2023-05-23" }), "expireTime"},
		{"refresh testFlag 3", with(rf, func(r *RefreshLicenseCodeRequest) { r.TestFlag = "abc" }), "testFlag"},

		{"status ok", us, ""},
		{"status activity 33", with(us, func(r *UpdateLicenseCodeStatusRequest) { r.ActivityName = long(33) }), "activity"},
		{"status license missing", with(us, func(r *UpdateLicenseCodeStatusRequest) { r.License = "" }), "license"},
		{"status missing", with(us, func(r *UpdateLicenseCodeStatusRequest) { r.Status = "" }), "status"},
		{"status bad", with(us, func(r *UpdateLicenseCodeStatusRequest) { r.Status = "ACTIVE" }), "status"},

		{"release ok", rl, ""},
		{"release license missing", with(rl, func(r *ReleaseLicenseCodeRequest) { r.License = "" }), "license"},
		{"release orderId 65", with(rl, func(r *ReleaseLicenseCodeRequest) { r.OrderID = long(65) }), "orderId"},
		{"release orderLineId 65", with(rl, func(r *ReleaseLicenseCodeRequest) { r.OrderLineID = long(65) }), "orderLineId"},

		{"async ok", ga, ""},
		{"async 14-digit times ok", with(ga, func(r *GetLicenseAsyncRequest) { r.EffectiveTime, r.ExpireTime = "20231027103015", "20241027103015" }), ""},
		{"async instanceId missing", with(ga, func(r *GetLicenseAsyncRequest) { r.InstanceID = "" }), "instanceId"},
		{"async effectiveTime missing", with(ga, func(r *GetLicenseAsyncRequest) { r.EffectiveTime = "" }), "effectiveTime"},
		{"async effectiveTime bad", with(ga, func(r *GetLicenseAsyncRequest) { r.EffectiveTime = "soon" }), "effectiveTime"},
		{"async effectiveTime 33", with(ga, func(r *GetLicenseAsyncRequest) { r.EffectiveTime = long(33) }), "effectiveTime"},
		{"async expireTime bad", with(ga, func(r *GetLicenseAsyncRequest) { r.ExpireTime = "2023-02-30 00:00:00 z" }), "expireTime"},
		{"async eventId missing", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "" }), "eventId"},
		{"async eventId 65", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = long(65) }), "eventId"},
		{"async fingerprint 1025", with(ga, func(r *GetLicenseAsyncRequest) { r.DeviceFingerprint = long(1025) }), "deviceFingerprint"},
		// The eventId is the upload's path segment (§C.7): what the upload
		// could never use is refused up front.
		{"async eventId with a space", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "ev 1" }), "eventId"},
		{"async eventId not ASCII", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "事件-1" }), "eventId"},
		{"async eventId with a slash", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "a/b" }), "eventId"},
		{"async eventId with a backslash", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = `a\b` }), "eventId"},
		{"async eventId dot", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "." }), "eventId"},
		{"async eventId dot dot", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = ".." }), "eventId"},
		{"async eventId blank", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "  " }), "eventId"},
		{"async eventId with dots and symbols ok", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = "EV.2023-10_27~x:y" }), ""},
		{"async eventId 64 ok", with(ga, func(r *GetLicenseAsyncRequest) { r.EventID = long(64) }), ""},
		{"async expireTime before effectiveTime", with(ga, func(r *GetLicenseAsyncRequest) { r.ExpireTime = "2023-10-27 10:30:14 z" }), "expireTime"},
		{"async expireTime equal to effectiveTime ok", with(ga, func(r *GetLicenseAsyncRequest) { r.ExpireTime = "2023-10-27 10:30:15 z" }), ""},
		{"async expireTime before in the 14-digit form", with(ga, func(r *GetLicenseAsyncRequest) { r.ExpireTime = "20231026103015" }), "expireTime"},

		{"notify ok", on, ""},
		{"notify orderId missing", with(on, func(r *OrderNotifyRequest) { r.OrderID = "" }), "orderId"},
		{"notify orderLineId 65", with(on, func(r *OrderNotifyRequest) { r.OrderLineID = long(65) }), "orderLineId"},
		{"notify testFlag 1 ok", with(on, func(r *OrderNotifyRequest) { r.TestFlag = "1" }), ""},
		// testFlag is mandatory on the official orderNotify page (§F Addenda).
		{"notify testFlag missing", with(on, func(r *OrderNotifyRequest) { r.TestFlag = "" }), "testFlag"},
		{"notify testFlag blank", with(on, func(r *OrderNotifyRequest) { r.TestFlag = " " }), "testFlag"},
		{"notify testFlag 2", with(on, func(r *OrderNotifyRequest) { r.TestFlag = "2" }), "testFlag"},
		{"notify testFlag 01", with(on, func(r *OrderNotifyRequest) { r.TestFlag = "01" }), "testFlag"},
	})
	eff, err := ga.Effective()
	if err != nil || !eff.Equal(time.Date(2023, 10, 27, 10, 30, 15, 0, time.UTC)) {
		t.Errorf("Effective = %v, %v", eff, err)
	}
	if _, ok, err := ga.Expiry(); ok || err != nil {
		t.Errorf("Expiry absent = %v, %v", ok, err)
	}
	if exp, ok, err := with(ga, func(r *GetLicenseAsyncRequest) { r.ExpireTime = "2024-10-27 10:30:15 z" }).Expiry(); !ok || err != nil || exp.Year() != 2024 {
		t.Errorf("Expiry = %v, %v, %v", exp, ok, err)
	}
}

// TestCheckEventID: the one eventId check getLicenseAsync and the upload
// client share names the field and what is wrong.
func TestCheckEventID(t *testing.T) {
	tests := []struct{ id, problem string }{
		{"EV-20231027-0001", ""},
		{"a.b_c~d:e@f", ""},
		{long(MaxEventID), ""},
		{"", "missing"},
		{" ", "missing"},
		{long(MaxEventID + 1), "longer than 64 characters"},
		{"ev 1", "not printable ASCII"},
		{"ev\t1", "not printable ASCII"},
		{"事件-1", "not printable ASCII"},
		{"ev\x7f", "not printable ASCII"},
		{"a/b", "not one path segment"},
		{`a\b`, "not one path segment"},
		{".", "not one path segment"},
		{"..", "not one path segment"},
	}
	for _, tt := range tests {
		err := CheckEventID(tt.id)
		if tt.problem == "" {
			if err != nil {
				t.Errorf("CheckEventID(%q) = %v, want nil", tt.id, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "eventId" || !strings.HasPrefix(fe.Problem, tt.problem) {
			t.Errorf("CheckEventID(%q) = %v, want eventId: %s", tt.id, err, tt.problem)
		}
		if got := (GetLicenseAsyncRequest{ActivityName: "getLicenseAsync", InstanceID: "i", EffectiveTime: "2023-10-27 10:30:15 z", EventID: tt.id}).Validate(); !errors.As(got, &fe) || fe.Field != "eventId" {
			t.Errorf("Validate with eventId %q = %v, want the same refusal", tt.id, got)
		}
	}
}

func TestDecodeLegacyLicense(t *testing.T) {
	// license-openapi.md §B.5 example parameters.
	q, _ := url.ParseQuery("activity=getLicense&businessId=b1&customerId=c1&orderId=o1&productId=p1&timeStamp=20240101120000000&authToken=dteC4joQtZG3c5cmnTIGKppEyAFsFKD58YfB5LpjlUc%3D")
	r, err := DecodeLegacyLicense(q)
	if err != nil {
		t.Fatal(err)
	}
	want := GetLicenseRequest{V1Auth: V1Auth{AuthToken: "dteC4joQtZG3c5cmnTIGKppEyAFsFKD58YfB5LpjlUc=", TimeStamp: "20240101120000000"},
		BusinessID: "b1", CustomerID: "c1", OrderID: "o1", ProductID: "p1"}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %#v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	others := map[string]V1Request{
		"activity=refreshLicense&orderId=o&instanceId=i&expireTime=20250101000000&authToken=a&timeStamp=20240101120000000": RefreshLicenseRequest{
			V1Auth: V1Auth{AuthToken: "a", TimeStamp: "20240101120000000"}, OrderID: "o", InstanceID: "i", ExpireTime: "20250101000000"},
		"activity=expireLicense&instanceId=i&authToken=a&timeStamp=20240101120000000&testFlag=1": ExpireLicenseRequest{
			V1Auth: V1Auth{AuthToken: "a", TimeStamp: "20240101120000000", TestFlag: "1"}, InstanceID: "i"},
		"activity=releaseLicense&orderId=o&instanceId=i&authToken=a&timeStamp=20240101120000000": ReleaseLicenseRequest{
			V1Auth: V1Auth{AuthToken: "a", TimeStamp: "20240101120000000"}, OrderID: "o", InstanceID: "i"},
	}
	for raw, want := range others {
		q, _ := url.ParseQuery(raw)
		got, err := DecodeLegacyLicense(q)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, %v", raw, got, err)
			continue
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	q, _ = url.ParseQuery("activity=newInstance")
	if r, err := DecodeLegacyLicense(q); err == nil || r != nil {
		t.Errorf("unknown activity: %v, %v", r, err)
	}

	gl := want
	rf := others["activity=refreshLicense&orderId=o&instanceId=i&expireTime=20250101000000&authToken=a&timeStamp=20240101120000000"].(RefreshLicenseRequest)
	ex := ExpireLicenseRequest{V1Auth: V1Auth{AuthToken: "a", TimeStamp: "20240101120000000"}, InstanceID: "i"}
	rl := ReleaseLicenseRequest{V1Auth: V1Auth{AuthToken: "a", TimeStamp: "20240101120000000"}, OrderID: "o", InstanceID: "i"}
	runValidate(t, []validateCase{
		{"get authToken missing", with(gl, func(r *GetLicenseRequest) { r.AuthToken = "" }), "authToken"},
		{"get timeStamp bad", with(gl, func(r *GetLicenseRequest) { r.TimeStamp = "2024" }), "timeStamp"},
		{"get customerId 101", with(gl, func(r *GetLicenseRequest) { r.CustomerID = long(101) }), "customerId"},
		{"get customerName 65", with(gl, func(r *GetLicenseRequest) { r.CustomerName = long(65) }), "customerName"},
		{"get businessId missing", with(gl, func(r *GetLicenseRequest) { r.BusinessID = "" }), "businessId"},
		{"get orderId missing", with(gl, func(r *GetLicenseRequest) { r.OrderID = "" }), "orderId"},
		{"get skuCode 65", with(gl, func(r *GetLicenseRequest) { r.SKUCode = long(65) }), "skuCode"},
		{"get productId missing", with(gl, func(r *GetLicenseRequest) { r.ProductID = "" }), "productId"},
		{"get expireTime bad", with(gl, func(r *GetLicenseRequest) { r.ExpireTime = "x" }), "expireTime"},
		{"get amount bad", with(gl, func(r *GetLicenseRequest) { r.Amount = "two" }), "amount"},
		{"refresh orderId missing", with(rf, func(r *RefreshLicenseRequest) { r.OrderID = "" }), "orderId"},
		{"refresh expireTime missing", with(rf, func(r *RefreshLicenseRequest) { r.ExpireTime = "" }), "expireTime"},
		{"refresh periodNumber bad", with(rf, func(r *RefreshLicenseRequest) { r.PeriodNumber = "x" }), "periodNumber"},
		{"expire ok", ex, ""},
		{"expire instanceId missing", with(ex, func(r *ExpireLicenseRequest) { r.InstanceID = "" }), "instanceId"},
		{"expire orderId 65", with(ex, func(r *ExpireLicenseRequest) { r.OrderID = long(65) }), "orderId"},
		{"release ok", rl, ""},
		{"release orderId missing", with(rl, func(r *ReleaseLicenseRequest) { r.OrderID = "" }), "orderId"},
		{"release instanceId 65", with(rl, func(r *ReleaseLicenseRequest) { r.InstanceID = long(65) }), "instanceId"},
	})
	out, err := Marshal(GetLicenseResponse{Response: Response{CodeSuccess, "success."}, InstanceID: "b1", License: "LIC"})
	if err != nil || string(out) != `{"resultCode":"000000","resultMsg":"success.","instanceId":"b1","license":"LIC"}` {
		t.Errorf("GetLicenseResponse = %s, %v", out, err)
	}
}
