package mockapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// License Open API paths (license-openapi.md §A.8, §E.1), written here
// rather than taken from koobridge's client, like QueryOrderPath.
const (
	LicenseActivatePath   = "/api/mkp-openapi-public/global/v1/license/activate"
	LicenseActivateV2Path = "/api/mkp-openapi-public/global/v2/license/activate"
	LicenseQueryPath      = "/api/mkp-openapi-public/global/v1/license/heartbeat"
	LicenseQueryV2Path    = "/api/mkp-openapi-public/global/v2/license/heartbeat"
	SoftwareUsagePath     = "/api/mkp-openapi-public/global/v2/license/software-usage-info"
)

// Which API version a license record came from.
const (
	LicenseAPIV1 = "v1"
	LicenseAPIV2 = "v2"
)

// MaxLicenseRecords is how many activations, queries, usage entries and
// license applications each list remembers; older ones are forgotten
// (uploads: MaxLicenseUploads).
const MaxLicenseRecords = 10000

// maxBatch is the most codes (or usage entries) one v2 request may carry.
const maxBatch = 100

// effectSkew is how far a real_effect_time may stray, on the handler's
// clock, before it is refused: earlier than the code's issue, or later
// than now (the seller's clock is not the marketplace's). A time that is
// not UTC is caught when it is more than that off: a UTC+8 seller's local
// time sent as UTC is 8 hours later than now, a UTC−5 one's before the
// issue of a code issued less than 5 hours ago.
const effectSkew = 15 * time.Minute

// LicenseCode is a license code as KooGallery holds it (license-openapi.md
// §A.1): issued with a purchase (or as a test code, §A.7), activated once
// by the seller's software, then queried.
type LicenseCode struct {
	Code      string    `json:"code"`
	ProductID string    `json:"productId"`
	OrderID   string    `json:"orderId"`
	Amount    int       `json:"amount"`
	Expire    time.Time `json:"expireTime"`
	// Status is protocol.LicenseStatusAlive, Expired or Released as
	// KooGallery set it. Listed and queried, an ALIVE code past its
	// expiry (by the license clock, plus ClockAhead) reads EXPIRED.
	Status string `json:"status"`
	// Test marks a test license code (§A.7): no order, editable validity.
	Test bool `json:"test,omitempty"`
	// Undelivered marks a code the buyer has not received yet: activating
	// it answers 92020004.
	Undelivered bool      `json:"undelivered,omitempty"`
	IssuedAt    time.Time `json:"issuedAt"` // by the license clock
	// ClockAhead is how far the code's own clock runs ahead of the
	// license clock (nanoseconds in JSON): the emulator's subscriptions
	// each have a clock, which their expire and release scenarios move
	// alone. Its expiry is judged at the license clock's now plus this.
	ClockAhead time.Duration `json:"clockAhead,omitempty"`
	// Activated and Checked are the console's 已激活 and 已检测: an
	// activation succeeded, a query answered 92020000.
	Activated      bool      `json:"activated"`
	ActivatedAt    time.Time `json:"activatedAt,omitzero"`
	RealEffectTime string    `json:"realEffectTime,omitempty"`
	Checked        bool      `json:"checked"`
	LastCheckedAt  time.Time `json:"lastCheckedAt,omitzero"`
	Queries        int       `json:"queries"` // queries answered 92020000

	// issuedWall is when the code was issued by the handler's clock (the
	// one the seller's signatures are checked against), for the
	// real_effect_time check.
	issuedWall time.Time
}

// statusAt is the status a query answers at now.
func (c LicenseCode) statusAt(now time.Time) string {
	if c.Status == protocol.LicenseStatusAlive && !c.Expire.IsZero() && now.Add(c.ClockAhead).After(c.Expire) {
		return protocol.LicenseStatusExpired
	}
	return c.Status
}

// LicenseActivation is one license code named in an activate request,
// with the error_code answered.
type LicenseActivation struct {
	At             time.Time `json:"at"`
	API            string    `json:"api"` // LicenseAPIV1 or LicenseAPIV2
	License        string    `json:"license"`
	RealEffectTime string    `json:"realEffectTime,omitempty"`
	Code           string    `json:"code"`
}

