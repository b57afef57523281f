package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

// Plain license contents the grants hold sealed, and grant keys: neither
// they nor the sealed forms may appear in any answer or page.
const (
	plainLicenseFile  = "-----BEGIN LICENSE-----\nSEATS=5;EXPIRES=2027-03-01\n-----END LICENSE-----"
	plainLicenseChars = "LICENSE-CHARS-7f3a9b"
	grantKeyOnline    = "evt-1:FPHASHKEY-0001"
)

// licenseSeed is what seedLicenses stored: the grant IDs by name, the
// device hashes and the strings no answer may show.
type licenseSeed struct {
	grants  map[string]int64 // g1 … g4
	dev1    string           // SHA-256 hex of "fp-1"
	dev2    string
	secrets []string
}

// leaks returns the secrets that body contains.
func (s licenseSeed) leaks(body string) []string {
	var out []string
	for _, v := range s.secrets {
		if strings.Contains(body, v) {
			out = append(out, v)
		}
	}
	for _, name := range []string{`"key"`, "contentsealed", "fp-1", "fp-2"} {
		if strings.Contains(strings.ToLower(body), name) {
			out = append(out, "field "+name)
		}
	}
	return out
}

func deviceHash(fp string) string {
	h := sha256.Sum256([]byte(fp))
	return hex.EncodeToString(h[:])
}

// seedLicenses stores, through the store's methods:
//   - license codes LC-A (real, active, activated and checked, two
//     devices, three history entries), LC-A again as a test code (order
//     ORD-T), LC-B (frozen, one history entry), LC-C (released, order
//     ORD-A like LC-A), LC-D (a test code, frozen) and "LC-E/1 é" (a code
//     that needs escaping in a URL);
//   - grants g1 (online, uploaded after a retry), g2 (online, failed after
//     three attempts), g3 (legacy, generated), g4 (online, test, pending).
func seedLicenses(t *testing.T, st store.Store) licenseSeed {
	t.Helper()
	ctx := context.Background()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := seal.ParseKey(key)
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(s string) string {
		v, err := sealer.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	fileSealed, charsSealed := sealed(plainLicenseFile), sealed(plainLicenseChars)
	s := licenseSeed{
		grants: map[string]int64{}, dev1: deviceHash("fp-1"), dev2: deviceHash("fp-2"),
		secrets: []string{plainLicenseFile, plainLicenseChars, "SEATS=5", fileSealed, charsSealed, grantKeyOnline},
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	expiry := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)

	err = st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, c := range []store.LicenseCode{
			{Code: "LC-A", Status: store.LicenseActive, ExpireTime: expiry, OrderID: "ORD-A", OrderLineID: "ORD-A-000001",
				ProductID: "P-1", Amount: 2, ActivatedAt: at(5), CheckedAt: at(20), ConfirmedAt: at(22), RemoteStatus: "ALIVE", CreatedAt: at(1), UpdatedAt: at(20)},
			{Code: "LC-A", Test: true, Status: store.LicenseActive, OrderID: "ORD-T", CreatedAt: at(2), UpdatedAt: at(2)},
			{Code: "LC-B", Status: store.LicenseFrozen, ExpireTime: expiry, ExpireEstimated: true, OrderID: "ORD-B", CreatedAt: at(3), UpdatedAt: at(30)},
			{Code: "LC-C", Status: store.LicenseReleased, OrderID: "ORD-A", CreatedAt: at(3), UpdatedAt: at(40)},
			{Code: "LC-D", Test: true, Status: store.LicenseFrozen, CreatedAt: at(4), UpdatedAt: at(4)},
			{Code: "LC-E/1 é", Status: store.LicenseActive, CreatedAt: at(4), UpdatedAt: at(4)},
		} {
			if _, err := tx.InsertLicenseCode(ctx, c); err != nil {
				return fmt.Errorf("insert license code %s: %w", c.Code, err)
			}
		}
		for _, e := range []store.LicenseEvent{
			{Code: "LC-A", Kind: "activated", Source: "client", Detail: `{"amount":2}`, At: at(5)},
			{Code: "LC-A", Kind: "device", Source: "client", Detail: `{"device":"` + s.dev1 + `"}`, At: at(6)},
			{Code: "LC-A", Kind: "checked", Source: "openapi", Detail: `{"status":"ALIVE"}`, At: at(20)},
			{Code: "LC-B", Kind: "frozen", Source: "koogallery", Detail: `{"status":"FREEZE"}`, At: at(30)},
		} {
			if _, err := tx.InsertLicenseEvent(ctx, e); err != nil {
				return fmt.Errorf("insert license event: %w", err)
			}
		}
		for _, d := range []store.LicenseDevice{
			{Code: "LC-A", Device: s.dev1, FirstSeen: at(6), LastSeen: at(9)},
			{Code: "LC-A", Device: s.dev2, FirstSeen: at(7), LastSeen: at(8)},
		} {
			if _, err := tx.UpsertLicenseDevice(ctx, d); err != nil {
				return fmt.Errorf("upsert device: %w", err)
			}
		}
		for _, g := range []struct {
			name string
			g    store.LicenseGrant
		}{
			{"g1", store.LicenseGrant{Kind: store.GrantOnline, Key: grantKeyOnline, InstanceID: "inst-L1", EventID: "evt-1", OrderID: "ORD-O1",
				ProductID: "P-O", State: store.GrantUploaded, Status: store.LicenseActive, ExpireTime: expiry,
				Request: `{"effectiveTime":"2026-03-01T12:00:00Z","deviceHash":"` + s.dev1 + `"}`, Type: "FILE", FileName: "license.dat",
				ContentSealed: fileSealed, SHA256: deviceHash(plainLicenseFile), Attempts: 2, UploadedAt: at(52), CreatedAt: at(50), UpdatedAt: at(52)}},
			{"g2", store.LicenseGrant{Kind: store.GrantOnline, Key: "evt-2:FPHASHKEY-0002", InstanceID: "inst-L2", EventID: "evt-2", OrderID: "ORD-O2",
				State: store.GrantFailed, Status: store.LicenseActive, Type: "CHARACTERS", ContentSealed: charsSealed,
				SHA256: deviceHash(plainLicenseChars), Attempts: 3, LastError: "upload: 91381037 invalid license format", CreatedAt: at(53), UpdatedAt: at(56)}},
			{"g3", store.LicenseGrant{Kind: store.GrantLegacy, Key: "ORD-L3", InstanceID: "biz-3", OrderID: "ORD-L3", State: store.GrantGenerated,
				Status: store.LicenseActive, ExpireTime: expiry, ContentSealed: charsSealed, CreatedAt: at(57), UpdatedAt: at(57)}},
			{"g4", store.LicenseGrant{Kind: store.GrantOnline, Key: "evt-4:FPHASHKEY-0004", InstanceID: "inst-L1", EventID: "evt-4", Test: true,
				CreatedAt: at(58), UpdatedAt: at(58)}},
		} {
			id, inserted, err := tx.InsertLicenseGrant(ctx, g.g)
			if err != nil || !inserted {
				return fmt.Errorf("insert grant %s: inserted %v: %w", g.name, inserted, err)
			}
			s.grants[g.name] = id
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed licenses: %v", err)
	}
	// Device 1 was reported, then seen again: it is due again.
	if err := st.MarkLicenseDevicesReported(ctx, []store.LicenseDevice{{Code: "LC-A", Device: s.dev1}}, at(21)); err != nil {
		t.Fatalf("mark reported: %v", err)
	}
	if err := st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-A", Device: s.dev1, FirstSeen: at(6), LastSeen: at(25)})
		return err
	}); err != nil {
		t.Fatalf("see device again: %v", err)
	}
	for _, u := range []store.LicenseUpload{
		{GrantID: s.grants["g1"], At: at(51), Outcome: "retry", HTTPStatus: 500, Code: "CBC.0999", Message: "internal error"},
		{GrantID: s.grants["g1"], At: at(52), Outcome: "accepted", HTTPStatus: 200, Code: "CBC.0000"},
		{GrantID: s.grants["g2"], At: at(54), Outcome: "retry", Message: "dial tcp 127.0.0.1:1: connection refused"},
		{GrantID: s.grants["g2"], At: at(55), Outcome: "retry", HTTPStatus: 503, Message: "service unavailable"},
		{GrantID: s.grants["g2"], At: at(56), Outcome: "refused", HTTPStatus: 200, Code: "91381037", Message: "invalid license format"},
	} {
		if _, err := st.InsertLicenseUpload(ctx, u); err != nil {
			t.Fatalf("insert upload: %v", err)
		}
	}
	return s
}

