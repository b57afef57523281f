package provision

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// licenseEvent is a license.requested event for an online-license
// instance.
func licenseEvent() Event {
	return Event{
		ID: "license.requested:online:ev-1", Type: EventLicenseRequested, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Instance: Instance{ID: "inst-1", OrderID: "CS1", OrderLineID: "CS1-000001", Status: "active"},
		LicenseRequest: &LicenseRequest{
			Kind: "online", EventID: "ev-1", EffectiveTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			ExpireTime: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), DeviceFingerprint: "04:7C:16:5E:E3:5D|001B||BFEBFBFF",
		},
	}
}

func TestWebhookLicenseReplies(t *testing.T) {
	content := []byte("-----BEGIN LICENSE-----\x00\x01binary\n")
	fileReply := `{"license":{"fileName":"product.lic","content":"` + base64.StdEncoding.EncodeToString(content) + `"}}`
	tests := []struct {
		name      string
		body      string
		wantErr   string // "" = success
		wantChars string
		wantFile  string
	}{
		{name: "characters", body: `{"license":{"characters":"LIC-123\nline two"}}`, wantChars: "LIC-123\nline two"},
		{name: "1024 characters of 3 bytes", body: `{"license":{"characters":"` + strings.Repeat("文", 1024) + `"}}`, wantChars: strings.Repeat("文", 1024)},
		{name: "file", body: fileReply, wantFile: "product.lic"},
		{name: "no license", body: `{}`, wantErr: "has no license"},
		{name: "empty body", body: ``, wantErr: "has no license"},
		{name: "null license", body: `{"license":null}`, wantErr: "has no license"},
		{name: "empty license", body: `{"license":{}}`, wantErr: "license: empty"},
		{name: "both", body: `{"license":{"characters":"x","fileName":"a.lic","content":"eA=="}}`, wantErr: "not both"},
		{name: "1025 characters", body: `{"license":{"characters":"` + strings.Repeat("a", 1025) + `"}}`, wantErr: "license.characters: 1025 characters, at most 1024"},
		{name: "NUL in characters", body: `{"license":{"characters":"a\u0000b"}}`, wantErr: "license.characters: not valid UTF-8"},
		{name: "blank characters", body: `{"license":{"characters":" \n\t "}}`, wantErr: "license.characters: blank"},
		{name: "one space", body: `{"license":{"characters":" "}}`, wantErr: "license.characters: blank"},
		{name: "characters with spaces around ok", body: `{"license":{"characters":" LIC-9 "}}`, wantChars: " LIC-9 "},
		{name: "file without name", body: `{"license":{"content":"eA=="}}`, wantErr: "license.fileName: missing"},
		{name: "file without content", body: `{"license":{"fileName":"a.lic"}}`, wantErr: "license.content: empty"},
		{name: "file name with a path", body: `{"license":{"fileName":"../etc/a.lic","content":"eA=="}}`, wantErr: "not a plain file name"},
		{name: "file name with a backslash", body: `{"license":{"fileName":"a\\b.lic","content":"eA=="}}`, wantErr: "not a plain file name"},
		{name: "file name dot dot", body: `{"license":{"fileName":"..","content":"eA=="}}`, wantErr: "not a plain file name"},
		{name: "file name too long", body: `{"license":{"fileName":"` + strings.Repeat("a", 256) + `","content":"eA=="}}`, wantErr: "longer than 255 bytes"},
		{name: "content not base64", body: `{"license":{"fileName":"a.lic","content":"not base64!"}}`, wantErr: "not a JSON result object"},
		{name: "characters not a string", body: `{"license":{"characters":12}}`, wantErr: "not a JSON result object"},
		{name: "refusal code", body: `{"resultCode":"000106","resultMsg":"sold out"}`, wantErr: "only instance.created may be refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVendor(t, http.StatusOK, tt.body)
			res, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), licenseEvent())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrPermanent) {
					t.Errorf("an unusable license reply is not permanent: %v", err)
				}
				if strings.Contains(err.Error(), "LIC-") || strings.Contains(err.Error(), "eA==") {
					t.Errorf("the error quotes the license: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := res.License
			if l == nil || l.Characters != tt.wantChars || l.FileName != tt.wantFile {
				t.Fatalf("License = %+v", l)
			}
			if tt.wantFile != "" && string(l.Content) != string(content) {
				t.Errorf("Content = %q, want %q", l.Content, content)
			}
		})
	}
}