// LicenseQuery is one license code named in a query (heartbeat) request.
type LicenseQuery struct {
	At      time.Time `json:"at"`
	API     string    `json:"api"`
	License string    `json:"license"`
	Code    string    `json:"code"`
	Status  string    `json:"status,omitempty"` // answered with 92020000
	// HeartbeatInfo reports the deprecated heartbeatInfo was sent (its
	// account and address are not kept).
	HeartbeatInfo bool `json:"heartbeatInfo,omitempty"`
}

// LicenseUsage is one entry of a software-usage-info request.
type LicenseUsage struct {
	At      time.Time                    `json:"at"`
	License string                       `json:"license"`
	Items   []protocol.SoftwareUsageItem `json:"items"`
	// Accepted is false for an entry that failed the check (unknown or
	// not activated code), listed in check_fail_license_list.
	Accepted bool `json:"accepted"`
}

// licenseState is the license side of a Handler, guarded by Handler.mu.
type licenseState struct {
	// now is the license clock (SetLicenseClock); nil means the handler's.
	now         func() time.Time
	codes       map[string]*LicenseCode
	order       []string // codes, oldest first
	activations ring[LicenseActivation]
	queries     ring[LicenseQuery]
	usage       ring[LicenseUsage]
	uploads     ring[LicenseUpload]
	events      map[string]*LicenseEvent
	eventOrder  []string
	// fault is the license endpoints' own fault (SetLicenseFault), left
	// the requests it still affects when fault.Count > 0.
	fault Fault
	left  int
	// failUploads uploads still to fail, with failCode (SetUploadFailures).
	failUploads int
	failCode    string
}

func newLicenseState() licenseState {
	return licenseState{
		codes:       make(map[string]*LicenseCode),
		activations: newRing[LicenseActivation](MaxLicenseRecords),
		queries:     newRing[LicenseQuery](MaxLicenseRecords),
		usage:       newRing[LicenseUsage](MaxLicenseRecords),
		uploads:     newRing[LicenseUpload](MaxLicenseUploads),
		events:      make(map[string]*LicenseEvent),
	}
}

// isLicensePath reports whether path is one of the license-code APIs.
func isLicensePath(path string) bool {
	switch path {
	case LicenseActivatePath, LicenseActivateV2Path, LicenseQueryPath, LicenseQueryV2Path, SoftwareUsagePath:
		return true
	}
	return false
}

// SetLicenseClock sets the clock of license state: when codes are issued,
// activated and checked, when they expire, and the time of every license
// record. Default: the handler's clock (SetClock). The emulator passes
// its emulated clock, on which its expiries are set. now is called
// without the handler's lock held, so it may call the handler.
func (h *Handler) SetLicenseClock(now func() time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lic.now = now
}

// licenseNow reads the license clock; call it without h.mu held.
func (h *Handler) licenseNow() time.Time {
	h.mu.Lock()
	now := h.lic.now
	if now == nil {
		now = h.now
	}
	h.mu.Unlock()
	return now().UTC()
}

