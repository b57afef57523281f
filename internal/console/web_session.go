package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	sessionCookie = "koobridge_admin"
	sessionTTL    = 12 * time.Hour
	maxFormBytes  = 64 << 10
)

// Domain labels keep the cookie MAC and the CSRF token apart although both
// are keyed by the admin token: a page shows the CSRF token, and it must
// never be the cookie's MAC.
const (
	sessionLabel = "koobridge console session\x00"
	csrfLabel    = "koobridge console csrf\x00"
)

// session is a verified login. The zero session is "not logged in".
type session struct {
	id      string
	expires time.Time
}

func (w *web) mac(label, msg string) string {
	m := hmac.New(sha256.New, w.token)
	m.Write([]byte(label))
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession makes a session id: 128 random bits and the expiry, so an
// old cookie stops working even if the browser keeps it.
func (w *web) newSession() (session, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return session{}, err
	}
	exp := w.now().Add(sessionTTL).Truncate(time.Second)
	return session{id: hex.EncodeToString(b[:]) + "-" + strconv.FormatInt(exp.Unix(), 10), expires: exp}, nil
}

// cookieValue is "sessionid.mac": the token itself is never in the cookie.
func (w *web) cookieValue(s session) string { return s.id + "." + w.mac(sessionLabel, s.id) }

// session returns the request's verified session, or the zero session.
func (w *web) session(r *http.Request) session {
	if len(w.token) == 0 {
		return session{} // an empty key would make every MAC forgeable
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}
	}
	id, mac, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(w.mac(sessionLabel, id))) {
		return session{}
	}
	_, expText, ok := strings.Cut(id, "-")
	if !ok {
		return session{}
	}
	unix, err := strconv.ParseInt(expText, 10, 64)
	if err != nil {
		return session{}
	}
	s := session{id: id, expires: time.Unix(unix, 0)}
	if !w.now().Before(s.expires) || w.sessions.isRevoked(s.id) {
		return session{}
	}
	return s
}

// csrfToken is the HMAC of the session id that every POST form carries.
func (w *web) csrfToken(s session) string {
	if s.id == "" {
		return ""
	}
	return w.mac(csrfLabel, s.id)
}

func (w *web) setCookie(rw http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(rw, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/admin/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || w.secureCookie,
	})
}

// page guards a GET page: without a session the browser goes to the login.
func (w *web) page(h func(http.ResponseWriter, *http.Request, session)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s := w.session(r)
		if s.id == "" {
			http.Redirect(rw, r, "/admin/login", http.StatusSeeOther)
			return
		}
		h(rw, r, s)
	})
}

// post guards a state-changing form: it needs a session and that session's
// CSRF token, else 403.
func (w *web) post(h func(http.ResponseWriter, *http.Request, session)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s := w.session(r)
		if s.id == "" {
			w.renderError(rw, s, http.StatusForbidden, "not logged in")
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, maxFormBytes)
		got := r.PostFormValue("csrf")
		if got == "" || !hmac.Equal([]byte(got), []byte(w.csrfToken(s))) {
			w.renderError(rw, s, http.StatusForbidden, "missing or invalid CSRF token: reload the page and try again")
			return
		}
		h(rw, r, s)
	})
}

type loginPage struct {
	base
	Wrong bool
}

func (w *web) loginForm(rw http.ResponseWriter, r *http.Request) {
	if w.session(r).id != "" {
		http.Redirect(rw, r, "/admin/", http.StatusSeeOther)
		return
	}
	w.render(rw, http.StatusOK, "login", loginPage{base: base{Title: "Log in"}})
}

// login compares the submitted token with the admin token in constant
// time; hashing first hides the token's length too.
func (w *web) login(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, maxFormBytes)
	got := sha256.Sum256([]byte(r.PostFormValue("token")))
	want := sha256.Sum256(w.token)
	if len(w.token) == 0 || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		w.log.Warn("admin console: failed login", "remote", r.RemoteAddr)
		w.render(rw, http.StatusUnauthorized, "login", loginPage{base: base{Title: "Log in"}, Wrong: true})
		return
	}
	s, err := w.newSession()
	if err != nil {
		w.fail(rw, session{}, w.internal("new session", err))
		return
	}
	w.setCookie(rw, r, w.cookieValue(s), int(sessionTTL/time.Second))
	w.log.Info("admin console: login", "remote", r.RemoteAddr)
	http.Redirect(rw, r, "/admin/", http.StatusSeeOther)
}

func (w *web) logout(rw http.ResponseWriter, r *http.Request, s session) {
	w.sessions.revoke(s, w.now())
	w.setCookie(rw, r, "", -1)
	http.Redirect(rw, r, "/admin/login", http.StatusSeeOther)
}

func (ss *sessions) revoke(s session, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, exp := range ss.revoked {
		if !now.Before(exp) {
			delete(ss.revoked, id) // expired anyway
		}
	}
	ss.revoked[s.id] = s.expires
}

func (ss *sessions) isRevoked(id string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.revoked[id]
	return ok
}
