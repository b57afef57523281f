package protocol

import (
	"reflect"
	"testing"
)

func TestKitOperation(t *testing.T) {
	tests := []struct {
		path    string
		name    string
		version int
		ok      bool
	}{
		{"/produceAPI/v2/tenantSync", "tenantSync", 2, true},
		{"/produceAPI/tenantSync", "tenantSync", 1, true},
		{"/x/produceAPI/authSync", "authSync", 1, true},
		{"/saas/produceAPI/v2/allOrgSync/", "allOrgSync", 2, true},
		{"/produceAPI/v2/applicationSync", "applicationSync", 2, true},
		{"/produceAPI/singleOrgSync", "singleOrgSync", 1, true},
		{"/produceAPI/v3/tenantSync", "", 0, false},
		{"/produceAPI/v2/unknown", "", 0, false},
		{"/produceAPI/", "", 0, false},
		{"/produceapi/tenantSync", "", 0, false},
		{"/tenantSync", "", 0, false},
		{"", "", 0, false},
	}
	for _, tc := range tests {
		name, version, ok := KitOperation(tc.path)
		if name != tc.name || version != tc.version || ok != tc.ok {
			t.Errorf("KitOperation(%q) = %q, %d, %v; want %q, %d, %v", tc.path, name, version, ok, tc.name, tc.version, tc.ok)
		}
	}
}

func boolp(b bool) *FlexBool { v := FlexBool(b); return &v }