// IssueLicense registers a license code as issued: ALIVE, not yet
// activated, with its expiry, product, order and amount (license-openapi.md
// §A.1; KooGallery makes one per purchased license resource). An empty
// Status means ALIVE and an Amount below 1 means 1; IssuedAt is set to now
// by the license clock when zero. A code issued again replaces the first,
// activation included. The code must be 1 to 64 characters.
func (h *Handler) IssueLicense(c LicenseCode) error {
	if c.Code == "" || len([]rune(c.Code)) > 64 {
		return fmt.Errorf("mockapi: issue license: code %q: want 1 to 64 characters", c.Code)
	}
	switch c.Status {
	case "":
		c.Status = protocol.LicenseStatusAlive
	case protocol.LicenseStatusAlive, protocol.LicenseStatusExpired, protocol.LicenseStatusReleased:
	default:
		return fmt.Errorf("mockapi: issue license %s: status %q: want ALIVE, EXPIRED or RELEASED", c.Code, c.Status)
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = h.licenseNow()
	}
	c.Amount = max(c.Amount, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	c.issuedWall = h.now()
	if _, ok := h.lic.codes[c.Code]; !ok {
		h.lic.order = append(h.lic.order, c.Code)
	}
	h.lic.codes[c.Code] = &c
	return nil
}

// UpdateLicense changes a code in place with fn and returns it as changed;
// false when the code is unknown. fn runs with the handler's lock held and
// must not call the handler. A Status fn leaves empty or unknown is not
// checked: set one of the protocol.LicenseStatus* values.
func (h *Handler) UpdateLicense(code string, fn func(c *LicenseCode)) (LicenseCode, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.lic.codes[code]
	if !ok {
		return LicenseCode{}, false
	}
	fn(c)
	return *c, true
}

// License returns one code, its Status as a query would answer it now.
func (h *Handler) License(code string) (LicenseCode, bool) {
	now := h.licenseNow()
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.lic.codes[code]
	if !ok {
		return LicenseCode{}, false
	}
	out := *c
	out.Status = c.statusAt(now)
	return out, true
}

// Licenses lists the codes, oldest first, with Status as a query would
// answer it now.
func (h *Handler) Licenses() []LicenseCode {
	now := h.licenseNow()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]LicenseCode, 0, len(h.lic.order))
	for _, code := range h.lic.order {
		c := *h.lic.codes[code]
		c.Status = c.statusAt(now)
		out = append(out, c)
	}
	return out
}

// LicenseActivations lists the codes named in activate requests, oldest
// first (the last MaxLicenseRecords).
func (h *Handler) LicenseActivations() []LicenseActivation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lic.activations.list()
}

// LicenseQueries lists the codes named in query requests, oldest first.
func (h *Handler) LicenseQueries() []LicenseQuery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lic.queries.list()
}

// LicenseUsage lists the software-usage-info entries received, oldest
// first.
func (h *Handler) LicenseUsage() []LicenseUsage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lic.usage.list()
}

// SetLicenseFault switches f on for the license endpoints only (activate,
// query, software-usage-info and the upload): the next f.Count requests,
// all when 0; f.Path is ignored. Status may be 200 as well as an error
// status: with Code empty, 200, 403 and 5xx answer 92020001 (CBC.0999 on
// the upload), 401 APIGW.0301, 429 APIG.0308 and other statuses 92020002
// (CBC.0101 on the upload). SetLicenseFault(Fault{}) switches it off. A
// fault set with SetFault takes precedence.
func (h *Handler) SetLicenseFault(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.Path = ""
	h.lic.fault, h.lic.left = f, f.Count
}

// takeLicenseFault returns the license fault for a request to path,
// counting it; guarded by h.mu.
func (h *Handler) takeLicenseFaultLocked(path string) Fault {
	f := h.lic.fault
	if !f.active() || !isLicensePath(path) && !isUploadPath(path) {
		return Fault{}
	}
	if f.Count > 0 {
		h.lic.left--
		if h.lic.left <= 0 {
			h.lic.fault = Fault{}
		}
	}
	return f
}

// licenseFaultBody is the error_code/error_msg a license fault answers.
func licenseFaultBody(f Fault, path string) gatewayError {
	if f.Code != "" {
		msg := "fault"
		if info, ok := protocol.LookupOpenAPICode(f.Code); ok {
			msg = info.Meaning
		}
		return gatewayError{f.Code, msg}
	}
	upload := isUploadPath(path)
	switch {
	case f.Status == http.StatusUnauthorized:
		return gatewayError{protocol.APIGWAuthFailed, "Incorrect IAM authentication information: verify aksk signature fail"}
	case f.Status == http.StatusTooManyRequests:
		return gatewayError{protocol.APIGThrottled, "The throttling threshold has been reached"}
	case upload && (f.Status == http.StatusOK || f.Status >= 500 || f.Status == http.StatusForbidden):
		return gatewayError{protocol.CBCInternalError, "internal error"}
	case upload:
		return gatewayError{protocol.CBCInvalidParam, "invalid parameter"}
	case f.Status == http.StatusForbidden:
		return gatewayError{protocol.LicenseInternalError, "Unauthorized"}
	case f.Status == http.StatusOK || f.Status >= 500:
		return gatewayError{protocol.LicenseInternalError, "internal error"}
	}
	return gatewayError{protocol.LicenseInvalidParam, "invalid parameter"}
}