// retryAt is the grant service's clock in these tests: the due time of
// the job a retry queues.
var retryAt = t0.Add(2 * time.Hour)

// newGrantService returns the real grant service over st with a job
// runner that is never started: a retry's job stays queued, where the test
// can see it (internal/grant tests the generation and the upload).
func newGrantService(t *testing.T, st store.Store) *grant.Service {
	t.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := seal.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	api := openapitest.NewServer(t, "AK", "SK")
	client, err := openapi.New(openapi.Config{BaseURL: api.URL(), AK: "AK", SK: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := grant.New(grant.Config{
		DeviceKey: testDeviceKey, Store: st, Provisioner: provision.NewDemo(""), Uploader: client, Sealer: sealer,
		Jobs: jobs.NewRunner(jobs.Config{Store: st}), Budget: time.Second,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return retryAt },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// grantJobs returns the kinds of the jobs queued for grant id, oldest
// first.
func grantJobs(t *testing.T, st store.Store, id int64) []string {
	t.Helper()
	all, err := st.Jobs(context.Background(), store.JobFilter{Limit: maxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i := len(all) - 1; i >= 0; i-- {
		var p struct {
			GrantID int64 `json:"grantId"`
		}
		if json.Unmarshal(all[i].Payload, &p) == nil && p.GrantID == id && all[i].State == store.JobAvailable && all[i].RunAt.Equal(retryAt) {
			kinds = append(kinds, all[i].Kind)
		}
	}
	return kinds
}

// retrierFunc is a GrantRetrier for the failures the real one cannot be
// made to give on demand; it records the grants it was asked for.
type retrierFunc struct {
	mu    sync.Mutex
	calls []int64
	f     func(id int64) error
}

func (r *retrierFunc) Retry(_ context.Context, id int64) error {
	r.mu.Lock()
	r.calls = append(r.calls, id)
	r.mu.Unlock()
	return r.f(id)
}

// forLicenseDialects runs test once per dialect against the admin API
// over a store seeded by seedLicenses, with the real grant service.
func forLicenseDialects(t *testing.T, test func(t *testing.T, f *fixture, s licenseSeed)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			f := &fixture{st: d.open(t)}
			s := seedLicenses(t, f.st)
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Grants: newGrantService(t, f.st), Token: token}))
			t.Cleanup(f.srv.Close)
			test(t, f, s)
		})
	}
}

func TestListLicenses(t *testing.T) { forLicenseDialects(t, testListLicenses) }

