package mask

import (
	"strings"
	"testing"
)

func TestMaskJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "ids stay, order kept by name",
			in:   `{"orderLineId":"L-1","activity":"newInstance","orderId":"CS2211181819B4LVS","testFlag":"1"}`,
			want: `{"activity":"newInstance","orderId":"CS2211181819B4LVS","orderLineId":"L-1","testFlag":"1"}`,
		},
		{
			name: "app info credentials",
			in:   `{"info":[{"instanceId":"i-1","appInfo":{"frontEndUrl":"https://x","userName":"admin","password":"S3cr3t!pw","memo":"\u4e2d"}}],"resultCode":"000000"}`,
			want: `{"info":[{"appInfo":{"frontEndUrl":"https://x","memo":"中","password":"******","userName":"a***"},"instanceId":"i-1"}],"resultCode":"000000"}`,
		},
		{
			name: "buyer data anywhere",
			in:   `{"buyerInfo":{"customerId":"c1","mobilePhone":"13912345678","email":"buyer@example.com"},"clientSecret":"abc","mobile":13912345678}`,
			want: `{"buyerInfo":{"customerId":"c1","email":"b***@example.com","mobilePhone":"139****5678"},"clientSecret":"******","mobile":"139****5678"}`,
		},
		{
			name: "secret object masked inside",
			in:   `{"accessToken":{"value":"tok","kind":"bearer"},"phones":["+8613912345678","12345"]}`,
			want: `{"accessToken":{"kind":"******","value":"******"},"phones":["+86****5678","****"]}`,
		},
		{
			name: "device fingerprints and licenses",
			in:   `{"activity":"getLicenseAsync","deviceFingerprint":"04:7C:16:5E:E3:5D|001B||BFEB","instanceId":"i-1","license":"LIC-CONTENT"}`,
			want: `{"activity":"getLicenseAsync","deviceFingerprint":"******","instanceId":"i-1","license":"******"}`,
		},
		{
			name: "empty values stay empty, numbers kept",
			in:   `{"password":"","usageValue":12.5000,"email":null}`,
			want: `{"email":null,"password":"","usageValue":12.5000}`,
		},
		{
			name: "JSON text in a string (authSync userList) masked inside",
			in:   `{"tenantId":"t1","userList":"[{\"userName\":\"zhangsan\",\"name\":\"张三丰\",\"mobile\":\"13912345678\",\"email\":\"zs@example.com\",\"orgCode\":\"10\"}]"}`,
			want: `{"tenantId":"t1","userList":"[{\"email\":\"z***@example.com\",\"mobile\":\"139****5678\",\"name\":\"张***\",\"orgCode\":\"10\",\"userName\":\"z***\"}]"}`,
		},
		{
			name: "a person's name in a user array",
			in:   `{"userList":[{"userName":"lisi","name":"Li Si","position":"Engineer"}]}`,
			want: `{"userList":[{"name":"L***","position":"Engineer","userName":"l***"}]}`,
		},
		{
			name: "a string that only looks like JSON stays",
			in:   `{"orgName":"[R&D] team","memo":"{not json"}`,
			want: `{"memo":"{not json","orgName":"[R&D] team"}`,
		},
		{
			name: "not JSON: masked as text",
			in:   `{"activity":"newInstance","password":"hunter2", mobile 13912345678 a@b.cn`,
			want: `{"activity":"newInstance","password":"******", mobile 139****5678 a***@b.cn`,
		},
		{
			name: "two values: masked as text",
			in:   `{"a":1} {"token":"x"}`,
			want: `{"a":1} {"token":"******"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JSON([]byte(tt.in)); got != tt.want {
				t.Errorf("JSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestMaskText: in text that is not JSON a secret's value is masked
// whole: quoted, up to its closing quote; unquoted, up to the next &. A
// device fingerprint holds commas (several MACs) and spaces (disk ids).
func TestMaskText(t *testing.T) {
	const fp = "04:7C:16:5E:E3:5D,0A:1B:2C:3D:4E:5F|WD-WX1 2345 ABC||BFEBFBFF00090672"
	tests := []struct {
		name, in, want string
	}{
		{
			name: "a fingerprint with commas in a body with a trailing comma",
			in:   `{"activity":"getLicenseAsync","deviceFingerprint":"` + fp + `","eventId":"ev-1",}`,
			want: `{"activity":"getLicenseAsync","deviceFingerprint":"******","eventId":"ev-1",}`,
		},
		{
			name: "a fingerprint with spaces, spaces around the colon",
			in:   `{deviceFingerprint : "` + fp + `" , "instanceId":"i-1"`,
			want: `{deviceFingerprint : "******" , "instanceId":"i-1"`,
		},
		{
			name: "an escaped quote inside the value",
			in:   `{"password":"a\"b, c d","x":1`,
			want: `{"password":"******","x":1`,
		},
		{
			name: "a quoted value never closed",
			in:   `{"token":"abc, def ghi`,
			want: `{"token":"******"`,
		},
		{
			name: "a license (1.0 reply) with spaces and commas",
			in:   `{"resultCode":"000000","license":"LIC 1, part 2","instanceId":"i-1"`,
			want: `{"resultCode":"000000","license":"******","instanceId":"i-1"`,
		},
		{
			name: "a license code in a query pair that does not unescape",
			in:   `license=PL0001 x,y%zz&orderId=o1`,
			want: `license=******&orderId=o1`,
		},
		{
			name: "an unquoted fingerprint up to &",
			in:   `deviceFingerprint=` + fp + `&eventId=ev-1`,
			want: `deviceFingerprint=******&eventId=ev-1`,
		},
		{
			name: "names that only contain license stay",
			in:   `{"licenseCode":"PL0001","product":"online-license",`,
			want: `{"licenseCode":"PL0001","product":"online-license",`,
		},
		{
			name: "an empty quoted value is masked alike",
			in:   `{"password":"", mobile 13912345678`,
			want: `{"password":"******", mobile 139****5678`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in)
			if got != tt.want {
				t.Errorf("Text(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			for _, part := range []string{"0A:1B", "WD-WX1", "2345 ABC", "LIC 1", "part 2", "PL0001 x", "def ghi", "a\\\"b"} {
				if strings.Contains(tt.in, part) && strings.Contains(got, part) {
					t.Errorf("Text kept %q: %s", part, got)
				}
			}
		})
	}
}

func TestMaskJSONCapsLength(t *testing.T) {
	big := `{"memo":"` + strings.Repeat("中", MaxLedgerText) + `"}`
	got := JSON([]byte(big))
	if len(got) > MaxLedgerText+64 {
		t.Fatalf("masked text is %d bytes, want about %d", len(got), MaxLedgerText)
	}
	if !strings.HasSuffix(got, "bytes)") || !strings.Contains(got, "truncated") {
		t.Fatalf("truncation not marked: ...%s", got[len(got)-40:])
	}
}

func TestPhoneAndEmail(t *testing.T) {
	cases := []struct{ in, phone, email string }{
		{"", "", ""},
		{"15905222222", "159****2222", "***"},
		{"+8613912345678", "+86****5678", "***"},
		{"6543210", "65****10", "***"},
		{"1234", "****", "***"},
		{"alice@acme.example", "ali****mple", "a***@acme.example"},
		{"张三@例子.中国", "张三****中国", "张***@例子.中国"},
		{"@x", "****", "***"},
	}
	for _, c := range cases {
		if got := Phone(c.in); got != c.phone {
			t.Errorf("Phone(%q) = %q, want %q", c.in, got, c.phone)
		}
		if got := Email(c.in); got != c.email {
			t.Errorf("Email(%q) = %q, want %q", c.in, got, c.email)
		}
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{"": "", "alice": "a***", "张三": "张***"} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskQuery(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "V1 newInstance: token, encrypted contacts and user name masked, the rest as sent",
			in:   "activity=newInstance&authToken=YOo1GGluq53mv2z%2Bk%2Ft3Yl5tM9eC1I3RubYPTVvxtmk%3D&mobilePhone=IouWulYjy103EoKyaQcQJzHjJtsR2qW9pUUNuw%3D%3D&email=jZ0s85emEWQ7So99%2B%2Bk%3D&userName=iam_user&customerName=buyer_v1&timeStamp=20170725025113409",
			want: "activity=newInstance&authToken=******&mobilePhone=Iou****uw%3D%3D&email=***&userName=i***&customerName=buyer_v1&timeStamp=20170725025113409",
		},
		{
			name: "plain contacts",
			in:   "mobilePhone=13912345678&email=buyer%40example.com&password=&x",
			want: "mobilePhone=139****5678&email=b***@example.com&password=&x",
		},
		{
			name: "a pair that does not unescape: masked as text",
			in:   "activity=q&note=13912345678%zz&token=abc",
			want: "activity=q&note=139****5678%zz&token=******",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Query(tt.in); got != tt.want {
				t.Errorf("Query(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}