// licenseStatus is the HTTP status the imitation answers a license code
// with: the table's, else 400 for the business errors whose status the
// table leaves blank (92020003 and the like). A client must read the code,
// not the status (license-openapi.md Addenda).
func licenseStatus(code string) int {
	if info, ok := protocol.LookupOpenAPICode(code); ok && info.HTTPStatus != 0 {
		return info.HTTPStatus
	}
	return http.StatusBadRequest
}

// licenseFail is a license API refusal.
type licenseFail struct{ code, msg string }

func (f *licenseFail) write(w http.ResponseWriter) {
	writeJSON(w, licenseStatus(f.code), gatewayError{f.code, f.msg})
}

func lfail(code, format string, args ...any) *licenseFail {
	return &licenseFail{code: code, msg: fmt.Sprintf(format, args...)}
}

// decodeLicenseBody checks the method and Content-Type of a license
// request and decodes its JSON body into v: a method other than POST is
// 95000002, another content type 95000003, a body that is not one JSON
// object 95000004, a field of the wrong JSON type 95000001. Validation
// (92020002) is the caller's.
func decodeLicenseBody(r *http.Request, body []byte, v any) *licenseFail {
	if r.Method != http.MethodPost {
		return lfail(protocol.LicenseMethodNotSupported, "HTTP method %s not supported; use POST", r.Method)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return lfail(protocol.LicenseContentTypeNotSupported, "content type %q not supported; use application/json", r.Header.Get("Content-Type"))
	}
	if len(strings.TrimSpace(string(body))) == 0 || strings.TrimSpace(string(body))[0] != '{' {
		return lfail(protocol.LicenseBodyNotReadable, "request body not readable: want a JSON object")
	}
	if err := decodeStrict(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return lfail(protocol.LicenseRequestInvalid, "request parameter invalid: %s has the wrong JSON type (%s)", te.Field, te.Value)
		}
		return lfail(protocol.LicenseBodyNotReadable, "request body not readable: %v", err)
	}
	return nil
}

// serveLicense answers a license-code API request whose gateway checks
// have passed.
func (h *Handler) serveLicense(w http.ResponseWriter, r *http.Request, body []byte) {
	now := h.licenseNow()
	switch r.URL.Path {
	case LicenseActivatePath:
		h.activate(w, r, body, now)
	case LicenseActivateV2Path:
		h.activateV2(w, r, body, now)
	case LicenseQueryPath:
		h.query(w, r, body, now)
	case LicenseQueryV2Path:
		h.queryV2(w, r, body, now)
	case SoftwareUsagePath:
		h.softwareUsage(w, r, body, now)
	}
}

// validation turns a protocol validation error into 92020002.
func validation(err error) *licenseFail {
	return lfail(protocol.LicenseInvalidParam, "invalid parameter: %v", err)
}

// checkActivatableLocked says why c cannot be activated, or nil.
func (h *Handler) checkActivatableLocked(code string, now time.Time, effect string) *licenseFail {
	c, ok := h.lic.codes[code]
	switch {
	case !ok:
		return lfail(protocol.LicenseNotFound, "license code does not exist: %s", code)
	case c.Activated:
		return lfail(protocol.LicenseIllegalState, "illegal state: license code %s is already activated; do not activate it again", code)
	case c.statusAt(now) != protocol.LicenseStatusAlive:
		return lfail(protocol.LicenseIllegalState, "illegal state: license code %s is %s", code, c.statusAt(now))
	case c.Undelivered:
		return lfail(protocol.LicenseNotReceived, "license code %s has not been received by the user yet", code)
	}
	if effect != "" {
		// Validate has checked the format.
		t, _ := protocol.ParseTime14(effect)
		switch {
		case t.Before(c.issuedWall.Truncate(time.Second).Add(-effectSkew)):
			return lfail(protocol.LicenseInvalidParam, "invalid parameter real_effect_time: %s is earlier than the order time (UTC expected)", effect)
		case t.After(h.now().Add(effectSkew)):
			return lfail(protocol.LicenseInvalidParam, "invalid parameter real_effect_time: %s is later than now (UTC expected)", effect)
		}
	}
	return nil
}