// TestCreatedAppInfoOptional: instance.created of a product without a
// front end may be answered without appInfo; app info it does give is
// checked as always; without the flag none is still refused.
func TestCreatedAppInfoOptional(t *testing.T) {
	tests := []struct {
		name     string
		optional bool
		body     string
		wantErr  string
		wantApp  bool
	}{
		{name: "optional, empty body", optional: true, body: ``},
		{name: "optional, empty object", optional: true, body: `{}`},
		{name: "optional, app info given", optional: true, body: createdReply, wantApp: true},
		{name: "optional, app info without url", optional: true, body: `{"appInfo":{"userName":"a"}}`, wantErr: "without frontEndUrl"},
		{name: "optional, refusal", optional: true, body: `{"resultCode":"000100","resultMsg":"no seats"}`, wantErr: "purchase refused: 000100"},
		{name: "required, empty object", body: `{}`, wantErr: "no appInfo.frontEndUrl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent(EventCreated)
			ev.AppInfoOptional = tt.optional
			for _, via := range []string{"webhook", "exec"} {
				var res Result
				var err error
				if via == "webhook" {
					v := newVendor(t, http.StatusOK, tt.body)
					res, err = newTestWebhook(t, v.srv.URL).Provision(context.Background(), ev)
				} else {
					path := script(t, `printf '%s' '`+tt.body+`'`)
					res, err = newTestExec(t, ExecConfig{Command: []string{path}}).Provision(context.Background(), ev)
				}
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("%s: error = %v, want one containing %q", via, err, tt.wantErr)
					}
					continue
				}
				if err != nil || (res.AppInfo != nil) != tt.wantApp {
					t.Errorf("%s: Result %+v, %v; want app info %v", via, res, err, tt.wantApp)
				}
			}
		})
	}
}

// TestLicenseErrorsRedactDevice: a vendor reply or standard error that
// echoes the request's device fingerprint, whole, JSON-escaped or one of
// its parts, is quoted in the error without it.
func TestLicenseErrorsRedactDevice(t *testing.T) {
	const fp = `04:7C:16:5E:E3:5D,0A:1B:2C:3D:4E:5F|WD-WX1 "2345"||BFEBFBFF00090672`
	ev := licenseEvent()
	ev.LicenseRequest.DeviceFingerprint = fp
	escaped, _ := json.Marshal(fp)
	tests := []struct {
		name, reply string
		mark        string // what stands in the error for the fingerprint
	}{
		{"the whole fingerprint", "unknown device " + fp, "[device]"},
		{"the event echoed under another name", `{"echo":{"device":` + string(escaped) + `}}`, "[device]"},
		{"the event echoed under its name (masked by name first)", `{"echo":{"deviceFingerprint":` + string(escaped) + `}}`, "******"},
		{"one MAC", "no seat for MAC 0A:1B:2C:3D:4E:5F on this order", "[device]"},
		{"the CPU id", "CPU BFEBFBFF00090672 not supported", "[device]"},
	}
	secrets := []string{"04:7C:16:5E:E3:5D", "0A:1B:2C:3D:4E:5F", "WD-WX1", "BFEBFBFF00090672"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, status := range []int{http.StatusInternalServerError, http.StatusBadRequest} {
				v := newVendor(t, status, tt.reply)
				_, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), ev)
				if err == nil || !strings.Contains(err.Error(), tt.mark) {
					t.Fatalf("HTTP %d: error %v, want the device redacted (%s)", status, err, tt.mark)
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("HTTP %d: the error quotes %q: %v", status, s, err)
					}
				}
			}
			path := script(t, `printf '%s' '`+strings.ReplaceAll(tt.reply, `'`, `'\''`)+`' >&2; exit 1`)
			_, err := newTestExec(t, ExecConfig{Command: []string{path}}).Provision(context.Background(), ev)
			if err == nil || !strings.Contains(err.Error(), tt.mark) {
				t.Fatalf("exec: error %v, want the device redacted (%s)", err, tt.mark)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("exec: the error quotes %q: %v", s, err)
				}
			}
		})
	}
}