func testListLicenses(t *testing.T, f *fixture, _ licenseSeed) {
	type page struct {
		Licenses []struct {
			LicenseCode string `json:"licenseCode"`
			Test        bool   `json:"test"`
			Status      string `json:"status"`
		} `json:"licenses"`
		Next string `json:"next"`
	}
	tests := []struct {
		query, want, wantNext string
	}{
		{"", "LC-A:real:active LC-A:test:active LC-B:real:frozen LC-C:real:released LC-D:test:frozen LC-E/1 é:real:active", ""},
		{"?status=frozen", "LC-B:real:frozen LC-D:test:frozen", ""},
		{"?status=released", "LC-C:real:released", ""},
		{"?test=true", "LC-A:test:active LC-D:test:frozen", ""},
		{"?test=false", "LC-A:real:active LC-B:real:frozen LC-C:real:released LC-E/1 é:real:active", ""},
		{"?order=ORD-A", "LC-A:real:active LC-C:real:released", ""},
		{"?order=NONE", "", ""},
		// Paging by code: a page that ends on a code with a twin of the
		// other test flag carries the twin too, so the next page, after
		// the code, loses nothing.
		{"?limit=1", "LC-A:real:active LC-A:test:active", "LC-A"},
		{"?limit=2", "LC-A:real:active LC-A:test:active", "LC-A"},
		{"?limit=2&after=LC-A", "LC-B:real:frozen LC-C:real:released", "LC-C"},
		{"?limit=2&after=LC-C", "LC-D:test:frozen LC-E/1 é:real:active", "LC-E/1 é"},
		{"?limit=2&after=LC-E/1 é", "", ""},
		// The twin joins only when it matches the filters.
		{"?limit=1&test=false", "LC-A:real:active", "LC-A"},
		{"?limit=1&order=ORD-A", "LC-A:real:active", "LC-A"},
		{"?limit=1&status=active", "LC-A:real:active LC-A:test:active", "LC-A"},
		{"?limit=1&after=LC-A&status=frozen", "LC-B:real:frozen", "LC-B"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out page
			q := strings.ReplaceAll(tt.query, " ", "%20")
			q = strings.ReplaceAll(q, "é", url.QueryEscape("é"))
			q = strings.ReplaceAll(q, "/1", url.QueryEscape("/1"))
			if code := f.do(t, "GET", "/admin/api/licenses"+q, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var got []string
			for _, c := range out.Licenses {
				kind := "real"
				if c.Test {
					kind = "test"
				}
				got = append(got, c.LicenseCode+":"+kind+":"+c.Status)
			}
			// The store's order among the two rows of one code is not a
			// contract; the order of codes is.
			sort.SliceStable(got, func(i, j int) bool {
				ci, _, _ := strings.Cut(got[i], ":")
				cj, _, _ := strings.Cut(got[j], ":")
				return ci == cj && got[i] < got[j]
			})
			if strings.Join(got, " ") != tt.want || out.Next != tt.wantNext {
				t.Errorf("got %q next %q, want %q next %q", strings.Join(got, " "), out.Next, tt.want, tt.wantNext)
			}
		})
	}
	if code, body := f.raw(t, "/admin/api/licenses?order=NONE"); code != http.StatusOK || !strings.Contains(body, `"licenses": []`) {
		t.Errorf("empty page: %d %s", code, body)
	}

	for _, tt := range []struct{ query, want string }{
		{"?status=expired", "status: want active, frozen or released"},
		{"?test=maybe", "test: want true or false"},
		{"?limit=0", "limit: want a number from 1 to 1000"},
		{"?limit=1001", "limit: want a number from 1 to 1000"},
		{"?status=active&status=frozen", "status: given more than once"},
		{"?test=true&test=false", "test: given more than once"},
		{"?after=LC-A&after=LC-B", "after: given more than once"},
		{"?order=ORD%00A", "order: invalid UTF-8 or control characters"},
		{"?order=%FF", "order: invalid UTF-8 or control characters"},
		{"?after=LC%0A", "after: invalid UTF-8 or control characters"},
	} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/licenses"+tt.query, &e); code != http.StatusBadRequest || e.Error != tt.want {
			t.Errorf("GET licenses%s: %d %q, want 400 %q", tt.query, code, e.Error, tt.want)
		}
	}
}

func TestGetLicense(t *testing.T) { forLicenseDialects(t, testGetLicense) }

func testGetLicense(t *testing.T, f *fixture, s licenseSeed) {
	code, body := f.raw(t, "/admin/api/licenses/LC-A")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	// Every field, exactly: history newest first, devices by first seen.
	want := map[string]any{
		"licenseCode": "LC-A", "test": false, "status": "active", "expireTime": "2027-03-01T00:00:00Z",
		"orderId": "ORD-A", "orderLineId": "ORD-A-000001", "productId": "P-1", "amount": 2.0,
		"activatedAt": "2026-03-01T12:05:00Z", "checkedAt": "2026-03-01T12:20:00Z", "confirmedAt": "2026-03-01T12:22:00Z",
		"remoteStatus": "ALIVE", "expireEstimated": false,
		"createdAt": "2026-03-01T12:01:00Z", "updatedAt": "2026-03-01T12:20:00Z", "version": 0.0,
		"devices": []any{
			map[string]any{"deviceHash": s.dev1, "firstSeen": "2026-03-01T12:06:00Z", "lastSeen": "2026-03-01T12:25:00Z", "reportedAt": "2026-03-01T12:21:00Z"},
			map[string]any{"deviceHash": s.dev2, "firstSeen": "2026-03-01T12:07:00Z", "lastSeen": "2026-03-01T12:08:00Z"},
		},
		"history": []any{
			map[string]any{"kind": "checked", "source": "openapi", "detail": map[string]any{"status": "ALIVE"}, "at": "2026-03-01T12:20:00Z"},
			map[string]any{"kind": "device", "source": "client", "detail": map[string]any{"device": s.dev1}, "at": "2026-03-01T12:06:00Z"},
			map[string]any{"kind": "activated", "source": "client", "detail": map[string]any{"amount": 2.0}, "at": "2026-03-01T12:05:00Z"},
		},
	}
	// Event IDs are the store's: check they are positive and descending,
	// then compare the rest.
	var prev float64
	for i, h := range got["history"].([]any) {
		id, _ := h.(map[string]any)["id"].(float64)
		if id <= 0 || (i > 0 && id >= prev) {
			t.Errorf("history ids not positive and newest first: %v", got["history"])
		}
		prev = id
		delete(h.(map[string]any), "id")
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("LC-A:\n got %s\nwant %s", g, w)
	}
	if l := s.leaks(body); len(l) != 0 {
		t.Errorf("LC-A leaks %q", l)
	}

	// The test code of the same name is another record.
	var tc map[string]any
	if code := f.do(t, "GET", "/admin/api/licenses/LC-A?test=true", &tc); code != http.StatusOK {
		t.Fatalf("test LC-A: %d", code)
	}
	if tc["test"] != true || tc["orderId"] != "ORD-T" || tc["amount"] != 0.0 || tc["activatedAt"] != nil ||
		fmt.Sprint(tc["devices"], tc["history"]) != "[] []" {
		t.Errorf("test LC-A: %v", tc)
	}
	// A code that needs escaping, and ?test=false said outright.
	var esc map[string]any
	if code := f.do(t, "GET", "/admin/api/licenses/"+url.PathEscape("LC-E/1 é")+"?test=false", &esc); code != http.StatusOK || esc["licenseCode"] != "LC-E/1 é" {
		t.Errorf("escaped code: %d %v", code, esc)
	}

	for _, tt := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/admin/api/licenses/nope", http.StatusNotFound, `license code "nope" not found`},
		{"/admin/api/licenses/LC-B?test=true", http.StatusNotFound, `test license code "LC-B" not found`},
		{"/admin/api/licenses/LC-D", http.StatusNotFound, `license code "LC-D" not found`},
		{"/admin/api/licenses/LC-A?test=yes", http.StatusBadRequest, "test: want true or false"},
		{"/admin/api/licenses/LC-A?test=true&test=true", http.StatusBadRequest, "test: given more than once"},
		{"/admin/api/licenses/LC%00A", http.StatusBadRequest, "license code: invalid UTF-8 or control characters"},
		{"/admin/api/licenses/LC%FF", http.StatusBadRequest, "license code: invalid UTF-8 or control characters"},
	} {
		var e errorBody
		if code := f.do(t, "GET", tt.path, &e); code != tt.status || e.Error != tt.msg {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, code, e.Error, tt.status, tt.msg)
		}
	}
}