// activateLocked marks code activated at now.
func (h *Handler) activateLocked(code string, now time.Time, effect string) *LicenseCode {
	c := h.lic.codes[code]
	c.Activated, c.ActivatedAt, c.RealEffectTime = true, now, effect
	return c
}

func (h *Handler) activate(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req protocol.LicenseActivateRequest
	if fail := decodeLicenseBody(r, body, &req); fail != nil {
		fail.write(w)
		return
	}
	if err := req.Validate(); err != nil {
		h.recordActivations(LicenseAPIV1, []string{req.License}, req.RealEffectTime, protocol.LicenseInvalidParam, now)
		validation(err).write(w)
		return
	}
	h.mu.Lock()
	fail := h.checkActivatableLocked(req.License, now, req.RealEffectTime)
	var info protocol.LicenseCodeInfo
	if fail == nil {
		c := h.activateLocked(req.License, now, req.RealEffectTime)
		info = protocol.LicenseCodeInfo{
			Status:     protocol.LicenseStatusAlive,
			ExpireTime: protocol.FlexString(time14(c.Expire)),
			ProductID:  protocol.FlexString(c.ProductID),
			OrderID:    protocol.FlexString(c.OrderID),
			Amount:     protocol.FlexNumber(fmt.Sprint(c.Amount)),
		}
	}
	h.mu.Unlock()
	code := protocol.LicenseSuccess
	if fail != nil {
		code = fail.code
	}
	h.recordActivations(LicenseAPIV1, []string{req.License}, req.RealEffectTime, code, now)
	if fail != nil {
		fail.write(w)
		return
	}
	text, _ := json.Marshal(info) // strings and a number always encode
	writeJSON(w, http.StatusOK, protocol.LicenseActivateResponse{
		ErrorCode: protocol.LicenseSuccess, ErrorMsg: "success",
		Data: &protocol.LicenseActivateData{LicenseCodeInfo: protocol.FlexString(text)},
	})
}

// activateV2 activates a batch all or nothing: an unknown code makes the
// batch 92020020, an already active (or expired, released, undelivered)
// one 92020003 (92020004), naming the codes; nothing is activated then.
// The answer has only error_code and error_msg (whether KooGallery adds
// per-code results is UNCONFIRMED).
func (h *Handler) activateV2(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req protocol.LicenseActivateV2Request
	if fail := decodeLicenseBody(r, body, &req); fail != nil {
		fail.write(w)
		return
	}
	if err := req.Validate(); err != nil {
		h.recordActivations(LicenseAPIV2, req.LicenseList, req.RealEffectTime, protocol.LicenseInvalidParam, now)
		validation(err).write(w)
		return
	}
	if dup := duplicateIn(req.LicenseList); dup != "" {
		h.recordActivations(LicenseAPIV2, req.LicenseList, req.RealEffectTime, protocol.LicenseInvalidParam, now)
		lfail(protocol.LicenseInvalidParam, "invalid parameter license_list: %s appears twice", dup).write(w)
		return
	}
	h.mu.Lock()
	var unknown, refused []string
	var first *licenseFail
	for _, code := range req.LicenseList {
		fail := h.checkActivatableLocked(code, now, req.RealEffectTime)
		switch {
		case fail == nil:
		case fail.code == protocol.LicenseNotFound:
			unknown = append(unknown, code)
		default:
			refused = append(refused, code)
			if first == nil {
				first = fail
			}
		}
	}
	var fail *licenseFail
	switch {
	case len(unknown) > 0:
		fail = lfail(protocol.LicenseInvalidInBatch, "invalid license code exists: %s", strings.Join(unknown, ","))
	case len(refused) > 1:
		fail = lfail(first.code, "%s (and %d more: %s)", first.msg, len(refused)-1, strings.Join(refused[1:], ","))
	case len(refused) == 1:
		fail = first
	default:
		for _, code := range req.LicenseList {
			h.activateLocked(code, now, req.RealEffectTime)
		}
	}
	h.mu.Unlock()
	code := protocol.LicenseSuccess
	if fail != nil {
		code = fail.code
	}
	h.recordActivations(LicenseAPIV2, req.LicenseList, req.RealEffectTime, code, now)
	if fail != nil {
		fail.write(w)
		return
	}
	writeJSON(w, http.StatusOK, gatewayError{protocol.LicenseSuccess, "success"})
}

