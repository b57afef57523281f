package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/store"
)

// GrantRetrier re-runs a generated license that gave up (package grant
// implements it): its generation or its upload to KooGallery is queued
// again. Retry returns an error wrapping store.ErrNotFound when there is no
// grant id, and one wrapping store.ErrConflict when the grant cannot be
// re-run in its current state (e.g. it is uploaded, or still running);
// the console answers them 404 and 409.
type GrantRetrier interface {
	Retry(ctx context.Context, id int64) error
}

// DeviceReleaser frees the seat of one device of a license code, for an
// operator whose customer replaced a machine (package license's Service
// implements it): the device must activate again to be served. device is
// the device hash the console lists. ReleaseDevice returns an error
// wrapping store.ErrNotFound when the code (code, test) is not recorded or
// the device is not one of its devices; the console answers it 404.
type DeviceReleaser interface {
	ReleaseDevice(ctx context.Context, code string, test bool, device string) error
}

// licenseEventsShown is how much of a license code's history the API and
// the console show: the newest entries.
const licenseEventsShown = defaultLimit

// licenses lists license codes by code, selected by the query parameters
// status, order, test, after and limit. next is the cursor of the
// following page, empty on the last one.
//
// Codes are keyed by (code, test) but paged by code alone: when a full
// page ends on a code that also exists with the other test flag, that twin
// is added to the page (one more than limit), since the next page starts
// after the code and would skip it.
func (c *core) licenses(ctx context.Context, q url.Values) (list []store.LicenseCode, next string, err error) {
	if err := singleValued(q, "status", "order", "test", "after", "limit"); err != nil {
		return nil, "", err
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.LicenseCodeFilter{Status: store.LicenseStatus(q.Get("status")), Limit: limit}
	switch f.Status {
	case "", store.LicenseActive, store.LicenseFrozen, store.LicenseReleased:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "status: want active, frozen or released")
	}
	if f.OrderID, err = textParam(q, "order"); err != nil {
		return nil, "", err
	}
	if f.AfterCode, err = textParam(q, "after"); err != nil {
		return nil, "", err
	}
	if f.Test, err = testParam(q); err != nil {
		return nil, "", err
	}
	list, err = c.store.LicenseCodes(ctx, f)
	if err != nil {
		return nil, "", c.internal("list license codes", err)
	}
	if len(list) < limit {
		return list, "", nil
	}
	last := list[len(list)-1]
	onPage := len(list) > 1 && list[len(list)-2].Code == last.Code
	if f.Test == nil && !onPage {
		twin, err := c.store.LicenseCode(ctx, last.Code, !last.Test)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, "", c.internal("get license code", err)
		case (f.Status == "" || twin.Status == f.Status) && (f.OrderID == "" || twin.OrderID == f.OrderID):
			list = append(list, twin)
		}
	}
	return list, last.Code, nil
}

// licenseData is one license code with its devices and newest history.
type licenseData struct {
	code    store.LicenseCode
	devices []store.LicenseDevice
	events  []store.LicenseEvent
}

// license returns the license code named by the path value code and the
// query parameter test (a test code, testFlag 1, lives apart from a real
// one of the same code), with its devices and its newest history.
func (c *core) license(ctx context.Context, code string, q url.Values) (licenseData, error) {
	var d licenseData
	if err := singleValued(q, "test"); err != nil {
		return d, err
	}
	if err := checkText("license code", code); err != nil {
		return d, err
	}
	t, err := testParam(q)
	if err != nil {
		return d, err
	}
	test := t != nil && *t
	d.code, err = c.store.LicenseCode(ctx, code, test)
	if errors.Is(err, store.ErrNotFound) {
		what := "license code "
		if test {
			what = "test license code "
		}
		return d, errorStatus(http.StatusNotFound, what+strconv.Quote(code)+" not found")
	}
	if err != nil {
		return d, c.internal("get license code", err)
	}
	if d.devices, err = c.store.LicenseDevices(ctx, code, test); err != nil {
		return d, c.internal("list devices of license code", err)
	}
	if d.events, err = c.store.LicenseEvents(ctx, code, test, licenseEventsShown); err != nil {
		return d, c.internal("list history of license code", err)
	}
	return d, nil
}

// grants lists generated licenses, newest first, selected by the query
// parameters kind, state, instance, before and limit.
func (c *core) grants(ctx context.Context, q url.Values) (list []store.LicenseGrant, next string, err error) {
	if err := singleValued(q, "kind", "state", "instance", "before", "limit"); err != nil {
		return nil, "", err
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return nil, "", badRequest(err)
	}
	f := store.LicenseGrantFilter{Kind: store.GrantKind(q.Get("kind")), State: store.GrantState(q.Get("state")), Limit: limit}
	switch f.Kind {
	case "", store.GrantOnline, store.GrantLegacy:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "kind: want online or legacy")
	}
	switch f.State {
	case "", store.GrantPending, store.GrantGenerated, store.GrantUploaded, store.GrantFailed:
	default:
		return nil, "", errorStatus(http.StatusBadRequest, "state: want pending, generated, uploaded or failed")
	}
	if f.InstanceID, err = textParam(q, "instance"); err != nil {
		return nil, "", err
	}
	if f.BeforeID, err = parseID("before", q.Get("before")); err != nil {
		return nil, "", badRequest(err)
	}
	list, err = c.store.LicenseGrants(ctx, f)
	if err != nil {
		return nil, "", c.internal("list license grants", err)
	}
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return list, next, nil
}

