package protocol

import (
	"encoding/base64"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestDecodeV1Examples(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  V1Request
		field string // Validate result
	}{
		{
			// saas-v1-joint-login.md §A.2 canonical string (+ its authToken); it
			// carries no skuCode/productId, so Validate reports skuCode.
			name:  "newInstance authToken vector",
			query: "activity=newInstance&businessId=61e834ba&customerId=68cbc86a&orderId=CS1906666666ABCDE&testFlag=1&timeStamp=20170725025113409&authToken=YOo1GGluq53mv2z%2Bk%2Ft3Yl5tM9eC1I3RubYPTVvxtmk%3D",
			want: V1NewInstanceRequest{V1Auth: V1Auth{AuthToken: "YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk=", TimeStamp: "20170725025113409", TestFlag: "1"},
				BusinessID: "61e834ba", CustomerID: "68cbc86a", OrderID: "CS1906666666ABCDE"},
			field: "skuCode",
		},
		{
			name: "newInstance full",
			query: "activity=newInstance&authToken=t&timeStamp=20170725025113409&customerId=c&customerName=n&userId=u&userName=un" +
				"&mobilePhone=A1b2C3d4E5f6G7h8XKPcuk44623skZ2ACEboPA%3D%3D&email=e&businessId=b&orderId=o&skuCode=s&productId=p" +
				"&trialFlag=1&expireTime=20180725000000&chargingMode=1&amount=10&diskSize=20&bandWidth=5&periodType=year" +
				"&periodNumber=1&orderAmount=100.125&provisionType=1",
			want: V1NewInstanceRequest{V1Auth: V1Auth{AuthToken: "t", TimeStamp: "20170725025113409"}, CustomerID: "c", CustomerName: "n",
				UserID: "u", UserName: "un", MobilePhone: "A1b2C3d4E5f6G7h8XKPcuk44623skZ2ACEboPA==", Email: "e", BusinessID: "b",
				OrderID: "o", SKUCode: "s", ProductID: "p", TrialFlag: "1", ExpireTime: "20180725000000", ChargingMode: "1",
				Amount: "10", DiskSize: "20", BandWidth: "5", PeriodType: "year", PeriodNumber: "1", OrderAmount: "100.125", ProvisionType: "1"},
		},
		{
			name:  "refreshInstance (§A.9 URL shape)",
			query: "activity=refreshInstance&expireTime=20180725000000&instanceId=i1&orderId=o1&timeStamp=20170725025113409&testFlag=1&authToken=abc",
			want: V1RefreshInstanceRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409", TestFlag: "1"},
				OrderID: "o1", InstanceID: "i1", ExpireTime: "20180725000000"},
		},
		{
			name:  "refreshInstance refund",
			query: "activity=refreshInstance&expireTime=20180725000000&instanceId=i1&orderId=o1&timeStamp=20170725025113409&authToken=abc&trialToFormal=1&orderAmount=-12.5&periodType=month&periodNumber=3&productId=p",
			want: V1RefreshInstanceRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409"},
				OrderID: "o1", InstanceID: "i1", ExpireTime: "20180725000000", TrialToFormal: "1", OrderAmount: "-12.5",
				PeriodType: "month", PeriodNumber: "3", ProductID: "p"},
		},
		{
			name:  "expireInstance",
			query: "activity=expireInstance&instanceId=i1&orderId=o1&timeStamp=20170725025113409&authToken=abc",
			want:  V1ExpireInstanceRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409"}, InstanceID: "i1", OrderID: "o1"},
		},
		{
			name:  "releaseInstance",
			query: "activity=releaseInstance&instanceId=i1&orderId=o1&timeStamp=20170725025113409&authToken=abc&orderAmount=3",
			want:  V1ReleaseInstanceRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409"}, InstanceID: "i1", OrderID: "o1", OrderAmount: "3"},
		},
		{
			name:  "upgrade",
			query: "activity=upgrade&instanceId=i1&orderId=o2&skuCode=s2&productId=p2&amount=50&timeStamp=20170725025113409&authToken=abc",
			want: V1UpgradeRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409"}, InstanceID: "i1", OrderID: "o2",
				SKUCode: "s2", ProductID: "p2", Amount: "50"},
		},
		{
			name:  "instanceStatus",
			query: "activity=instanceStatus&instanceId=i1&instanceStatus=NORMAL&timeStamp=20170725025113409&authToken=abc&testFlag=0",
			want: V1InstanceStatusRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409", TestFlag: "0"},
				InstanceID: "i1", InstanceStatus: "NORMAL"},
		},
		{
			name:  "queryInstance %2C list",
			query: "activity=queryInstance&instanceId=i1%2Ci2&timeStamp=20170725025113409&authToken=abc",
			want:  V1QueryInstanceRequest{V1Auth: V1Auth{AuthToken: "abc", TimeStamp: "20170725025113409"}, InstanceID: "i1,i2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeV1(mustQuery(t, tc.query))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
			if got.Activity() != mustQuery(t, tc.query).Get("activity") {
				t.Fatalf("Activity = %q", got.Activity())
			}
			if got.IsTest() != (mustQuery(t, tc.query).Get("testFlag") == "1") {
				t.Fatalf("IsTest = %v", got.IsTest())
			}
			wantField(t, got.Validate(), tc.field)
		})
	}
}