// duplicateIn returns a value that appears twice in list, or "".
func duplicateIn(list []string) string {
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	return ""
}

func (h *Handler) recordActivations(api string, codes []string, effect, code string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range codes {
		h.lic.activations.add(LicenseActivation{At: now, API: api, License: c, RealEffectTime: effect, Code: code})
	}
}

// infoLocked is what a query answers for code, or why it refuses: an
// unknown code is 92020005, one never activated 92020011. A success marks
// the code checked.
func (h *Handler) infoLocked(code string, now time.Time) (protocol.LicenseInfo, *licenseFail) {
	c, ok := h.lic.codes[code]
	switch {
	case !ok:
		return protocol.LicenseInfo{}, lfail(protocol.LicenseNotFound, "license code does not exist: %s", code)
	case !c.Activated:
		return protocol.LicenseInfo{}, lfail(protocol.LicenseNotActivated, "license code not activated: %s", code)
	}
	c.Checked, c.LastCheckedAt = true, now
	c.Queries++
	return protocol.LicenseInfo{
		LicenseCode:  c.Code,
		Status:       c.statusAt(now),
		ActivateTime: time14(c.ActivatedAt),
		ExpireTime:   time14(c.Expire),
	}, nil
}

func (h *Handler) query(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req protocol.LicenseQueryRequest
	if fail := decodeLicenseBody(r, body, &req); fail != nil {
		fail.write(w)
		return
	}
	rec := LicenseQuery{At: now, API: LicenseAPIV1, License: req.License, HeartbeatInfo: req.HeartbeatInfo != nil}
	if err := req.Validate(); err != nil {
		rec.Code = protocol.LicenseInvalidParam
		h.recordQueries(rec)
		validation(err).write(w)
		return
	}
	h.mu.Lock()
	info, fail := h.infoLocked(req.License, now)
	h.mu.Unlock()
	if fail != nil {
		rec.Code = fail.code
		h.recordQueries(rec)
		fail.write(w)
		return
	}
	rec.Code, rec.Status = protocol.LicenseSuccess, info.Status
	h.recordQueries(rec)
	writeJSON(w, http.StatusOK, protocol.LicenseQueryResponse{ErrorCode: protocol.LicenseSuccess, ErrorMsg: "success", Data: &info})
}

// licenseListRequest is the v2 (batch) query body; its shape is
// UNCONFIRMED (license-openapi.md §A.8.2), read like v2 activate's.
type licenseListRequest struct {
	LicenseList []string `json:"license_list"`
}

// queryV2Response is the v2 query answer: data is the list of LicenseInfo,
// in the order of license_list (UNCONFIRMED shape).
type queryV2Response struct {
	ErrorCode string                 `json:"error_code"`
	ErrorMsg  string                 `json:"error_msg"`
	Data      []protocol.LicenseInfo `json:"data,omitempty"`
}