func TestExecLicense(t *testing.T) {
	path := script(t, `
read -r ev
case "$ev" in
*'"type":"license.requested"'*) printf '%s' '{"license":{"characters":"LIC-EXEC-1"}}' ;;
*) exit 3 ;;
esac
`)
	res, err := newTestExec(t, ExecConfig{Command: []string{path}}).Provision(context.Background(), licenseEvent())
	if err != nil || res.License == nil || res.License.Characters != "LIC-EXEC-1" {
		t.Fatalf("Result %+v, %v", res, err)
	}
	path = script(t, `printf '%s' '{"license":{"characters":"a","fileName":"b","content":"eA=="}}'`)
	if _, err := newTestExec(t, ExecConfig{Command: []string{path}}).Provision(context.Background(), licenseEvent()); err == nil ||
		!errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both kinds of license: %v", err)
	}
}

func TestDemoLicense(t *testing.T) {
	d := NewDemo("")
	ev := licenseEvent()
	res, err := d.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	l := res.License
	if l == nil || l.FileName != "" || l.Content != nil || !strings.HasPrefix(l.Characters, "KOOBRIDGE-DEMO-LICENSE kind=online instance=inst-1 ") {
		t.Fatalf("License = %+v", l)
	}
	if strings.Contains(l.Characters, ev.LicenseRequest.DeviceFingerprint) || strings.Contains(l.Characters, "04:7C") {
		t.Errorf("the demo license quotes the device fingerprint: %s", l.Characters)
	}
	// The demo's answer passes the checks a vendor's reply passes.
	b, _ := json.Marshal(res)
	if _, err := decodeResult(ev, b); err != nil {
		t.Errorf("demo license rejected by decodeResult: %v", err)
	}
	// The same request, the same license: a repeat is answered alike.
	again, err := d.Provision(context.Background(), licenseEvent())
	if err != nil || again.License.Characters != l.Characters {
		t.Errorf("a repeated request got %+v, %v; want %q", again.License, err, l.Characters)
	}
	// Another device, another expiry, another order: another license.
	variants := []func(*Event){
		func(e *Event) { e.LicenseRequest.DeviceFingerprint = "AA:BB|||" },
		func(e *Event) { e.LicenseRequest.DeviceFingerprint = "" },
		func(e *Event) { e.LicenseRequest.ExpireTime = e.LicenseRequest.ExpireTime.AddDate(1, 0, 0) },
		func(e *Event) { e.LicenseRequest.EventID = "ev-2" },
		func(e *Event) {
			e.Instance = Instance{}
			e.LicenseRequest.Kind, e.LicenseRequest.EventID = "legacy", ""
			e.Order = &Order{OrderID: "CS-LEGACY-1"}
		},
	}
	seen := map[string]bool{l.Characters: true}
	for i, edit := range variants {
		e := licenseEvent()
		edit(&e)
		r, err := d.Provision(context.Background(), e)
		if err != nil || r.License == nil {
			t.Fatalf("variant %d: %+v, %v", i, r, err)
		}
		if seen[r.License.Characters] {
			t.Errorf("variant %d got a license already given to another request: %s", i, r.License.Characters)
		}
		seen[r.License.Characters] = true
	}
	if _, err := d.Provision(context.Background(), Event{ID: "e", Type: EventLicenseRequested}); err == nil || !errors.Is(err, ErrPermanent) {
		t.Errorf("license.requested without a request: %v", err)
	}
	// An online-license product has no front end: no app info.
	created := testEvent(EventCreated)
	created.AppInfoOptional = true
	if r, err := d.Provision(context.Background(), created); err != nil || r.AppInfo != nil {
		t.Errorf("instance.created of an online-license instance: %+v, %v", r, err)
	}
}