func TestListLicenseGrants(t *testing.T) { forLicenseDialects(t, testListLicenseGrants) }

func testListLicenseGrants(t *testing.T, f *fixture, s licenseSeed) {
	name := map[int64]string{}
	for n, id := range s.grants {
		name[id] = n
	}
	id := func(n string) string { return fmt.Sprint(s.grants[n]) }
	tests := []struct {
		query, want, wantNext string
	}{
		{"", "g4:online:pending g3:legacy:generated g2:online:failed g1:online:uploaded", ""},
		{"?kind=legacy", "g3:legacy:generated", ""},
		{"?kind=online&state=failed", "g2:online:failed", ""},
		{"?state=uploaded", "g1:online:uploaded", ""},
		{"?instance=inst-L1", "g4:online:pending g1:online:uploaded", ""},
		{"?instance=inst-none", "", ""},
		{"?limit=2", "g4:online:pending g3:legacy:generated", id("g3")},
		{"?limit=2&before=" + id("g3"), "g2:online:failed g1:online:uploaded", id("g1")},
		{"?limit=2&before=" + id("g1"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out struct {
				Grants []struct {
					ID    int64  `json:"id"`
					Kind  string `json:"kind"`
					State string `json:"state"`
				} `json:"grants"`
				Next string `json:"next"`
			}
			if code := f.do(t, "GET", "/admin/api/license-grants"+tt.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var got []string
			for _, g := range out.Grants {
				got = append(got, name[g.ID]+":"+g.Kind+":"+g.State)
			}
			if strings.Join(got, " ") != tt.want || out.Next != tt.wantNext {
				t.Errorf("got %q next %q, want %q next %q", strings.Join(got, " "), out.Next, tt.want, tt.wantNext)
			}
		})
	}
	code, body := f.raw(t, "/admin/api/license-grants")
	if code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	if l := s.leaks(body); len(l) != 0 {
		t.Errorf("grant list leaks %q", l)
	}
	if code, body := f.raw(t, "/admin/api/license-grants?kind=legacy&state=pending"); code != http.StatusOK || !strings.Contains(body, `"grants": []`) {
		t.Errorf("empty page: %d %s", code, body)
	}

	for _, tt := range []struct{ query, want string }{
		{"?kind=offline", "kind: want online or legacy"},
		{"?state=dead", "state: want pending, generated, uploaded or failed"},
		{"?before=0", "before: want a positive id"},
		{"?before=x", "before: want a positive id"},
		{"?limit=-1", "limit: want a number from 1 to 1000"},
		{"?kind=online&kind=legacy", "kind: given more than once"},
		{"?instance=a&instance=b", "instance: given more than once"},
		{"?instance=inst%00", "instance: invalid UTF-8 or control characters"},
	} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/license-grants"+tt.query, &e); code != http.StatusBadRequest || e.Error != tt.want {
			t.Errorf("GET license-grants%s: %d %q, want 400 %q", tt.query, code, e.Error, tt.want)
		}
	}
}

func TestGetLicenseGrant(t *testing.T) { forLicenseDialects(t, testGetLicenseGrant) }

func testGetLicenseGrant(t *testing.T, f *fixture, s licenseSeed) {
	for _, n := range []string{"g1", "g2", "g3", "g4"} {
		code, body := f.raw(t, "/admin/api/license-grants/"+fmt.Sprint(s.grants[n]))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", n, code, body)
		}
		if l := s.leaks(body); len(l) != 0 {
			t.Errorf("%s leaks %q:\n%s", n, l, body)
		}
	}
	var got map[string]any
	if code := f.do(t, "GET", "/admin/api/license-grants/"+fmt.Sprint(s.grants["g2"]), &got); code != http.StatusOK {
		t.Fatalf("g2: %d", code)
	}
	var prev float64
	for i, u := range got["uploads"].([]any) {
		id, _ := u.(map[string]any)["id"].(float64)
		if id <= 0 || (i > 0 && id <= prev) {
			t.Errorf("upload ids not positive and oldest first: %v", got["uploads"])
		}
		prev = id
		delete(u.(map[string]any), "id")
	}
	want := map[string]any{
		"id": float64(s.grants["g2"]), "kind": "online", "instanceId": "inst-L2", "eventId": "evt-2", "orderId": "ORD-O2",
		"test": false, "state": "failed", "status": "active", "type": "CHARACTERS", "sha256": deviceHash(plainLicenseChars),
		"attempts": 3.0, "lastError": "upload: 91381037 invalid license format",
		"createdAt": "2026-03-01T12:53:00Z", "updatedAt": "2026-03-01T12:56:00Z", "version": 0.0,
		"uploads": []any{
			map[string]any{"at": "2026-03-01T12:54:00Z", "outcome": "retry", "httpStatus": 0.0, "message": "dial tcp 127.0.0.1:1: connection refused"},
			map[string]any{"at": "2026-03-01T12:55:00Z", "outcome": "retry", "httpStatus": 503.0, "message": "service unavailable"},
			map[string]any{"at": "2026-03-01T12:56:00Z", "outcome": "refused", "httpStatus": 200.0, "code": "91381037", "message": "invalid license format"},
		},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("g2:\n got %s\nwant %s", g, w)
	}
	// The uploaded one shows its file, request and upload time.
	var g1 map[string]any
	if code := f.do(t, "GET", "/admin/api/license-grants/"+fmt.Sprint(s.grants["g1"]), &g1); code != http.StatusOK {
		t.Fatalf("g1: %d", code)
	}
	if g1["uploadedAt"] != "2026-03-01T12:52:00Z" || g1["fileName"] != "license.dat" || g1["type"] != "FILE" ||
		mustJSON(t, g1["request"]) != `{"deviceHash":"`+s.dev1+`","effectiveTime":"2026-03-01T12:00:00Z"}` || len(g1["uploads"].([]any)) != 2 {
		t.Errorf("g1: %v", g1)
	}

	for _, p := range []string{"/admin/api/license-grants/999999", "/admin/api/license-grants/abc", "/admin/api/license-grants/0", "/admin/api/license-grants/-1"} {
		var e errorBody
		if code := f.do(t, "GET", p, &e); code != http.StatusNotFound || !strings.HasPrefix(e.Error, "license grant ") || !strings.HasSuffix(e.Error, " not found") {
			t.Errorf("GET %s: %d %q, want 404 license grant … not found", p, code, e.Error)
		}
	}
}

