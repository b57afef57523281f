package grant_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// accepted lists the uploads the Open API accepted for event.
func accepted(api *openapitest.Server, event string) []mockapi.LicenseUpload {
	var out []mockapi.LicenseUpload
	for _, u := range api.LicenseUploads() {
		if u.EventID == event && u.Accepted {
			out = append(out, u)
		}
	}
	return out
}

// TestUploadRetriedUntilAccepted: an upload that fails three times (HTTP
// 500, CBC.0999) and then succeeds is uploaded exactly once, with four
// recorded attempts, and the license KooGallery got is the generator's.
func TestUploadRetriedUntilAccepted(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.addInstance(t, "inst-up", store.StatusActive)
		e.api.SetUploadFailures(3, "")
		g := e.online(t, "inst-up", "ev-up")
		g = e.waitState(t, g.ID, store.GrantUploaded)
		e.settle(t, grant.KindUpload)

		us := e.uploads(t, g.ID)
		if len(us) != 4 {
			t.Fatalf("%d recorded attempts, want 4: %+v", len(us), us)
		}
		for i, u := range us[:3] {
			if u.Outcome != grant.OutcomeRetry || u.HTTPStatus != 500 || u.Code != protocol.CBCInternalError {
				t.Errorf("attempt %d: %+v, want retry 500 CBC.0999", i+1, u)
			}
		}
		if u := us[3]; u.Outcome != grant.OutcomeAccepted || u.Code != "" || u.Message != "" {
			t.Errorf("attempt 4: %+v, want accepted", u)
		}
		if g.Attempts != 4 || g.LastError != "" || g.UploadedAt.IsZero() || g.Type != grant.TypeCharacters {
			t.Errorf("grant %+v", g)
		}
		got := accepted(e.api, "ev-up")
		if len(got) != 1 {
			t.Fatalf("KooGallery accepted %d uploads, want 1", len(got))
		}
		lic, err := e.svc.License(g)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(lic.Characters))
		if string(got[0].Content) != lic.Characters || got[0].Type != protocol.UploadTypeCharacters ||
			g.SHA256 != hex.EncodeToString(sum[:]) || !strings.HasPrefix(lic.Characters, "KOOBRIDGE-DEMO-LICENSE kind=online instance=inst-up") {
			t.Errorf("uploaded %q (%s), stored %q sha %s", got[0].Content, got[0].Type, lic.Characters, g.SHA256)
		}
		// The generator heard of the request once, with the device and the
		// instance.
		evs := e.gen.list()
		if len(evs) != 1 {
			t.Fatalf("%d license.requested events, want 1", len(evs))
		}
		ev := evs[0]
		if ev.Type != provision.EventLicenseRequested || ev.Instance.ID != "inst-up" || ev.LicenseRequest.DeviceFingerprint != fingerprint ||
			ev.LicenseRequest.EventID != "ev-up" || ev.LicenseRequest.Kind != "online" || ev.LicenseRequest.Amount != 5 ||
			!ev.LicenseRequest.ExpireTime.Equal(time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("event %+v request %+v", ev, ev.LicenseRequest)
		}
	})
}

// TestUploadRefused: a permanent refusal fails the grant with the reason
// after one attempt; Retry puts it back to work and it is uploaded.
func TestUploadRefused(t *testing.T) {
	tests := []struct {
		code   string
		status int
	}{
		{protocol.OnlineLicenseInvalidFormat, 200},
		{protocol.OnlineLicenseApplicationInvalid, 200},
		{protocol.OnlineLicenseApplicationDenied, 200},
		{protocol.CBCInvalidParam, 400},
	}
	forEachDialect(t, func(t *testing.T, e *env) {
		for i, tt := range tests {
			t.Run(tt.code, func(t *testing.T) {
				id, event := "inst-ref-"+tt.code, "ev-ref-"+string(rune('a'+i))
				e.addInstance(t, id, store.StatusActive)
				e.api.SetUploadFailures(1, tt.code)
				g := e.online(t, id, event)
				g = e.waitState(t, g.ID, store.GrantFailed)
				us := e.uploads(t, g.ID)
				if len(us) != 1 || us[0].Outcome != grant.OutcomeRefused || us[0].Code != tt.code || us[0].HTTPStatus != tt.status {
					t.Fatalf("attempts %+v, want one refused %s", us, tt.code)
				}
				if !strings.Contains(g.LastError, "upload refused: "+tt.code) || g.Attempts != 1 || g.ContentSealed == "" {
					t.Errorf("grant %+v", g)
				}
				e.settle(t, grant.KindUpload)
				if err := e.svc.Retry(context.Background(), g.ID); err != nil {
					t.Fatal(err)
				}
				g = e.waitState(t, g.ID, store.GrantUploaded)
				if us := e.uploads(t, g.ID); len(us) != 2 || us[1].Outcome != grant.OutcomeAccepted {
					t.Errorf("attempts after the re-run %+v", us)
				}
				if n := len(accepted(e.api, event)); n != 1 || g.Attempts != 2 || len(e.gen.list()) != i+1 {
					t.Errorf("%d accepted uploads, %d attempts, %d generations (the re-run uploads, it does not generate again)", n, g.Attempts, len(e.gen.list()))
				}
			})
		}
		// Retry of a grant that is not failed, or of none.
		gs, err := e.st.LicenseGrants(context.Background(), store.LicenseGrantFilter{})
		if err != nil || len(gs) == 0 {
			t.Fatal(gs, err)
		}
		if err := e.svc.Retry(context.Background(), gs[0].ID); !errors.Is(err, grant.ErrWrongState) || !errors.Is(err, store.ErrConflict) ||
			!strings.Contains(err.Error(), "it is uploaded") {
			t.Errorf("Retry of an uploaded grant: %v", err)
		}
		if err := e.svc.Retry(context.Background(), 999999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Retry of no grant: %v", err)
		}
	})
}