func TestDecodeV1Errors(t *testing.T) {
	for _, raw := range []string{"", "activity=", "activity=getLicense", "activity=updateInstanceStatus", "activity=newInstance&saasExtendParams=!!!"} {
		q, _ := url.ParseQuery(raw)
		r, err := DecodeV1(q)
		if err == nil || r != nil {
			t.Errorf("DecodeV1(%q) = %v, %v; want error", raw, r, err)
			continue
		}
		if ResultCodeFor(err) != CodeInvalidParam {
			t.Errorf("DecodeV1(%q): code %s", raw, ResultCodeFor(err))
		}
	}
	q := mustQuery(t, "activity=newInstance&saasExtendParams=bm90IGpzb24%3D") // base64("not json")
	_, err := DecodeV1(q)
	wantField(t, err, "saasExtendParams")
}

func TestSaaSExtendParams(t *testing.T) {
	js := `[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"n?>","value":"中文~~"}]`
	want := []ExtendParam{{"emailDomainName", "test.xxxx.com"}, {"n?>", "中文~~"}}
	std := base64.StdEncoding.EncodeToString([]byte(js))
	if !strings.ContainsAny(std, "+/=") {
		t.Fatalf("test input %q should exercise + / =", std)
	}
	forms := map[string]string{
		"std":               std,
		"raw std":           base64.RawStdEncoding.EncodeToString([]byte(js)),
		"url":               base64.URLEncoding.EncodeToString([]byte(js)),
		"raw url":           base64.RawURLEncoding.EncodeToString([]byte(js)),
		"plus became space": strings.ReplaceAll(std, "+", " "),
		"still escaped":     url.QueryEscape(std),
	}
	for name, v := range forms {
		got, err := DecodeSaaSExtendParams(v)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, %v", name, got, err)
		}
	}
	// Through a real query string: urlEncode(base64(json)).
	q := mustQuery(t, "activity=newInstance&saasExtendParams="+url.QueryEscape(std))
	r, err := DecodeV1(q)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.(V1NewInstanceRequest).ExtendParams; !reflect.DeepEqual(got, want) {
		t.Fatalf("query: got %v", got)
	}
	// Non-string values are kept as text; an empty array is not nil.
	got, err := DecodeSaaSExtendParams(base64.StdEncoding.EncodeToString([]byte(`[{"name":"n","value":5}]`)))
	if err != nil || len(got) != 1 || got[0].Value != "5" {
		t.Errorf("numeric value: %v, %v", got, err)
	}
	got, err = DecodeSaaSExtendParams(base64.StdEncoding.EncodeToString([]byte(`[]`)))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"!!!", base64.StdEncoding.EncodeToString([]byte(`{"name":"x"}`))} {
		if _, err := DecodeSaaSExtendParams(bad); err == nil {
			t.Errorf("DecodeSaaSExtendParams(%q) succeeded", bad)
		}
	}
	enc, err := EncodeSaaSExtendParams(want)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := DecodeSaaSExtendParams(enc); err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("round trip: %v, %v", back, err)
	}
}