func TestRetryLicenseGrant(t *testing.T) { forLicenseDialects(t, testRetryLicenseGrant) }

func testRetryLicenseGrant(t *testing.T, f *fixture, s licenseSeed) {
	g1, g2, g4 := fmt.Sprint(s.grants["g1"]), fmt.Sprint(s.grants["g2"]), fmt.Sprint(s.grants["g4"])
	for _, tc := range []struct {
		name, path string
		status     int
		msg        string
	}{
		{"unknown", "/admin/api/license-grants/999999/retry", http.StatusNotFound, "license grant 999999 not found"},
		{"not a number", "/admin/api/license-grants/x/retry", http.StatusNotFound, `license grant "x" not found`},
		{"uploaded", "/admin/api/license-grants/" + g1 + "/retry", http.StatusConflict, "license grant " + g1 + " is uploaded: only a failed grant can be retried"},
		{"pending", "/admin/api/license-grants/" + g4 + "/retry", http.StatusConflict, "license grant " + g4 + " is pending: only a failed grant can be retried"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e errorBody
			if code := f.do(t, "POST", tc.path, &e); code != tc.status || e.Error != tc.msg {
				t.Errorf("POST %s: %d %q, want %d %q", tc.path, code, e.Error, tc.status, tc.msg)
			}
		})
	}
	for _, n := range []string{"g1", "g4"} {
		if kinds := grantJobs(t, f.st, s.grants[n]); len(kinds) != 0 {
			t.Errorf("a refused retry of %s queued %v", n, kinds)
		}
	}

	// g2's upload was refused: the retry queues the upload again.
	var out map[string]any
	if code := f.do(t, "POST", "/admin/api/license-grants/"+g2+"/retry", &out); code != http.StatusAccepted {
		t.Fatalf("retry g2: %d %v", code, out)
	}
	if out["id"] != float64(s.grants["g2"]) || out["state"] != "generated" || out["version"] != 1.0 || out["uploads"] != nil {
		t.Errorf("retry g2 answered %v, want g2 generated, version 1, without uploads", out)
	}
	if l := s.leaks(mustJSON(t, out)); len(l) != 0 {
		t.Errorf("retry answer leaks %q", l)
	}
	stored, err := f.st.LicenseGrantByID(context.Background(), s.grants["g2"])
	if err != nil || stored.State != store.GrantGenerated {
		t.Errorf("stored g2 %+v %v, want generated", stored, err)
	}
	if kinds := grantJobs(t, f.st, s.grants["g2"]); len(kinds) != 1 || kinds[0] != grant.KindUpload {
		t.Errorf("jobs queued for g2 %v, want one %s", kinds, grant.KindUpload)
	}
	// Generated now: a second retry is a conflict and queues nothing.
	var e errorBody
	if code := f.do(t, "POST", "/admin/api/license-grants/"+g2+"/retry", &e); code != http.StatusConflict || e.Error != "license grant "+g2+" is generated: only a failed grant can be retried" {
		t.Errorf("second retry: %d %q, want 409", code, e.Error)
	}
	if kinds := grantJobs(t, f.st, s.grants["g2"]); len(kinds) != 1 {
		t.Errorf("jobs queued for g2 after a refused second retry %v, want one", kinds)
	}
	if code := f.do(t, "GET", "/admin/api/license-grants/"+g2+"/retry", &e); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("GET retry: %d", code)
	}
}

// TestRetryLicenseGrantFailures: without a retrier the API answers 500
// and calls nothing; a retrier that fails otherwise is a 500 whose cause
// stays in the log; one that lost the grant meanwhile a 404. The real
// service then retries it, with the audit line.
func TestRetryLicenseGrantFailures(t *testing.T) {
	f := newFixture(t)
	s := seedLicenses(t, f.st)
	g2 := fmt.Sprint(s.grants["g2"])
	var e errorBody
	if code := f.do(t, "POST", "/admin/api/license-grants/"+g2+"/retry", &e); code != http.StatusInternalServerError || e.Error != "license grant retry is not available" {
		t.Errorf("no retrier: %d %q", code, e.Error)
	}

	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{errors.New("grant: retry: database is locked at /var/lib/koobridge/k.db"), http.StatusInternalServerError, "internal error: retry license grant"},
		{fmt.Errorf("grant: retry %s: %w", g2, store.ErrNotFound), http.StatusNotFound, "license grant " + g2 + " not found"}, // deleted meanwhile
	} {
		r := &retrierFunc{f: func(int64) error { return tc.err }}
		srv := httptest.NewServer(NewAPI(APIConfig{Store: f.st, Grants: r, Token: token, Logger: logger}))
		f.srv = srv
		if code := f.do(t, "POST", "/admin/api/license-grants/"+g2+"/retry", &e); code != tc.status || e.Error != tc.msg {
			t.Errorf("retrier failing with %v: %d %q, want %d %q", tc.err, code, e.Error, tc.status, tc.msg)
		}
		srv.Close()
		if fmt.Sprint(r.calls) != "["+g2+"]" {
			t.Errorf("retrier called for %v", r.calls)
		}
	}
	if !strings.Contains(logs.String(), "database is locked") {
		t.Errorf("the cause is not logged:\n%s", logs.String())
	}
	if g, err := f.st.LicenseGrantByID(context.Background(), s.grants["g2"]); err != nil || g.State != store.GrantFailed {
		t.Errorf("g2 after failed retries: %+v %v, want still failed", g, err)
	}
	f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Grants: newGrantService(t, f.st), Token: token, Logger: logger}))
	defer f.srv.Close()
	if code := f.do(t, "POST", "/admin/api/license-grants/"+g2+"/retry", &e); code != http.StatusAccepted {
		t.Errorf("retry: %d %q", code, e.Error)
	}
	if got := logs.String(); !strings.Contains(got, "admin retried license grant") || !strings.Contains(got, "grant_id="+g2+" kind=online") ||
		!strings.Contains(got, `via="admin api"`) {
		t.Errorf("no audit line for the retry:\n%s", got)
	}
}