// TestNoUploadAfterAcceptance: the upload job run again after an
// acceptance was recorded does not upload again, also when the grant's
// own mark was lost (a crash between recording the attempt and marking
// the grant).
func TestNoUploadAfterAcceptance(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.addInstance(t, "inst-once", store.StatusActive)
		g := e.online(t, "inst-once", "ev-once")
		g = e.waitState(t, g.ID, store.GrantUploaded)
		e.settle(t, grant.KindUpload)
		job := e.jobsOf(t, grant.KindUpload)[0]

		// The job run again (an operator's re-run of a done job).
		if err := e.st.ReviveJob(ctx, job.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.svc.Kick()
		e.settle(t, grant.KindUpload)
		// The grant's mark lost: generated again, its acceptance recorded.
		err := e.st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			cur, err := tx.LicenseGrantByID(ctx, g.ID)
			if err != nil {
				return err
			}
			cur.State, cur.UploadedAt, cur.Attempts = store.GrantGenerated, time.Time{}, 0
			return tx.UpdateLicenseGrant(ctx, cur)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.ReviveJob(ctx, job.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.svc.Kick()
		g = e.waitState(t, g.ID, store.GrantUploaded)
		e.settle(t, grant.KindUpload)
		if n := len(e.api.LicenseUploads()); n != 1 {
			t.Errorf("KooGallery got %d uploads, want 1", n)
		}
		if us := e.uploads(t, g.ID); len(us) != 1 || g.Attempts != 1 || g.UploadedAt.IsZero() {
			t.Errorf("attempts %+v, grant %+v", us, g)
		}
	})
}

// TestGenerateFailures: a generator that refuses, answers without a
// license or with an unusable one fails the grant with the reason; one
// that is busy is retried up to MaxAttempts; Retry generates again.
func TestGenerateFailures(t *testing.T) {
	tests := []struct {
		mode, want string
	}{
		{"permanent", "no license for this product"},
		{"none", "without a license"},
		{"both", "not both"},
		{"busy", "generator busy"},
	}
	forEachDialect(t, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.mode, func(t *testing.T) {
				id := "inst-gen-" + tt.mode
				e.addInstance(t, id, store.StatusActive)
				e.gen.set(tt.mode)
				before := len(e.gen.list())
				g := e.online(t, id, "ev-gen-"+tt.mode)
				g = e.waitState(t, g.ID, store.GrantFailed)
				if !strings.Contains(g.LastError, tt.want) || g.ContentSealed != "" {
					t.Errorf("grant %+v, want last error %q", g, tt.want)
				}
				wantTries := 1
				if tt.mode == "busy" {
					wantTries = 3 // MaxAttempts
				}
				e.settle(t, grant.KindGenerate)
				if n := len(e.gen.list()) - before; n != wantTries {
					t.Errorf("the generator was asked %d times, want %d", n, wantTries)
				}
				e.gen.set("")
				if err := e.svc.Retry(context.Background(), g.ID); err != nil {
					t.Fatal(err)
				}
				g = e.waitState(t, g.ID, store.GrantUploaded)
				if g.LastError != "" || g.ContentSealed == "" {
					t.Errorf("grant after the re-run %+v", g)
				}
			})
		}
	})
}