// grant returns the grant whose id is the decimal text idText, with its
// upload attempts, oldest first.
func (c *core) grant(ctx context.Context, idText string) (store.LicenseGrant, []store.LicenseUpload, error) {
	g, err := c.grantByID(ctx, idText)
	if err != nil {
		return g, nil, err
	}
	ups, err := c.store.LicenseUploads(ctx, g.ID)
	if err != nil {
		return g, nil, c.internal("list uploads of license grant", err)
	}
	return g, ups, nil
}

func (c *core) grantByID(ctx context.Context, idText string) (store.LicenseGrant, error) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return store.LicenseGrant{}, errorStatus(http.StatusNotFound, "license grant "+strconv.Quote(idText)+" not found")
	}
	g, err := c.store.LicenseGrantByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return g, errorStatus(http.StatusNotFound, "license grant "+strconv.FormatInt(id, 10)+" not found")
	}
	if err != nil {
		return g, c.internal("get license grant", err)
	}
	return g, nil
}

// retryGrant re-runs the grant whose id is idText through the retrier and
// returns the grant as it is afterwards.
func (c *core) retryGrant(ctx context.Context, idText string) (store.LicenseGrant, error) {
	if c.grantRetrier == nil {
		return store.LicenseGrant{}, errorStatus(http.StatusInternalServerError, "license grant retry is not available")
	}
	g, err := c.grantByID(ctx, idText)
	if err != nil {
		return g, err
	}
	name := "license grant " + strconv.FormatInt(g.ID, 10)
	err = c.grantRetrier.Retry(ctx, g.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.LicenseGrant{}, errorStatus(http.StatusNotFound, name+" not found")
	case errors.Is(err, store.ErrConflict):
		// Say the state the retrier refused, as it is now: it may have
		// changed since the read above.
		if now, rerr := c.store.LicenseGrantByID(ctx, g.ID); rerr == nil {
			g = now
		}
		return store.LicenseGrant{}, errorStatus(http.StatusConflict, name+" is "+string(g.State)+": only a failed grant can be retried")
	case err != nil:
		return store.LicenseGrant{}, c.internal("retry license grant", err)
	}
	c.log.Info("admin retried license grant", "grant_id", g.ID, "kind", g.Kind, "via", c.name)
	if g, err = c.store.LicenseGrantByID(ctx, g.ID); err != nil {
		return g, c.internal("get license grant", err)
	}
	return g, nil
}

// releaseDevice releases the device named by the path value device of the
// license code named by code and the query parameter test, through the
// releaser; it returns whether the code is a test code.
func (c *core) releaseDevice(ctx context.Context, code, device string, q url.Values) (test bool, err error) {
	if err := singleValued(q, "test"); err != nil {
		return false, err
	}
	if err := checkText("license code", code); err != nil {
		return false, err
	}
	t, err := testParam(q)
	if err != nil {
		return false, err
	}
	test = t != nil && *t
	if !isDeviceHash(device) {
		return test, errorStatus(http.StatusBadRequest, "device: want the 64 hexadecimal digits of a device hash, as the license code lists them")
	}
	if c.deviceReleaser == nil {
		return test, errorStatus(http.StatusInternalServerError, "license device release is not available")
	}
	what := "license code " + strconv.Quote(code)
	if test {
		what = "test " + what
	}
	if _, err := c.store.LicenseCode(ctx, code, test); errors.Is(err, store.ErrNotFound) {
		return test, errorStatus(http.StatusNotFound, what+" not found")
	} else if err != nil {
		return test, c.internal("get license code", err)
	}
	err = c.deviceReleaser.ReleaseDevice(ctx, code, test, device)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return test, errorStatus(http.StatusNotFound, "device "+device+" of "+what+" not found")
	case err != nil:
		return test, c.internal("release license device", err)
	}
	c.log.Info("admin released license device", "license", code, "test", test, "device", device, "via", c.name)
	return test, nil
}

// isDeviceHash reports whether s can be a device as the store keeps it:
// 64 lower-case hexadecimal digits.
func isDeviceHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// singleValued refuses a query that repeats one of names: which of two
// filters was meant is a guess the admin API does not make.
func singleValued(q url.Values, names ...string) error {
	for _, n := range names {
		if len(q[n]) > 1 {
			return errorStatus(http.StatusBadRequest, n+": given more than once")
		}
	}
	return nil
}

// textParam returns the query parameter name after checkText.
func textParam(q url.Values, name string) (string, error) {
	v := q.Get(name)
	return v, checkText(name, v)
}

// checkText refuses text no license code, order or instance ID can be:
// invalid UTF-8 or control characters (NUL among them, which PostgreSQL
// would refuse with an internal error).
func checkText(name, v string) error {
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return errorStatus(http.StatusBadRequest, name+": invalid UTF-8 or control characters")
	}
	return nil
}

// testParam reads the test filter: nil when absent.
func testParam(q url.Values) (*bool, error) {
	v := q.Get("test")
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, errorStatus(http.StatusBadRequest, "test: want true or false")
	}
	return &b, nil
}
