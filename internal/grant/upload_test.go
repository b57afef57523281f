package grant_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// lostCase is an upload whose first attempt ends in a way that says
// nothing, or something, of whether KooGallery took the license.
type lostCase struct {
	name string
	// first answers the first upload of the event in front of KooGallery;
	// forward passes it on (KooGallery takes the license).
	first func(w http.ResponseWriter, r *http.Request, forward func())
	// crash: the uploader dies right after the first upload reached
	// KooGallery, before anything is recorded.
	crash bool
	// notSent: the uploader cannot send the first upload (ErrNotSent).
	notSent bool
	// deny: KooGallery answers the next upload "application denied"
	// (91381038) rather than success for the same license.
	deny bool
	// want is the grant's end state and its recorded attempts as
	// outcome/status/code.
	want     store.GrantState
	attempts []string
	accepted int // uploads KooGallery took as the event's license
}

// lostCases: an acceptance whose answer was lost is learnt from the next
// attempt, success or 91381038 alike; an answer that says the upload was
// not taken is not mistaken for one.
var lostCases = []lostCase{
	{
		name: "502 after KooGallery took it, then success for the same license",
		first: func(w http.ResponseWriter, r *http.Request, forward func()) {
			forward()
			w.WriteHeader(http.StatusBadGateway)
		},
		want: store.GrantUploaded, attempts: []string{"retry/502/", "accepted/0/"}, accepted: 1,
	},
	{
		name: "502 after KooGallery took it, then denied",
		first: func(w http.ResponseWriter, r *http.Request, forward func()) {
			forward()
			w.WriteHeader(http.StatusBadGateway)
		},
		deny: true, want: store.GrantUploaded, attempts: []string{"retry/502/", "accepted/200/91381038"}, accepted: 1,
	},
	{
		name: "connection reset after KooGallery took it, then denied",
		first: func(w http.ResponseWriter, r *http.Request, forward func()) {
			forward()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		},
		deny: true, want: store.GrantUploaded, attempts: []string{"retry/0/", "accepted/200/91381038"}, accepted: 1,
	},
	{
		name: "unreadable 200 after KooGallery took it, then denied",
		first: func(w http.ResponseWriter, r *http.Request, forward func()) {
			forward()
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>OK</html>"))
		},
		deny: true, want: store.GrantUploaded, attempts: []string{"retry/200/", "accepted/200/91381038"}, accepted: 1,
	},
	{
		name:  "crash after sending, before recording, then denied",
		crash: true, deny: true, want: store.GrantUploaded, attempts: []string{"accepted/200/91381038"}, accepted: 1,
	},
	{
		name:    "not sent (no credentials), then denied: refused",
		notSent: true, deny: true, want: store.GrantFailed, attempts: []string{"retry/0/", "refused/200/91381038"}, accepted: 0,
	},
	{
		name: "credentials refused (not taken), then denied: refused",
		first: func(w http.ResponseWriter, r *http.Request, forward func()) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}`))
		},
		deny: true, want: store.GrantFailed, attempts: []string{"retry/401/APIGW.0301", "refused/200/91381038"}, accepted: 0,
	},
}

// lostFront plays each case's first answer in front of KooGallery, by
// the event of the upload.
type lostFront struct {
	mu    sync.Mutex
	seen  map[string]bool
	cases map[string]lostCase
}

func (f *lostFront) handler(api *openapitest.Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		event, ok := strings.CutSuffix(r.URL.Path, "/file")
		event = event[strings.LastIndexByte(event, '/')+1:]
		f.mu.Lock()
		c, known := f.cases[event]
		first := ok && known && !f.seen[event] && c.first != nil
		f.seen[event] = true
		f.mu.Unlock()
		if !first {
			next.ServeHTTP(w, r)
			return
		}
		c.first(w, r, func() {
			next.ServeHTTP(httptest.NewRecorder(), r) // KooGallery's answer is lost on the way
		})
		if c.deny {
			api.SetUploadFailures(1, protocol.OnlineLicenseApplicationDenied)
		}
	})
}

// crashingUploader uploads, then dies (panics) once for the events of
// crash cases, as a process killed right after sending would; for
// notSent cases it fails the first upload without sending it.
type crashingUploader struct {
	api     *openapitest.Server
	next    grant.Uploader
	mu      sync.Mutex
	crashed map[string]bool
	cases   map[string]lostCase
}

func (u *crashingUploader) UploadLicense(ctx context.Context, eventID string, f openapi.LicenseUpload) error {
	u.mu.Lock()
	c := u.cases[eventID]
	first := !u.crashed[eventID]
	u.crashed[eventID] = true
	u.mu.Unlock()
	if c.notSent && first {
		if c.deny {
			u.api.SetUploadFailures(1, protocol.OnlineLicenseApplicationDenied)
		}
		return fmt.Errorf("%w (%w): no credentials to sign with", openapi.ErrUnavailable, grant.ErrNotSent)
	}
	err := u.next.UploadLicense(ctx, eventID, f)
	crash := c.crash && first
	if crash {
		if err != nil {
			return fmt.Errorf("the first upload was to succeed: %w", err)
		}
		if c.deny {
			u.api.SetUploadFailures(1, protocol.OnlineLicenseApplicationDenied)
		}
		panic("koobridge died after sending the upload")
	}
	return err
}

// TestLostAcceptance: an upload KooGallery took whose answer was lost (a
// 502 or a reset after the upstream took it, an unreadable 200, a crash
// before the attempt was recorded) ends uploaded once, whether KooGallery
// answers the next attempt with success for the same license or with
// 91381038; a first answer that says the upload was not taken does not
// make a later 91381038 an acceptance.
func TestLostAcceptance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			cases := map[string]lostCase{}
			for i, c := range lostCases {
				cases[fmt.Sprintf("ev-lost-%d", i)] = c
			}
			front := &lostFront{seen: map[string]bool{}, cases: cases}
			e := newEnvWith(t, d.Open(t), envConfig{
				front: front.handler,
				uploader: func(api *openapitest.Server, client grant.Uploader) grant.Uploader {
					return &crashingUploader{api: api, next: client, crashed: map[string]bool{}, cases: cases}
				},
			})
			for i, c := range lostCases {
				t.Run(c.name, func(t *testing.T) {
					id, event := fmt.Sprintf("inst-lost-%d", i), fmt.Sprintf("ev-lost-%d", i)
					e.addInstance(t, id, store.StatusActive)
					g := e.online(t, id, event)
					eventually(t, "the upload settled", func() bool {
						g = e.grant(t, g.ID)
						return g.State == store.GrantUploaded || g.State == store.GrantFailed
					})
					e.settle(t, grant.KindUpload)
					if g = e.grant(t, g.ID); g.State != c.want {
						t.Errorf("grant %s (%s), want %s", g.State, g.LastError, c.want)
					}
					var got []string
					for _, a := range e.uploads(t, g.ID) {
						got = append(got, fmt.Sprintf("%s/%d/%s", a.Outcome, a.HTTPStatus, a.Code))
					}
					if strings.Join(got, " ") != strings.Join(c.attempts, " ") {
						t.Errorf("attempts %v, want %v", got, c.attempts)
					}
					if n := len(accepted(e.api, event)); n != c.accepted {
						t.Errorf("KooGallery took %d uploads as the license, want %d", n, c.accepted)
					}
					if g.Attempts != 2 {
						t.Errorf("grant counts %d attempts, want 2", g.Attempts)
					}
					if c.want == store.GrantUploaded && (g.UploadedAt.IsZero() || g.LastError != "") {
						t.Errorf("grant %+v", g)
					}
					if c.want == store.GrantFailed && !strings.Contains(g.LastError, "upload refused: 91381038") {
						t.Errorf("last error %q", g.LastError)
					}
				})
			}
		})
	}
}

// TestUnreadableAnswerRetried: a 2xx answer without a code is no
// refusal: the upload is tried again until KooGallery answers.
func TestUnreadableAnswerRetried(t *testing.T) {
	var n sync.Map
	e := newEnvWith(t, dialects[0].Open(t), envConfig{front: func(_ *openapitest.Server, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, seen := n.LoadOrStore(r.URL.Path, true); !seen {
				_, _ = w.Write([]byte(`{"result":"ok"}`)) // not taken, and no code
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	e.addInstance(t, "inst-unread", store.StatusActive)
	g := e.online(t, "inst-unread", "ev-unread")
	eventually(t, "the upload settled", func() bool {
		g = e.grant(t, g.ID)
		return g.State == store.GrantUploaded || g.State == store.GrantFailed
	})
	if g.State != store.GrantUploaded {
		t.Errorf("grant %s (%s), want uploaded", g.State, g.LastError)
	}
	us := e.uploads(t, g.ID)
	if len(us) != 2 || us[0].Outcome != grant.OutcomeRetry || us[0].HTTPStatus != 200 || us[0].Code != "" ||
		!strings.Contains(us[0].Message, "undecodable") || us[1].Outcome != grant.OutcomeAccepted || us[1].Code != "" {
		t.Errorf("attempts %+v", us)
	}
	if len(accepted(e.api, "ev-unread")) != 1 {
		t.Error("not uploaded once")
	}
}