// TestGenerateWaitsForInstance: the vendor hears of a license for an
// instance only once it is provisioned; the wait spends none of the
// generator's attempts (more waits than MaxAttempts, the grant still
// pending), and the license follows without an operator; a released
// instance fails the grant.
func TestGenerateWaitsForInstance(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.addInstance(t, "inst-wait", store.StatusProvisioning)
		g := e.online(t, "inst-wait", "ev-wait")
		eventually(t, "more waits than the generate attempts", func() bool {
			return len(e.jobsOf(t, grant.KindGenerate)) > 3+2 // MaxAttempts 3
		})
		if g = e.grant(t, g.ID); g.State != store.GrantPending || !strings.Contains(g.LastError, "waiting for the instance to be provisioned") {
			t.Fatalf("grant while waiting %+v", g)
		}
		if n := len(e.gen.list()); n != 0 {
			t.Fatalf("the generator was asked %d times before the instance existed", n)
		}
		for _, j := range e.jobsOf(t, grant.KindGenerate) {
			if j.State == store.JobDead || j.Attempts > 1 {
				t.Errorf("a waiting generate job spent attempts: %+v", j)
			}
		}
		e.setInstance(t, "inst-wait", store.StatusActive)
		if g = e.waitState(t, g.ID, store.GrantUploaded); g.LastError != "" {
			t.Errorf("grant %+v", g)
		}

		e.addInstance(t, "inst-gone", store.StatusReleased)
		g = e.online(t, "inst-gone", "ev-gone")
		if g = e.waitState(t, g.ID, store.GrantFailed); !strings.Contains(g.LastError, "released before its license was generated") {
			t.Errorf("grant of a released instance: %+v", g)
		}
	})
}

// TestInstanceWaitBounded: a grant whose instance is still being
// provisioned MaxInstanceWait after it was asked for fails, saying so;
// a resend of the request (Resume) starts it again.
func TestInstanceWaitBounded(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			var behind atomic.Int64 // how far the grants' clock is behind
			behind.Store(int64(grant.MaxInstanceWait + time.Hour))
			e := newEnvWith(t, d.Open(t), envConfig{now: func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }})
			e.addInstance(t, "inst-stuck", store.StatusProvisioning)
			g := e.online(t, "inst-stuck", "ev-stuck")
			eventually(t, "a wait", func() bool { return strings.Contains(e.grant(t, g.ID).LastError, "waiting for the instance") })
			behind.Store(0)
			g = e.waitState(t, g.ID, store.GrantFailed)
			if !strings.Contains(g.LastError, "still being provisioned 24h0m0s after the license was asked for") {
				t.Errorf("last error %q", g.LastError)
			}
			e.setInstance(t, "inst-stuck", store.StatusActive)
			ok, err := e.svc.Resume(context.Background(), store.GrantOnline, g.Key)
			if err != nil || !ok {
				t.Fatalf("Resume = %v, %v", ok, err)
			}
			e.waitState(t, g.ID, store.GrantUploaded)
		})
	}
}

// TestResume: a repeat of the request restarts a failed grant (its
// generation or its upload) and nothing else.
func TestResume(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.addInstance(t, "inst-res", store.StatusActive)
		e.gen.set("permanent")
		g := e.online(t, "inst-res", "ev-res")
		g = e.waitState(t, g.ID, store.GrantFailed)
		e.settle(t, grant.KindGenerate)
		e.gen.set("")
		if ok, err := e.svc.Resume(ctx, store.GrantOnline, g.Key); err != nil || !ok {
			t.Fatalf("Resume of a failed generation = %v, %v", ok, err)
		}
		g = e.waitState(t, g.ID, store.GrantUploaded)
		if ok, err := e.svc.Resume(ctx, store.GrantOnline, g.Key); err != nil || ok {
			t.Errorf("Resume of an uploaded grant = %v, %v", ok, err)
		}
		if ok, err := e.svc.Resume(ctx, store.GrantOnline, "no-such-key"); err != nil || ok {
			t.Errorf("Resume of no grant = %v, %v", ok, err)
		}
		// A refused upload is uploaded again.
		e.addInstance(t, "inst-res2", store.StatusActive)
		e.api.SetUploadFailures(1, protocol.OnlineLicenseInvalidFormat)
		g = e.online(t, "inst-res2", "ev-res2")
		g = e.waitState(t, g.ID, store.GrantFailed)
		e.settle(t, grant.KindUpload)
		if ok, err := e.svc.Resume(ctx, store.GrantOnline, g.Key); err != nil || !ok {
			t.Fatalf("Resume of a refused upload = %v, %v", ok, err)
		}
		e.waitState(t, g.ID, store.GrantUploaded)
		if n := len(accepted(e.api, "ev-res2")); n != 1 {
			t.Errorf("%d accepted uploads", n)
		}
	})
}