// queryV2 answers a batch query all or nothing: an unknown code makes it
// 92020020, a code not activated 92020011, naming the codes.
func (h *Handler) queryV2(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req licenseListRequest
	if fail := decodeLicenseBody(r, body, &req); fail != nil {
		fail.write(w)
		return
	}
	var fail *licenseFail
	switch {
	case len(req.LicenseList) == 0:
		fail = lfail(protocol.LicenseInvalidParam, "invalid parameter license_list: missing")
	case len(req.LicenseList) > maxBatch:
		fail = lfail(protocol.LicenseInvalidParam, "invalid parameter license_list: more than %d license codes", maxBatch)
	case duplicateIn(req.LicenseList) != "":
		fail = lfail(protocol.LicenseInvalidParam, "invalid parameter license_list: %s appears twice", duplicateIn(req.LicenseList))
	}
	for i, code := range req.LicenseList {
		if fail == nil && (strings.TrimSpace(code) == "" || len([]rune(code)) > 64) {
			fail = lfail(protocol.LicenseInvalidParam, "invalid parameter license_list[%d]: want 1 to 64 characters", i)
		}
	}
	var infos []protocol.LicenseInfo
	if fail == nil {
		h.mu.Lock()
		var unknown, inactive []string
		for _, code := range req.LicenseList {
			c, ok := h.lic.codes[code]
			switch {
			case !ok:
				unknown = append(unknown, code)
			case !c.Activated:
				inactive = append(inactive, code)
			}
		}
		switch {
		case len(unknown) > 0:
			fail = lfail(protocol.LicenseInvalidInBatch, "invalid license code exists: %s", strings.Join(unknown, ","))
		case len(inactive) > 0:
			fail = lfail(protocol.LicenseNotActivated, "license code not activated: %s", strings.Join(inactive, ","))
		default:
			for _, code := range req.LicenseList {
				info, _ := h.infoLocked(code, now)
				infos = append(infos, info)
			}
		}
		h.mu.Unlock()
	}
	for i, code := range req.LicenseList {
		rec := LicenseQuery{At: now, API: LicenseAPIV2, License: code, Code: protocol.LicenseSuccess}
		if fail != nil {
			rec.Code = fail.code
		} else {
			rec.Status = infos[i].Status
		}
		h.recordQueries(rec)
	}
	if fail != nil {
		fail.write(w)
		return
	}
	writeJSON(w, http.StatusOK, queryV2Response{ErrorCode: protocol.LicenseSuccess, ErrorMsg: "success", Data: infos})
}

func (h *Handler) recordQueries(recs ...LicenseQuery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range recs {
		h.lic.queries.add(r)
	}
}

// softwareUsageResponse is the software-usage-info answer: the codes of
// the entries that failed the check (unknown, or never activated) in
// data.check_fail_license_list (the field's full name is UNCONFIRMED).
type softwareUsageResponse struct {
	ErrorCode string            `json:"error_code"`
	ErrorMsg  string            `json:"error_msg"`
	Data      softwareUsageData `json:"data"`
}

type softwareUsageData struct {
	CheckFailLicenseList []string `json:"check_fail_license_list"`
}

// softwareUsage records every entry of a valid body; entries for unknown
// or not activated codes are recorded as not accepted and listed in the
// answer, which is 92020000 all the same.
func (h *Handler) softwareUsage(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req protocol.SoftwareUsageInfoRequest
	if fail := decodeLicenseBody(r, body, &req); fail != nil {
		fail.write(w)
		return
	}
	if err := req.Validate(); err != nil {
		validation(err).write(w)
		return
	}
	failed := []string{}
	h.mu.Lock()
	for _, e := range req.UsageInfo {
		c, ok := h.lic.codes[e.License]
		accepted := ok && c.Activated
		if !accepted && !slices.Contains(failed, e.License) {
			failed = append(failed, e.License)
		}
		h.lic.usage.add(LicenseUsage{At: now, License: e.License, Items: slices.Clone(e.SoftwareUsageInfo), Accepted: accepted})
	}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, softwareUsageResponse{ErrorCode: protocol.LicenseSuccess, ErrorMsg: "success",
		Data: softwareUsageData{CheckFailLicenseList: failed}})
}

// time14 formats t as yyyyMMddHHmmss, or "" for the zero time.
func time14(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return protocol.FormatTime14(t)
}