// rowsOf returns, for each tr carrying attr in page, the attribute's value
// and the text of its data-field cells joined with "|".
func rowsOf(page, attr string) []string {
	row := regexp.MustCompile(`(?s)<tr ` + attr + `="([^"]*)"[^>]*>(.*?)</tr>`)
	cell := regexp.MustCompile(`(?s)<td data-field="(\w+)"[^>]*>(.*?)</td>`)
	tag := regexp.MustCompile(`<[^>]*>`)
	var out []string
	for _, m := range row.FindAllStringSubmatch(page, -1) {
		var cells []string
		for _, c := range cell.FindAllStringSubmatch(m[2], -1) {
			cells = append(cells, strings.TrimSpace(tag.ReplaceAllString(c[2], "")))
		}
		out = append(out, m[1]+": "+strings.Join(cells, "|"))
	}
	return out
}

func TestWebLicenses(t *testing.T) {
	f := newWebFixture(t, nil)
	s := seedLicenses(t, f.st)
	cookie := f.login(t)

	list := f.get(t, cookie, "/admin/licenses")
	wantRows := []string{
		"LC-A: active|no|2027-03-01 00:00:00 UTC|2026-03-01 12:05:00 UTC|2026-03-01 12:20:00 UTC · ALIVE|2|ORD-A|2026-03-01 12:20:00 UTC",
		"LC-A: active|yes|—|not activated|never|—|ORD-T|2026-03-01 12:02:00 UTC",
		"LC-B: frozen|no|2027-03-01 00:00:00 UTC|not activated|never|—|ORD-B|2026-03-01 12:30:00 UTC",
		"LC-C: released|no|—|not activated|never|—|ORD-A|2026-03-01 12:40:00 UTC",
		"LC-D: frozen|yes|—|not activated|never|—||2026-03-01 12:04:00 UTC",
		"LC-E/1 é: active|no|—|not activated|never|—||2026-03-01 12:04:00 UTC",
	}
	got := rowsOf(list, "data-license-code")
	sort.Strings(got) // the two rows of LC-A may come in either order
	if strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("licenses table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	for _, want := range []string{
		`id="nav-licenses"`, `id="nav-license-grants"`, `href="/admin/licenses/LC-A" data-testid="license-link"`,
		`href="/admin/licenses/LC-A?test=true" data-testid="license-link"`,
		`href="/admin/licenses/LC-E%2F1%20%C3%A9" data-testid="license-link"`,
		`data-status-filter="frozen"`, `data-test-filter="true"`, `id="license-filter"`,
	} {
		if !strings.Contains(list, want) {
			t.Errorf("licenses page lacks %q", want)
		}
	}
	for _, tt := range []struct{ path, want string }{
		{"/admin/licenses?status=frozen", "[LC-B LC-D]"},
		{"/admin/licenses?test=true", "[LC-A LC-D]"},
		{"/admin/licenses?order=ORD-A", "[LC-A LC-C]"},
		{"/admin/licenses?limit=2&after=LC-A", "[LC-B LC-C]"},
	} {
		if got := fmt.Sprint(rowIDs(f.get(t, cookie, tt.path), "data-license-code")); got != tt.want {
			t.Errorf("%s: codes %s, want %s", tt.path, got, tt.want)
		}
	}
	paged := f.get(t, cookie, "/admin/licenses?limit=2&test=false")
	if !strings.Contains(paged, `id="next"`) || !strings.Contains(paged, "after=LC-B") || !strings.Contains(paged, "test=false") {
		t.Errorf("licenses page of limit 2: no next link to after=LC-B keeping test=false\n%s", paged)
	}
	if empty := f.get(t, cookie, "/admin/licenses?order=NONE"); !strings.Contains(empty, `id="no-licenses"`) || strings.Contains(empty, `id="next"`) {
		t.Errorf("empty licenses page")
	}

	page := f.get(t, cookie, "/admin/licenses/LC-A")
	for _, want := range []string{
		`<dl id="license" data-license-code="LC-A" data-test="false">`, `<span id="license-code">LC-A</span>`,
		`<dd data-field="status" class="status-active">active</dd>`, `<dd data-field="remoteStatus">ALIVE</dd>`,
		`<dd data-field="amount">2</dd>`, `<dd data-field="activatedAt">2026-03-01 12:05:00 UTC</dd>`,
		`<dd data-field="checkedAt">2026-03-01 12:20:00 UTC</dd>`, `<dd data-field="expireTime">2027-03-01 00:00:00 UTC</dd>`,
		`<dd data-field="confirmedAt">2026-03-01 12:22:00 UTC</dd>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("license page lacks %q", want)
		}
	}
	if strings.Contains(page, "estimate") {
		t.Error("LC-A's expiry, told by a query, is shown as an estimate")
	}
	if b := f.get(t, cookie, "/admin/licenses/LC-B"); !strings.Contains(b, `<dd data-field="expireTime">2027-03-01 00:00:00 UTC (activation's estimate)</dd>`) {
		t.Errorf("LC-B's page does not mark its expiry as activation's estimate:\n%s", b)
	}
	if got, want := rowsOf(page, "data-device"), []string{
		s.dev1 + ": " + s.dev1 + "|2026-03-01 12:06:00 UTC|2026-03-01 12:25:00 UTC|2026-03-01 12:21:00 UTC",
		s.dev2 + ": " + s.dev2 + "|2026-03-01 12:07:00 UTC|2026-03-01 12:08:00 UTC|not yet",
	}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("devices table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := fmt.Sprint(rowIDs(page, "data-kind")), "[checked device activated]"; got != want {
		t.Errorf("history %s, want %s", got, want)
	}
	if !strings.Contains(page, `&#34;status&#34;: &#34;ALIVE&#34;`) {
		t.Errorf("history lacks the check's detail")
	}
	if l := s.leaks(page); len(l) != 0 {
		t.Errorf("license page leaks %q", l)
	}
	test := f.get(t, cookie, "/admin/licenses/LC-A?test=true")
	for _, want := range []string{`data-test="true"`, `<h1>Test license <span id="license-code">LC-A</span></h1>`, `id="no-devices"`, `id="no-history"`, "ORD-T"} {
		if !strings.Contains(test, want) {
			t.Errorf("test license page lacks %q", want)
		}
	}
	if esc := f.get(t, cookie, "/admin/licenses/LC-E%2F1%20%C3%A9"); !strings.Contains(esc, `<span id="license-code">LC-E/1 é</span>`) {
		t.Errorf("escaped code page:\n%s", esc)
	}

	for _, tt := range []struct {
		path string
		want int
		msg  string
	}{
		{"/admin/licenses/nope", http.StatusNotFound, `license code &#34;nope&#34; not found`},
		{"/admin/licenses/LC-B?test=true", http.StatusNotFound, `test license code &#34;LC-B&#34; not found`},
		{"/admin/licenses?status=lost", http.StatusBadRequest, "status: want active, frozen or released"},
		{"/admin/licenses?test=1&test=0", http.StatusBadRequest, "test: given more than once"},
		{"/admin/licenses?limit=0", http.StatusBadRequest, "limit: want a number from 1 to 1000"},
	} {
		if r := send(t, f.web.URL, "GET", tt.path, cookie, nil); r.StatusCode != tt.want || !strings.Contains(r.body, `id="error"`) || !strings.Contains(r.body, tt.msg) {
			t.Errorf("GET %s: %d, want %d with %q", tt.path, r.StatusCode, tt.want, tt.msg)
		}
	}
	for _, p := range []string{"/admin/licenses", "/admin/licenses/LC-A", "/admin/license-grants", "/admin/license-grants/1"} {
		if r := send(t, f.web.URL, "GET", p, "", nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/login" {
			t.Errorf("%s without a session: %d to %q, want a redirect to the login", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
}

// TestWebLicenseGrants: the uploads list and a grant's page show the
// attempts and never the license; Retry is offered on the failed grant
// only, needs the CSRF token, re-runs it and returns with the notice; a
// forced retry of another grant is a conflict on the error page. Without
// a retrier there is no button and a forced post is a 500.
func TestWebLicenseGrants(t *testing.T) {
	f := newWebFixture(t, nil)
	s := seedLicenses(t, f.st)
	logs := &logBuffer{}
	web := httptest.NewServer(NewWeb(WebConfig{Store: f.st, Grants: newGrantService(t, f.st), Token: token, Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	defer web.Close()
	wf := &webFixture{fixture: f.fixture, web: web, clock: f.clock}
	cookie := wf.login(t)
	g1, g2, g3, g4 := fmt.Sprint(s.grants["g1"]), fmt.Sprint(s.grants["g2"]), fmt.Sprint(s.grants["g3"]), fmt.Sprint(s.grants["g4"])

	list := wf.get(t, cookie, "/admin/license-grants")
	wantRows := []string{
		g4 + ": online (test)|pending|inst-L1||0||2026-03-01 12:58:00 UTC",
		g3 + ": legacy|generated|biz-3|ORD-L3|0||2026-03-01 12:57:00 UTC",
		g2 + ": online|failed|inst-L2|ORD-O2|3|upload: 91381037 invalid license format|2026-03-01 12:56:00 UTC",
		g1 + ": online|uploaded|inst-L1|ORD-O1|2||2026-03-01 12:52:00 UTC",
	}
	if got := rowsOf(list, "data-grant-id"); strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("grants table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	for _, want := range []string{
		`href="/admin/license-grants/` + g2 + `" data-testid="grant-link"`, `href="/admin/instances/inst-L2"`,
		`data-kind-filter="legacy"`, `data-state-filter="failed"`, `id="grant-filter"`, `id="grant-retry-` + g2 + `"`,
	} {
		if !strings.Contains(list, want) {
			t.Errorf("grants page lacks %q", want)
		}
	}
	if strings.Count(list, `data-testid="grant-retry"`) != 1 {
		t.Errorf("grants page: want exactly one Retry button, for grant %s", g2)
	}
	for _, tt := range []struct{ path, want string }{
		{"/admin/license-grants?kind=legacy", "[" + g3 + "]"},
		{"/admin/license-grants?state=failed", "[" + g2 + "]"},
		{"/admin/license-grants?instance=inst-L1", "[" + g4 + " " + g1 + "]"},
		{"/admin/license-grants?limit=2&before=" + g3, "[" + g2 + " " + g1 + "]"},
	} {
		if got := fmt.Sprint(rowIDs(wf.get(t, cookie, tt.path), "data-grant-id")); got != tt.want {
			t.Errorf("%s: grants %s, want %s", tt.path, got, tt.want)
		}
	}
	if paged := wf.get(t, cookie, "/admin/license-grants?limit=2&kind=online"); !strings.Contains(paged, `id="next"`) || !strings.Contains(paged, "before="+g2) || !strings.Contains(paged, "kind=online") {
		t.Errorf("grants page of limit 2: no next link to before=%s keeping kind=online", g2)
	}

	page := wf.get(t, cookie, "/admin/license-grants/"+g2)
	for _, want := range []string{
		`<dl id="grant" data-grant-id="` + g2 + `">`, `<dd data-field="state" class="status-failed">failed</dd>`,
		`<dd data-field="lastError" class="status-failed">upload: 91381037 invalid license format</dd>`,
		`<dd data-field="sha256"><code>` + deviceHash(plainLicenseChars) + `</code></dd>`,
		`<form method="post" action="/admin/license-grants/` + g2 + `/retry" id="grant-retry" data-testid="grant-retry">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("grant page lacks %q", want)
		}
	}
	if got, want := rowsOf(page, "data-upload-id"), 3; len(got) != want {
		t.Errorf("grant page shows %d uploads, want %d", len(got), want)
	} else {
		cells := func(row string) string { _, c, _ := strings.Cut(row, ": "); return c }
		for i, w := range []string{
			"2026-03-01 12:54:00 UTC|retry|no answer||dial tcp 127.0.0.1:1: connection refused",
			"2026-03-01 12:55:00 UTC|retry|503||service unavailable",
			"2026-03-01 12:56:00 UTC|refused|200|91381037|invalid license format",
		} {
			if cells(got[i]) != w {
				t.Errorf("upload %d: %q, want %q", i, cells(got[i]), w)
			}
		}
	}
	uploaded := wf.get(t, cookie, "/admin/license-grants/"+g1)
	for _, want := range []string{`<dd data-field="uploadedAt">2026-03-01 12:52:00 UTC</dd>`, `FILE · license.dat`, `id="grant-request"`, `data-outcome="accepted"`} {
		if !strings.Contains(uploaded, want) {
			t.Errorf("uploaded grant page lacks %q", want)
		}
	}
	if strings.Contains(uploaded, `data-testid="grant-retry"`) {
		t.Error("an uploaded grant offers Retry")
	}
	if pending := wf.get(t, cookie, "/admin/license-grants/"+g4); !strings.Contains(pending, `id="no-uploads"`) || !strings.Contains(pending, "not generated yet") {
		t.Error("pending grant page: want no uploads and no hash yet")
	}
	for _, p := range []string{list, page, uploaded} {
		if l := s.leaks(p); len(l) != 0 {
			t.Errorf("a grant page leaks %q", l)
		}
	}

	// No or a wrong CSRF token: refused, the retrier is not called.
	csrf := csrfOf(t, page)
	for _, tok := range []string{"", "forged"} {
		form := url.Values{}
		if tok != "" {
			form.Set("csrf", tok)
		}
		if resp := send(t, web.URL, "POST", "/admin/license-grants/"+g2+"/retry", cookie, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("retry with CSRF %q: %d, want 403", tok, resp.StatusCode)
		}
	}
	if resp := send(t, web.URL, "POST", "/admin/license-grants/"+g2+"/retry", "", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("retry without a session: %d, want 403", resp.StatusCode)
	}
	if g, err := f.st.LicenseGrantByID(context.Background(), s.grants["g2"]); err != nil || g.State != store.GrantFailed || len(grantJobs(t, f.st, g.ID)) != 0 {
		t.Fatalf("after refused posts g2 is %+v (%v), want failed with no job", g, err)
	}

	resp := send(t, web.URL, "POST", "/admin/license-grants/"+g2+"/retry", cookie, url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/license-grants/"+g2+"?done=grant-retry" {
		t.Fatalf("retry: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	after := wf.get(t, cookie, resp.Header.Get("Location"))
	if !strings.Contains(after, `<p class="notice" id="notice">License grant queued again: a worker picks it up now.</p>`) ||
		!strings.Contains(after, `<dd data-field="state" class="status-generated">generated</dd>`) || strings.Contains(after, `data-testid="grant-retry"`) {
		t.Errorf("after the retry the page must show the notice, the grant generated (its upload queued) and no button\n%s", after)
	}
	if kinds := grantJobs(t, f.st, s.grants["g2"]); len(kinds) != 1 || kinds[0] != grant.KindUpload {
		t.Errorf("jobs queued for g2 %v, want one %s", kinds, grant.KindUpload)
	}
	if got := logs.String(); !strings.Contains(got, "admin retried license grant") || !strings.Contains(got, "grant_id="+g2) || !strings.Contains(got, `via="admin console"`) {
		t.Errorf("no audit line for the console retry:\n%s", got)
	}

	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/admin/license-grants/" + g1 + "/retry", http.StatusConflict, "license grant " + g1 + " is uploaded: only a failed grant can be retried"},
		{"/admin/license-grants/999999/retry", http.StatusNotFound, "license grant 999999 not found"},
	} {
		resp := send(t, web.URL, "POST", tc.path, cookie, url.Values{"csrf": {csrf}})
		if resp.StatusCode != tc.status || !strings.Contains(resp.body, `id="error"`) || !strings.Contains(resp.body, tc.msg) {
			t.Errorf("POST %s: %d, want %d with %q\n%s", tc.path, resp.StatusCode, tc.status, tc.msg, resp.body)
		}
	}
	if resp := send(t, web.URL, "GET", "/admin/license-grants/abc", cookie, nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.body, `license grant &#34;abc&#34; not found`) {
		t.Errorf("GET unknown grant page: %d", resp.StatusCode)
	}
	if resp := send(t, web.URL, "GET", "/admin/license-grants?state=dead", cookie, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET grants with a bad state: %d", resp.StatusCode)
	}

	// The console without a retrier (f.web): no button, a forced post is a 500.
	cookie2 := f.login(t)
	page2 := f.get(t, cookie2, "/admin/license-grants/"+g3)
	if strings.Contains(page2, `data-testid="grant-retry"`) || strings.Contains(f.get(t, cookie2, "/admin/license-grants"), `data-testid="grant-retry"`) {
		t.Error("a console without a retrier offers Retry")
	}
	resp = send(t, f.web.URL, "POST", "/admin/license-grants/"+g3+"/retry", cookie2, url.Values{"csrf": {csrfOf(t, page2)}})
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(resp.body, "license grant retry is not available") {
		t.Errorf("retry without a retrier: %d\n%s", resp.StatusCode, resp.body)
	}
}

// testDeviceKey keys the device hashes in these tests.
var testDeviceKey = []byte("koobridge test device key, 32 bytes or more")