// TestFileLicense: a license file is stored sealed with its SHA-256 and
// uploaded as FILE with its hash.
func TestFileLicense(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.addInstance(t, "inst-file", store.StatusActive)
		e.gen.set("file")
		g := e.online(t, "inst-file", "ev-file")
		g = e.waitState(t, g.ID, store.GrantUploaded)
		sum := sha256.Sum256(fileContent)
		if g.Type != grant.TypeFile || g.FileName != "product.lic" || g.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("grant %+v", g)
		}
		got := accepted(e.api, "ev-file")
		if len(got) != 1 || got[0].Type != protocol.UploadTypeFile || got[0].FileName != "product.lic" ||
			got[0].SHA256 != g.SHA256 || string(got[0].Content) != string(fileContent) {
			t.Errorf("uploaded %+v", got)
		}
		lic, err := e.svc.License(g)
		if err != nil || string(lic.Content) != string(fileContent) || lic.FileName != "product.lic" || lic.Characters != "" {
			t.Errorf("License: %+v, %v", lic, err)
		}
	})
}

// TestSecretsNotStored: the device fingerprint is kept only as its hash
// (and sealed); the license only sealed; neither appears in a job, the
// request details or an error.
func TestSecretsNotStored(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.addInstance(t, "inst-sec", store.StatusActive)
		g := e.online(t, "inst-sec", "ev-sec")
		g = e.waitState(t, g.ID, store.GrantUploaded)
		lic, err := e.svc.License(g)
		if err != nil {
			t.Fatal(err)
		}
		device := license.DeviceHash(testDeviceKey, fingerprint)
		if !strings.Contains(g.Request, device) || strings.Contains(g.Key, fingerprint) || !strings.Contains(g.Key, device) {
			t.Errorf("key %q request %s: want the fingerprint's keyed hash", g.Key, g.Request)
		}
		// The bare SHA-256 of a low-entropy fingerprint could be reversed
		// by trying fingerprints: it must appear nowhere.
		bare := sha256.Sum256([]byte(fingerprint))
		if h := hex.EncodeToString(bare[:]); strings.Contains(g.Request, h) || strings.Contains(g.Key, h) {
			t.Errorf("key %q request %s: holds the bare SHA-256 of the fingerprint", g.Key, g.Request)
		}
		for what, text := range map[string]string{"request": g.Request, "key": g.Key, "content": g.ContentSealed, "error": g.LastError} {
			if strings.Contains(text, fingerprint) || strings.Contains(text, "04:7C") || strings.Contains(text, lic.Characters) {
				t.Errorf("the %s holds the fingerprint or the license: %s", what, text)
			}
		}
		for _, kind := range []string{grant.KindGenerate, grant.KindUpload} {
			for _, j := range e.jobsOf(t, kind) {
				if p := string(j.Payload); strings.Contains(p, "04:7C") || strings.Contains(p, "DEMO-LICENSE") {
					t.Errorf("%s job payload %s", kind, p)
				}
			}
		}
	})
}

// TestRequestOnce: 20 concurrent requests for one application make one
// grant and one generation.
func TestRequestOnce(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.addInstance(t, "inst-conc", store.StatusActive)
		if err := e.api.AddLicenseEvent(mockapi.LicenseEvent{EventID: "ev-conc", InstanceID: "inst-conc"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		ids := make([]int64, 20)
		ins := make([]bool, 20)
		for i := range ids {
			wg.Go(func() {
				g, inserted, _, err := e.svc.Request(context.Background(), grant.Request{
					Kind: store.GrantOnline, Key: e.svc.OnlineKey("ev-conc", ""), InstanceID: "inst-conc", EventID: "ev-conc",
					EffectiveTime: time.Now(), Fingerprint: "same",
				})
				if err != nil {
					t.Error(err)
				}
				ids[i], ins[i] = g.ID, inserted
			})
		}
		wg.Wait()
		n := 0
		for i := range ids {
			if ids[i] != ids[0] {
				t.Errorf("request %d got grant %d, another %d", i, ids[i], ids[0])
			}
			if ins[i] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d requests inserted, want 1", n)
		}
		e.svc.Kick()
		g := e.waitState(t, ids[0], store.GrantUploaded)
		if !grant.SameRequest(g, "same") || grant.SameRequest(g, "other") {
			t.Error("SameRequest does not tell the request's fingerprint")
		}
		if len(e.gen.list()) != 1 || len(accepted(e.api, "ev-conc")) != 1 {
			t.Errorf("%d generations, %d uploads", len(e.gen.list()), len(accepted(e.api, "ev-conc")))
		}
	})
}