func TestV1Validate(t *testing.T) {
	auth := V1Auth{AuthToken: "tok", TimeStamp: "20170725025113409"}
	ni := V1NewInstanceRequest{V1Auth: auth, CustomerID: "c", BusinessID: "b", OrderID: "o", SKUCode: "s", ProductID: "p"}
	rf := V1RefreshInstanceRequest{V1Auth: auth, OrderID: "o", InstanceID: "i", ExpireTime: "20180725000000"}
	ex := V1ExpireInstanceRequest{V1Auth: auth, InstanceID: "i", OrderID: "o"}
	rl := V1ReleaseInstanceRequest{V1Auth: auth, InstanceID: "i", OrderID: "o"}
	up := V1UpgradeRequest{V1Auth: auth, InstanceID: "i", OrderID: "o", SKUCode: "s", ProductID: "p"}
	st := V1InstanceStatusRequest{V1Auth: auth, InstanceID: "i", InstanceStatus: "FREEZE"}
	qi := V1QueryInstanceRequest{V1Auth: auth, InstanceID: "a,b"}
	runValidate(t, []validateCase{
		{"new ok", ni, ""},
		{"new authToken missing", with(ni, func(r *V1NewInstanceRequest) { r.AuthToken = "" }), "authToken"},
		{"new authToken 51", with(ni, func(r *V1NewInstanceRequest) { r.AuthToken = long(51) }), "authToken"},
		{"new timeStamp missing", with(ni, func(r *V1NewInstanceRequest) { r.TimeStamp = "" }), "timeStamp"},
		{"new timeStamp 14", with(ni, func(r *V1NewInstanceRequest) { r.TimeStamp = "20170725025113" }), "timeStamp"},
		{"new customerId missing", with(ni, func(r *V1NewInstanceRequest) { r.CustomerID = "" }), "customerId"},
		{"new customerId 101", with(ni, func(r *V1NewInstanceRequest) { r.CustomerID = long(101) }), "customerId"},
		{"new customerName 65", with(ni, func(r *V1NewInstanceRequest) { r.CustomerName = long(65) }), "customerName"},
		{"new userId 65", with(ni, func(r *V1NewInstanceRequest) { r.UserID = long(65) }), "userId"},
		{"new userName 65", with(ni, func(r *V1NewInstanceRequest) { r.UserName = long(65) }), "userName"},
		{"new mobilePhone 257", with(ni, func(r *V1NewInstanceRequest) { r.MobilePhone = long(257) }), "mobilePhone"},
		{"new email 257", with(ni, func(r *V1NewInstanceRequest) { r.Email = long(257) }), "email"},
		{"new businessId missing", with(ni, func(r *V1NewInstanceRequest) { r.BusinessID = "" }), "businessId"},
		{"new orderId 65", with(ni, func(r *V1NewInstanceRequest) { r.OrderID = long(65) }), "orderId"},
		{"new skuCode missing", with(ni, func(r *V1NewInstanceRequest) { r.SKUCode = "" }), "skuCode"},
		{"new productId missing", with(ni, func(r *V1NewInstanceRequest) { r.ProductID = "" }), "productId"},
		{"new testFlag 3", with(ni, func(r *V1NewInstanceRequest) { r.TestFlag = "100" }), "testFlag"},
		{"new trialFlag 9", with(ni, func(r *V1NewInstanceRequest) { r.TrialFlag = long(9) }), "trialFlag"},
		{"new expireTime bad", with(ni, func(r *V1NewInstanceRequest) { r.ExpireTime = "2018-07-25" }), "expireTime"},
		{"new chargingMode bad", with(ni, func(r *V1NewInstanceRequest) { r.ChargingMode = "PERIOD" }), "chargingMode"},
		{"new saasExtendParams 2049", with(ni, func(r *V1NewInstanceRequest) { r.SaaSExtendParams = long(2049) }), "saasExtendParams"},
		{"new amount bad", with(ni, func(r *V1NewInstanceRequest) { r.Amount = "1.5" }), "amount"},
		{"new diskSize bad", with(ni, func(r *V1NewInstanceRequest) { r.DiskSize = "-1" }), "diskSize"},
		{"new bandWidth bad", with(ni, func(r *V1NewInstanceRequest) { r.BandWidth = "x" }), "bandWidth"},
		{"new periodType 11", with(ni, func(r *V1NewInstanceRequest) { r.PeriodType = long(11) }), "periodType"},
		{"new periodNumber bad", with(ni, func(r *V1NewInstanceRequest) { r.PeriodNumber = "one" }), "periodNumber"},
		{"new orderAmount 4 decimals", with(ni, func(r *V1NewInstanceRequest) { r.OrderAmount = "1.2345" }), "orderAmount"},
		{"new provisionType 65", with(ni, func(r *V1NewInstanceRequest) { r.ProvisionType = long(65) }), "provisionType"},

		{"refresh ok", rf, ""},
		{"refresh authToken missing", with(rf, func(r *V1RefreshInstanceRequest) { r.AuthToken = "" }), "authToken"},
		{"refresh orderId missing", with(rf, func(r *V1RefreshInstanceRequest) { r.OrderID = "" }), "orderId"},
		{"refresh instanceId 65", with(rf, func(r *V1RefreshInstanceRequest) { r.InstanceID = long(65) }), "instanceId"},
		{"refresh productId 65", with(rf, func(r *V1RefreshInstanceRequest) { r.ProductID = long(65) }), "productId"},
		{"refresh expireTime missing", with(rf, func(r *V1RefreshInstanceRequest) { r.ExpireTime = "" }), "expireTime"},
		{"refresh expireTime bad", with(rf, func(r *V1RefreshInstanceRequest) { r.ExpireTime = "20181325000000" }), "expireTime"},
		{"refresh trialToFormal 3", with(rf, func(r *V1RefreshInstanceRequest) { r.TrialToFormal = "111" }), "trialToFormal"},
		{"refresh timeStamp bad", with(rf, func(r *V1RefreshInstanceRequest) { r.TimeStamp = "x" }), "timeStamp"},
		{"refresh periodNumber 3 digits", with(rf, func(r *V1RefreshInstanceRequest) { r.PeriodNumber = "100" }), "periodNumber"},
		{"refresh orderAmount bad", with(rf, func(r *V1RefreshInstanceRequest) { r.OrderAmount = "--1" }), "orderAmount"},

		{"expire ok", ex, ""},
		{"expire instanceId missing", with(ex, func(r *V1ExpireInstanceRequest) { r.InstanceID = "" }), "instanceId"},
		{"expire orderId missing", with(ex, func(r *V1ExpireInstanceRequest) { r.OrderID = "" }), "orderId"},
		{"expire timeStamp missing", with(ex, func(r *V1ExpireInstanceRequest) { r.TimeStamp = "" }), "timeStamp"},

		{"release ok", rl, ""},
		{"release instanceId missing", with(rl, func(r *V1ReleaseInstanceRequest) { r.InstanceID = "" }), "instanceId"},
		{"release orderId 65", with(rl, func(r *V1ReleaseInstanceRequest) { r.OrderID = long(65) }), "orderId"},
		{"release orderAmount bad", with(rl, func(r *V1ReleaseInstanceRequest) { r.OrderAmount = "1,5" }), "orderAmount"},

		{"upgrade ok", up, ""},
		{"upgrade skuCode missing", with(up, func(r *V1UpgradeRequest) { r.SKUCode = "" }), "skuCode"},
		{"upgrade productId 65", with(up, func(r *V1UpgradeRequest) { r.ProductID = long(65) }), "productId"},
		{"upgrade amount bad", with(up, func(r *V1UpgradeRequest) { r.Amount = "ten" }), "amount"},

		{"status ok", st, ""},
		{"status NORMAL ok", with(st, func(r *V1InstanceStatusRequest) { r.InstanceStatus = "NORMAL" }), ""},
		{"status missing", with(st, func(r *V1InstanceStatusRequest) { r.InstanceStatus = "" }), "instanceStatus"},
		{"status UNFREEZE is V2 only", with(st, func(r *V1InstanceStatusRequest) { r.InstanceStatus = "UNFREEZE" }), "instanceStatus"},

		{"query ok", qi, ""},
		{"query missing", with(qi, func(r *V1QueryInstanceRequest) { r.InstanceID = "" }), "instanceId"},
		{"query 101", with(qi, func(r *V1QueryInstanceRequest) { r.InstanceID = strings.Repeat("a,", 101) }), "instanceId"},
	})
	if got := (V1QueryInstanceRequest{InstanceID: "a,,b "}).InstanceIDs(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("InstanceIDs = %q", got)
	}
	if !(V1NewInstanceRequest{TrialFlag: "1"}).IsTrial() {
		t.Error("IsTrial")
	}
	if tm, err := auth.Time(); err != nil || FormatTime17(tm) != auth.TimeStamp {
		t.Errorf("Time = %v, %v", tm, err)
	}
}