func TestDecodeKitExamples(t *testing.T) {
	zhang := KitUser{UserName: "zhangsan", Name: "Zhang San", OrgCode: "10000", Role: "admin", Enable: boolp(true), EmployeeType: 1}
	tests := []struct {
		name string
		op   string
		body string
		want KitRequest
		test bool
	}{
		{
			name: "tenantSync V2 example",
			op:   KitTenantSync,
			body: `{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86…","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: TenantSyncRequest{InstanceID: "huaiweitest123456", OrderID: "CS1906666666ABCDE", TenantID: "68cbc86…", TenantCode: "huawei",
				Name: "huaiweitest", DomainName: "https://example.tenantaccount.com", Flag: 1, TestFlag: 0, TimeStamp: "20220413093539534"},
		},
		{
			name: "tenantSync V1 example",
			op:   KitTenantSync,
			body: `{"instanceId":"inst-0001","orderId":"CS1906666666ABCDE","tenantId":"68cbc86abc2018ab880d92f36422fa0e",
 "tenantCode":"acme","name":"Acme Ltd","domainName":"https://acme.example-idp.com",
 "flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: TenantSyncRequest{InstanceID: "inst-0001", OrderID: "CS1906666666ABCDE", TenantID: "68cbc86abc2018ab880d92f36422fa0e",
				TenantCode: "acme", Name: "Acme Ltd", DomainName: "https://acme.example-idp.com", Flag: 1, TestFlag: 0, TimeStamp: "20220413093539534"},
		},
		{
			name: "tenantSync authToken vector body, test",
			op:   KitTenantSync,
			body: `{"instanceId":"inst-0001","orderId":"CS1906666666ABCDE","tenantId":"tenant-0001","tenantCode":"acme","name":"Acme Ltd","domainName":"https://acme.example.com","flag":1,"testFlag":1,"timeStamp":"20220413093539534"}`,
			want: TenantSyncRequest{InstanceID: "inst-0001", OrderID: "CS1906666666ABCDE", TenantID: "tenant-0001", TenantCode: "acme",
				Name: "Acme Ltd", DomainName: "https://acme.example.com", Flag: 1, TestFlag: 1, TimeStamp: "20220413093539534"},
			test: true,
		},
		{
			name: "x-sign vector body: string flags",
			op:   KitTenantSync,
			body: `{"instanceId":"inst-001","tenantId":"t1","flag":"1","testFlag":"1"}`,
			want: TenantSyncRequest{InstanceID: "inst-001", TenantID: "t1", Flag: 1, TestFlag: 1},
			test: true,
		},
		{
			name: "applicationSync",
			op:   KitApplicationSync,
			body: `{"instanceId":"i","tenantId":"t","appId":"KSIDJF1234456","clientId":"c","clientSecret":"c2VjcmV0","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: ApplicationSyncRequest{InstanceID: "i", TenantID: "t", AppID: "KSIDJF1234456", ClientID: "c", ClientSecret: "c2VjcmV0",
				Flag: 1, TestFlag: 0, TimeStamp: "20220413093539534"},
		},
		{
			name: "authSync V1 example: userList string, nested extension",
			op:   KitAuthSync,
			body: `{"instanceId":"inst-0001","tenantId":"t-0001","appId":"KSIDJF1234456",
 "userList":"[{\"userName\":\"zhangsan\",\"name\":\"Zhang San\",\"orgCode\":\"10000\",\"role\":\"admin\",\"enable\":\"true\",\"extension\":{\"employeeType\":\"1\"}}]",
 "currentSyncTime":"20220413093539534","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: AuthSyncRequest{InstanceID: "inst-0001", TenantID: "t-0001", AppID: "KSIDJF1234456", UserList: KitUserList{zhang},
				CurrentSyncTime: "20220413093539534", Flag: 1, TestFlag: 0, TimeStamp: "20220413093539534"},
		},
		{
			name: "authSync array, flat fields, flag 3",
			op:   KitAuthSync,
			body: `{"instanceId":"i","tenantId":"t","appId":"a","userList":[{"userName":"zhangsan","name":"Zhang San","orgCode":"10000","role":"admin","enable":true,"employeeType":1}],"currentSyncTime":"x","flag":3,"testFlag":"1","timeStamp":"20220413093539534"}`,
			want: AuthSyncRequest{InstanceID: "i", TenantID: "t", AppID: "a", UserList: KitUserList{zhang}, CurrentSyncTime: "x",
				Flag: 3, TestFlag: 1, TimeStamp: "20220413093539534"},
			test: true,
		},
		{
			name: "authSync flat wins over extension",
			op:   KitAuthSync,
			body: `{"instanceId":"i","tenantId":"t","appId":"a","userList":[{"userName":"u","name":"n","orgCode":"o","role":"user","enable":"false","workPlace":"flat","extension":{"workPlace":"nested","entryDate":"2020-1-2","employeeType":4}}],"currentSyncTime":"x","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: AuthSyncRequest{InstanceID: "i", TenantID: "t", AppID: "a", UserList: KitUserList{{UserName: "u", Name: "n", OrgCode: "o",
				Role: "user", Enable: boolp(false), WorkPlace: "flat", EntryDate: "2020-1-2", EmployeeType: 4}},
				CurrentSyncTime: "x", Flag: 1, TestFlag: 0, TimeStamp: "20220413093539534"},
		},
		{
			name: "singleOrgSync example",
			op:   KitSingleOrgSync,
			body: `{"instanceId":"inst-0001","tenantId":"t-0001","orgCode":"10000","orgName":"R&D","parentCode":"","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: SingleOrgSyncRequest{InstanceID: "inst-0001", TenantID: "t-0001", OrgCode: "10000", OrgName: "R&D", Flag: 1, TestFlag: 0,
				TimeStamp: "20220413093539534"},
		},
		{
			name: "allOrgSync V2 array",
			op:   KitAllOrgSync,
			body: `{"instanceId":"i","tenantId":"t","orgInfoList":[{"orgCode":"1","orgName":"HQ","parentCode":""},{"orgCode":"2","orgName":"R&D","parentCode":"1"}],"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: AllOrgSyncRequest{InstanceID: "i", TenantID: "t", OrgInfoList: KitOrgList{{"1", "HQ", ""}, {"2", "R&D", "1"}},
				Flag: KitUnset, TestFlag: 0, TimeStamp: "20220413093539534"},
		},
		{
			name: "allOrgSync V2 string with flag (published example)",
			op:   KitAllOrgSync,
			body: `{"instanceId":"i","tenantId":"t","orgInfoList":"[{\"orgCode\":\"1\",\"orgName\":\"HQ\",\"parentCode\":\"\"}]","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`,
			want: AllOrgSyncRequest{InstanceID: "i", TenantID: "t", OrgInfoList: KitOrgList{{"1", "HQ", ""}}, Flag: 1, TestFlag: 0,
				TimeStamp: "20220413093539534"},
		},
		{
			name: "allOrgSync V1 orgInfo with name",
			op:   KitAllOrgSync,
			body: `{"instanceId":"i","tenantId":"t","orgInfo":"[{\"orgCode\":\"1\",\"name\":\"HQ\",\"parentCode\":\"\"},{\"orgCode\":\"2\",\"name\":\"Ops\",\"parentCode\":\"1\"}]","testFlag":1,"timeStamp":"20220413093539534"}`,
			want: AllOrgSyncRequest{InstanceID: "i", TenantID: "t", OrgInfoList: KitOrgList{{"1", "HQ", ""}, {"2", "Ops", "1"}},
				Flag: KitUnset, TestFlag: 1, TimeStamp: "20220413093539534"},
			test: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeKit(tc.op, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
			if got.Operation() != tc.op || got.IsTest() != tc.test {
				t.Fatalf("Operation/IsTest = %q/%v", got.Operation(), got.IsTest())
			}
			if tc.name == "x-sign vector body: string flags" {
				wantField(t, got.Validate(), "tenantCode")
				return
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestDecodeKitErrors(t *testing.T) {
	tests := []struct{ op, body string }{
		{"nope", `{}`},
		{KitTenantSync, `{`},
		{KitTenantSync, `"x"`},
		{KitTenantSync, `{"flag":"one"}`},
		{KitAuthSync, `{"userList":"not json"}`},
		{KitAuthSync, `{"userList":[{"enable":"maybe"}]}`},
		{KitAllOrgSync, `{"orgInfoList":{"orgCode":"1"}}`},
		{KitAllOrgSync, `{"orgInfo":5}`},
	}
	for _, tc := range tests {
		r, err := DecodeKit(tc.op, []byte(tc.body))
		if err == nil || r != nil {
			t.Errorf("DecodeKit(%s, %s) = %v, %v; want error", tc.op, tc.body, r, err)
			continue
		}
		if ResultCodeFor(err) != CodeInvalidParam {
			t.Errorf("DecodeKit(%s, %s): code %s", tc.op, tc.body, ResultCodeFor(err))
		}
	}
}

func TestKitValidate(t *testing.T) {
	ts := "20220413093539534"
	tn := TenantSyncRequest{TenantID: "t", TenantCode: "c", Name: "n", DomainName: "https://d", Flag: 1, TestFlag: 0, TimeStamp: ts}
	ap := ApplicationSyncRequest{TenantID: "t", AppID: "a", ClientID: "c", ClientSecret: "s", Flag: 0, TestFlag: 1, TimeStamp: ts}
	user := KitUser{UserName: "u", Name: "n", OrgCode: "o", Role: "user", Enable: boolp(true)}
	au := AuthSyncRequest{InstanceID: "i", TenantID: "t", AppID: "a", UserList: KitUserList{user}, CurrentSyncTime: ts, Flag: 2, TestFlag: 0, TimeStamp: ts}
	so := SingleOrgSyncRequest{InstanceID: "i", TenantID: "t", OrgCode: "1", OrgName: "HQ", Flag: 0, TestFlag: 0, TimeStamp: ts}
	ao := AllOrgSyncRequest{InstanceID: "i", TenantID: "t", OrgInfoList: KitOrgList{{"1", "HQ", ""}}, Flag: KitUnset, TestFlag: 0, TimeStamp: ts}
	many := make(KitUserList, 501)
	for i := range many {
		many[i] = user
	}
	runValidate(t, []validateCase{
		{"tenant ok", tn, ""},
		{"tenant empty instance/order ok", with(tn, func(r *TenantSyncRequest) { r.InstanceID, r.OrderID = "", "" }), ""},
		{"tenant instanceId 65", with(tn, func(r *TenantSyncRequest) { r.InstanceID = long(65) }), "instanceId"},
		{"tenant orderId 65", with(tn, func(r *TenantSyncRequest) { r.OrderID = long(65) }), "orderId"},
		{"tenant tenantId missing", with(tn, func(r *TenantSyncRequest) { r.TenantID = "" }), "tenantId"},
		{"tenant tenantId 65", with(tn, func(r *TenantSyncRequest) { r.TenantID = long(65) }), "tenantId"},
		{"tenant tenantCode missing", with(tn, func(r *TenantSyncRequest) { r.TenantCode = "" }), "tenantCode"},
		{"tenant name 256", with(tn, func(r *TenantSyncRequest) { r.Name = long(256) }), "name"},
		{"tenant domainName missing", with(tn, func(r *TenantSyncRequest) { r.DomainName = "" }), "domainName"},
		{"tenant domainName 256", with(tn, func(r *TenantSyncRequest) { r.DomainName = long(256) }), "domainName"},
		{"tenant flag missing", with(tn, func(r *TenantSyncRequest) { r.Flag = KitUnset }), "flag"},
		{"tenant flag 3", with(tn, func(r *TenantSyncRequest) { r.Flag = 3 }), "flag"},
		{"tenant testFlag missing", with(tn, func(r *TenantSyncRequest) { r.TestFlag = KitUnset }), "testFlag"},
		{"tenant testFlag 2", with(tn, func(r *TenantSyncRequest) { r.TestFlag = 2 }), "testFlag"},
		{"tenant timeStamp missing", with(tn, func(r *TenantSyncRequest) { r.TimeStamp = "" }), "timeStamp"},
		{"tenant timeStamp 14 digits", with(tn, func(r *TenantSyncRequest) { r.TimeStamp = "20220413093539" }), "timeStamp"},

		{"app ok", ap, ""},
		{"app appId missing", with(ap, func(r *ApplicationSyncRequest) { r.AppID = "" }), "appId"},
		{"app clientId 65", with(ap, func(r *ApplicationSyncRequest) { r.ClientID = long(65) }), "clientId"},
		{"app delete without client ok", with(ap, func(r *ApplicationSyncRequest) { r.ClientID, r.ClientSecret = "", "" }), ""},
		{"app add clientSecret missing", with(ap, func(r *ApplicationSyncRequest) { r.Flag, r.ClientSecret = 1, "" }), "clientSecret"},
		{"app modify clientId missing", with(ap, func(r *ApplicationSyncRequest) { r.Flag, r.ClientID = 2, "" }), "clientId"},
		{"app clientSecret 4097", with(ap, func(r *ApplicationSyncRequest) { r.ClientSecret = long(4097) }), "clientSecret"},
		{"app flag -2", with(ap, func(r *ApplicationSyncRequest) { r.Flag = -2 }), "flag"},

		{"org delete without name ok", with(so, func(r *SingleOrgSyncRequest) { r.OrgName = "" }), ""},
		{"org add without name", with(so, func(r *SingleOrgSyncRequest) { r.Flag, r.OrgName = 1, "" }), "orgName"},
		{"org own parent", with(so, func(r *SingleOrgSyncRequest) { r.Flag, r.ParentCode = 1, "1" }), "parentCode"},
		{"org empty instanceId ok", with(so, func(r *SingleOrgSyncRequest) { r.InstanceID = "" }), ""},

		{"auth ok", au, ""},
		{"auth 500 users ok", with(au, func(r *AuthSyncRequest) { r.UserList = many[:500] }), ""},
		{"auth 501 users", with(au, func(r *AuthSyncRequest) { r.UserList = many }), "userList"},
		{"auth userList missing", with(au, func(r *AuthSyncRequest) { r.UserList = nil }), "userList"},
		{"auth empty list ok", with(au, func(r *AuthSyncRequest) { r.UserList = KitUserList{} }), ""},
		{"auth empty instanceId ok (test account)", with(au, func(r *AuthSyncRequest) { r.InstanceID = "" }), ""},
		{"auth instanceId 65", with(au, func(r *AuthSyncRequest) { r.InstanceID = long(65) }), "instanceId"},
		{"auth delete by userName ok", with(au, func(r *AuthSyncRequest) {
			r.Flag, r.UserList = KitFlagDelete, KitUserList{{UserName: "u"}}
		}), ""},
		{"auth revoke by userName ok", with(au, func(r *AuthSyncRequest) {
			r.Flag, r.UserList = KitFlagRevoke, KitUserList{{UserName: "u"}}
		}), ""},
		{"auth revoke without userName", with(au, func(r *AuthSyncRequest) {
			r.Flag, r.UserList = KitFlagRevoke, KitUserList{{Name: "n"}}
		}), "userList[0].userName"},
		{"auth add without name", with(au, func(r *AuthSyncRequest) {
			r.Flag, r.UserList = KitFlagAdd, KitUserList{{UserName: "u"}}
		}), "userList[0].name"},
		{"auth appId 65", with(au, func(r *AuthSyncRequest) { r.AppID = long(65) }), "appId"},
		{"auth user userName missing", with(au, func(r *AuthSyncRequest) {
			r.UserList = KitUserList{user, with(user, func(u *KitUser) { u.UserName = "" })}
		}), "userList[1].userName"},
		{"auth user name 129", with(au, func(r *AuthSyncRequest) {
			r.UserList = KitUserList{with(user, func(u *KitUser) { u.Name = long(129) })}
		}), "userList[0].name"},
		{"auth user orgCode missing", with(au, func(r *AuthSyncRequest) { r.UserList = KitUserList{with(user, func(u *KitUser) { u.OrgCode = "" })} }), "userList[0].orgCode"},
		{"auth user role bad", with(au, func(r *AuthSyncRequest) { r.UserList = KitUserList{with(user, func(u *KitUser) { u.Role = "root" })} }), "userList[0].role"},
		{"auth user enable missing", with(au, func(r *AuthSyncRequest) { r.UserList = KitUserList{with(user, func(u *KitUser) { u.Enable = nil })} }), "userList[0].enable"},
		{"auth user employeeType 5", with(au, func(r *AuthSyncRequest) {
			r.UserList = KitUserList{with(user, func(u *KitUser) { u.EmployeeType = 5 })}
		}), "userList[0].employeeType"},
		{"auth user email 257", with(au, func(r *AuthSyncRequest) {
			r.UserList = KitUserList{with(user, func(u *KitUser) { u.Email = long(257) })}
		}), "userList[0].email"},
		{"auth currentSyncTime missing", with(au, func(r *AuthSyncRequest) { r.CurrentSyncTime = "" }), "currentSyncTime"},
		{"auth flag 4", with(au, func(r *AuthSyncRequest) { r.Flag = 4 }), "flag"},
		{"auth testFlag missing", with(au, func(r *AuthSyncRequest) { r.TestFlag = KitUnset }), "testFlag"},
		{"user direct", with(user, func(u *KitUser) { u.Position = long(129) }), "user.position"},

		{"single ok", so, ""},
		{"single orgCode missing", with(so, func(r *SingleOrgSyncRequest) { r.OrgCode = "" }), "orgCode"},
		{"single orgName 129", with(so, func(r *SingleOrgSyncRequest) { r.OrgName = long(129) }), "orgName"},
		{"single orgName 128 runes ok", with(so, func(r *SingleOrgSyncRequest) { r.OrgName = repeatRune('部', 128) }), ""},
		{"single parentCode 65", with(so, func(r *SingleOrgSyncRequest) { r.ParentCode = long(65) }), "parentCode"},
		{"single flag missing", with(so, func(r *SingleOrgSyncRequest) { r.Flag = KitUnset }), "flag"},

		{"all ok", ao, ""},
		{"all V1 orgInfo ok", with(ao, func(r *AllOrgSyncRequest) { r.OrgInfo, r.OrgInfoList = r.OrgInfoList, nil }), ""},
		{"all empty instance ok (test-account flow)", with(ao, func(r *AllOrgSyncRequest) { r.InstanceID = "" }), ""},
		{"all instanceId 65", with(ao, func(r *AllOrgSyncRequest) { r.InstanceID = long(65) }), "instanceId"},
		{"all list missing", with(ao, func(r *AllOrgSyncRequest) { r.OrgInfoList = nil }), "orgInfoList"},
		{"all org orgName missing", with(ao, func(r *AllOrgSyncRequest) { r.OrgInfoList = KitOrgList{{OrgCode: "1"}} }), "orgInfoList[0].orgName"},
		{"all org orgCode 65", with(ao, func(r *AllOrgSyncRequest) { r.OrgInfoList = KitOrgList{{OrgCode: long(65), OrgName: "x"}} }), "orgInfoList[0].orgCode"},
		{"all flag 7", with(ao, func(r *AllOrgSyncRequest) { r.Flag = 7 }), "flag"},
		{"all timeStamp bad", with(ao, func(r *AllOrgSyncRequest) { r.TimeStamp = "20221313093539534" }), "timeStamp"},
	})
	if tm, err := tn.Time(); err != nil || FormatKitTime(tm) != ts {
		t.Errorf("Time = %v, %v", tm, err)
	}
	if !user.Enabled() || (KitUser{}).Enabled() {
		t.Error("Enabled")
	}
}

func repeatRune(r rune, n int) string {
	rs := make([]rune, n)
	for i := range rs {
		rs[i] = r
	}
	return string(rs)
}
