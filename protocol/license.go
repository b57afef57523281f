package protocol

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// RefreshLicenseCodeRequest is refreshLicenseCode (license codes 2.0): a
// code's expiry moves because of a renewal or an unsubscribed renewal period.
type RefreshLicenseCodeRequest struct {
	ActivityName string `json:"activity"`
	ExpireTime   string `json:"expireTime"`
	License      string `json:"license"`
	OrderID      string `json:"orderId"`
	OrderLineID  string `json:"orderLineId"`
	ProductID    string `json:"productId,omitempty"`
	Scene        string `json:"scene"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityRefreshLicenseCode.
func (RefreshLicenseCodeRequest) Activity() string { return ActivityRefreshLicenseCode }

// IsTest reports whether testFlag is "1".
func (r RefreshLicenseCodeRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Expiry parses ExpireTime (documented yyyyMMddHHmmss; 17 digits accepted too).
func (r RefreshLicenseCodeRequest) Expiry() (time.Time, error) { return ParseExpireTime(r.ExpireTime) }

// Validate checks the request against the refreshLicenseCode table. The
// table lists RENEWAL and UNSUBSCRIBE_RENEWAL_PERIOD, but productId is
// documented for trial-to-formal too, so any non-empty scene is accepted.
func (r RefreshLicenseCodeRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityRefreshLicenseCode, maxActivity)
	c.required("scene", r.Scene, 64)
	c.required("orderId", r.OrderID, 64)
	c.required("orderLineId", r.OrderLineID, 64)
	c.required("license", r.License, 64)
	c.optional("productId", r.ProductID, 64)
	c.required("expireTime", r.ExpireTime, 20)
	c.timeFormat("expireTime", r.ExpireTime, ParseExpireTime, problemExpireTime)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// UpdateLicenseCodeStatusRequest is updateLicenseCodeStatus: FREEZE or UNFREEZE a code.
type UpdateLicenseCodeStatusRequest struct {
	ActivityName string `json:"activity"`
	License      string `json:"license"`
	Status       string `json:"status"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityUpdateLicenseCodeStatus.
func (UpdateLicenseCodeStatusRequest) Activity() string { return ActivityUpdateLicenseCodeStatus }

// IsTest reports whether testFlag is "1".
func (r UpdateLicenseCodeStatusRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the updateLicenseCodeStatus table.
func (r UpdateLicenseCodeStatusRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityUpdateLicenseCodeStatus, 32)
	c.required("license", r.License, 64)
	c.required("status", r.Status, 32)
	c.oneOf("status", r.Status, StatusFreeze, StatusUnfreeze)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// ReleaseLicenseCodeRequest is releaseLicenseCode.
type ReleaseLicenseCodeRequest struct {
	ActivityName string `json:"activity"`
	License      string `json:"license"`
	OrderID      string `json:"orderId,omitempty"`
	OrderLineID  string `json:"orderLineId,omitempty"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityReleaseLicenseCode.
func (ReleaseLicenseCodeRequest) Activity() string { return ActivityReleaseLicenseCode }

// IsTest reports whether testFlag is "1".
func (r ReleaseLicenseCodeRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the releaseLicenseCode table.
func (r ReleaseLicenseCodeRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityReleaseLicenseCode, 32)
	c.required("license", r.License, 64)
	c.optional("orderId", r.OrderID, 64)
	c.optional("orderLineId", r.OrderLineID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// DecodeLicense decodes a license-code 2.0 body (refreshLicenseCode,
// updateLicenseCodeStatus, releaseLicenseCode). The body is read as
// strictly as by DecodeV2 and errors are as for DecodeV2; it does not call
// Validate.
func DecodeLicense(body []byte) (V2Request, error) {
	m, err := decodeFields(body, "license body", nil)
	if err != nil {
		return nil, err
	}
	a, err := m.str("activity")
	if err != nil {
		return nil, err
	}
	switch a {
	case ActivityRefreshLicenseCode:
		return decodeInto[RefreshLicenseCodeRequest](m)
	case ActivityUpdateLicenseCodeStatus:
		return decodeInto[UpdateLicenseCodeStatusRequest](m)
	case ActivityReleaseLicenseCode:
		return decodeInto[ReleaseLicenseCodeRequest](m)
	default:
		return nil, unknownActivity(a)
	}
}

// GetLicenseAsyncRequest is getLicenseAsync (online license): the buyer
// asks for a license, the seller uploads it later (IsvUpdateFileReq). A
// repeat with the same EventID (and fingerprint) must yield the same license.
// DecodeV2 decodes it, because online-license products share the V2
// instance activities and URL.
type GetLicenseAsyncRequest struct {
	ActivityName      string `json:"activity"`
	DeviceFingerprint string `json:"deviceFingerprint,omitempty"`
	EffectiveTime     string `json:"effectiveTime"`
	EventID           string `json:"eventId"`
	ExpireTime        string `json:"expireTime,omitempty"`
	InstanceID        string `json:"instanceId"`
	TestFlag          string `json:"testFlag,omitempty"`
}

// Activity returns ActivityGetLicenseAsync.
func (GetLicenseAsyncRequest) Activity() string { return ActivityGetLicenseAsync }

// IsTest reports whether testFlag is "1".
func (r GetLicenseAsyncRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Effective parses EffectiveTime with ParseLicenseTime.
func (r GetLicenseAsyncRequest) Effective() (time.Time, error) {
	return ParseLicenseTime(r.EffectiveTime)
}

// Expiry parses ExpireTime with ParseLicenseTime; ok is false when it is absent.
func (r GetLicenseAsyncRequest) Expiry() (t time.Time, ok bool, err error) {
	if r.ExpireTime == "" {
		return time.Time{}, false, nil
	}
	t, err = ParseLicenseTime(r.ExpireTime)
	return t, err == nil, err
}

// Validate checks the request against the getLicenseAsync table.
func (r GetLicenseAsyncRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityGetLicenseAsync, maxActivity)
	c.required("instanceId", r.InstanceID, 64)
	c.required("effectiveTime", r.EffectiveTime, 32)
	c.timeFormat("effectiveTime", r.EffectiveTime, ParseLicenseTime, problemLicenseTime)
	c.optional("expireTime", r.ExpireTime, 32)
	c.timeFormat("expireTime", r.ExpireTime, ParseLicenseTime, problemLicenseTime)
	if c.ok() && r.ExpireTime != "" {
		// A license that ends before it starts cannot be generated.
		eff, _ := r.Effective()
		if exp, _, _ := r.Expiry(); exp.Before(eff) {
			c.fail("expireTime", "before effectiveTime")
		}
	}
	c.required("eventId", r.EventID, MaxEventID)
	if p := eventIDProblem(r.EventID); p != "" {
		c.fail("eventId", p)
	}
	c.optional("deviceFingerprint", r.DeviceFingerprint, 1024)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// MaxEventID is the documented length of an online-license eventId
// (license-openapi.md §C.6).
const MaxEventID = 64

// CheckEventID checks an online-license eventId. It is the {event_id}
// segment of the upload path (§C.7), so it must be usable there as it is:
// 1 to MaxEventID printable ASCII characters without spaces, not a path
// separator or a dot segment. getLicenseAsync's Validate and the upload
// client both use it, so an application koobridge accepts can always be
// uploaded. The error is a *FieldError naming eventId.
func CheckEventID(id string) error {
	if p := eventIDProblem(id); p != "" {
		return &FieldError{Field: "eventId", Problem: p}
	}
	return nil
}

// eventIDProblem says what is wrong with an eventId, "" when nothing.
func eventIDProblem(id string) string {
	switch {
	case strings.TrimSpace(id) == "":
		return "missing"
	case len(id) > MaxEventID:
		return fmt.Sprintf("longer than %d characters", MaxEventID)
	case strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }):
		return "not printable ASCII without spaces (it is a path segment of the license upload)"
	case strings.ContainsAny(id, `/\`) || id == "." || id == "..":
		return "not one path segment (it is a path segment of the license upload)"
	}
	return ""
}

// OrderNotifyRequest is orderNotify: a paid order the seller should fetch
// with Query Order. Deduplicate on OrderID + OrderLineID.
type OrderNotifyRequest struct {
	ActivityName string `json:"activity"`
	OrderID      string `json:"orderId"`
	OrderLineID  string `json:"orderLineId"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityOrderNotify.
func (OrderNotifyRequest) Activity() string { return ActivityOrderNotify }

// IsTest reports whether testFlag is "1".
func (r OrderNotifyRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the orderNotify table. testFlag is
// mandatory on the official interface page (license-openapi.md §F and its
// Addenda), so a missing one is refused, and it must be "0" (real order)
// or "1" (debug call).
func (r OrderNotifyRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityOrderNotify, maxActivity)
	c.required("orderId", r.OrderID, 64)
	c.required("orderLineId", r.OrderLineID, 64)
	c.required("testFlag", r.TestFlag, maxTestFlag)
	c.oneOf("testFlag", r.TestFlag, "0", "1")
	return c.result()
}

// Activities of the retired license 1.0 guide (GET with authToken).
const (
	ActivityGetLicense     = "getLicense"
	ActivityRefreshLicense = "refreshLicense"
	ActivityExpireLicense  = "expireLicense"
	ActivityReleaseLicense = "releaseLicense"
)

// GetLicenseRequest is getLicense (license 1.0): a new purchase; the seller
// answers with GetLicenseResponse. The parameter list is partly
// UNCONFIRMED; PeriodNumber and TestFlag are read if present.
type GetLicenseRequest struct {
	V1Auth
	CustomerID   string
	CustomerName string
	BusinessID   string
	OrderID      string
	SKUCode      string
	ProductID    string
	ExpireTime   string
	PeriodType   string
	PeriodNumber string
	Amount       string
}

// Activity returns ActivityGetLicense.
func (GetLicenseRequest) Activity() string { return ActivityGetLicense }

// Validate checks the request against the getLicense table.
func (r GetLicenseRequest) Validate() error {
	var c checker
	r.checkAuth(&c)
	c.required("customerId", r.CustomerID, 100)
	c.optional("customerName", r.CustomerName, 64)
	c.required("businessId", r.BusinessID, 64)
	c.required("orderId", r.OrderID, 64)
	c.optional("skuCode", r.SKUCode, 64)
	c.required("productId", r.ProductID, 64)
	c.optional("expireTime", r.ExpireTime, 20)
	c.timeFormat("expireTime", r.ExpireTime, ParseExpireTime, problemExpireTime)
	c.optional("periodType", r.PeriodType, 10)
	c.digits("periodNumber", r.PeriodNumber, 4)
	c.digits("amount", r.Amount, 10)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// GetLicenseResponse is the getLicense reply.
type GetLicenseResponse struct {
	Response
	InstanceID string `json:"instanceId"`
	License    string `json:"license"`
}

// RefreshLicenseRequest is refreshLicense (license 1.0 renewal).
type RefreshLicenseRequest struct {
	V1Auth
	OrderID      string
	InstanceID   string
	ProductID    string
	ExpireTime   string
	PeriodType   string
	PeriodNumber string
}

// Activity returns ActivityRefreshLicense.
func (RefreshLicenseRequest) Activity() string { return ActivityRefreshLicense }

// Validate checks the request against the refreshLicense parameter list.
func (r RefreshLicenseRequest) Validate() error {
	var c checker
	r.checkAuth(&c)
	c.required("orderId", r.OrderID, 64)
	c.required("instanceId", r.InstanceID, 64)
	c.optional("productId", r.ProductID, 64)
	c.required("expireTime", r.ExpireTime, 20)
	c.timeFormat("expireTime", r.ExpireTime, ParseExpireTime, problemExpireTime)
	c.optional("periodType", r.PeriodType, 10)
	c.digits("periodNumber", r.PeriodNumber, 4)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// ExpireLicenseRequest is expireLicense (license 1.0). Its page was never
// retrieved (UNCONFIRMED): by analogy with expireInstance, instanceId is
// required and orderId is read but optional (tolerant).
type ExpireLicenseRequest struct {
	V1Auth
	InstanceID string
	OrderID    string
}

// Activity returns ActivityExpireLicense.
func (ExpireLicenseRequest) Activity() string { return ActivityExpireLicense }

// Validate checks instanceId and the optional orderId.
func (r ExpireLicenseRequest) Validate() error {
	var c checker
	r.checkAuth(&c)
	c.required("instanceId", r.InstanceID, 64)
	c.optional("orderId", r.OrderID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// ReleaseLicenseRequest is releaseLicense (license 1.0).
type ReleaseLicenseRequest struct {
	V1Auth
	OrderID    string
	InstanceID string
}

// Activity returns ActivityReleaseLicense.
func (ReleaseLicenseRequest) Activity() string { return ActivityReleaseLicense }

// Validate checks the request against the releaseLicense parameter list.
func (r ReleaseLicenseRequest) Validate() error {
	var c checker
	r.checkAuth(&c)
	c.required("orderId", r.OrderID, 64)
	c.required("instanceId", r.InstanceID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// DecodeLegacyLicense decodes a license 1.0 GET query (values already
// URL-decoded) into the typed request for its activity. Unknown or missing
// activity gives a *FieldError. It does not call Validate. As for
// DecodeV1, q must come from ParseQuery.
func DecodeLegacyLicense(q url.Values) (V1Request, error) {
	auth := v1Auth(q)
	switch a := q.Get("activity"); a {
	case ActivityGetLicense:
		return GetLicenseRequest{V1Auth: auth, CustomerID: q.Get("customerId"), CustomerName: q.Get("customerName"),
			BusinessID: q.Get("businessId"), OrderID: q.Get("orderId"), SKUCode: q.Get("skuCode"),
			ProductID: q.Get("productId"), ExpireTime: q.Get("expireTime"), PeriodType: q.Get("periodType"),
			PeriodNumber: q.Get("periodNumber"), Amount: q.Get("amount")}, nil
	case ActivityRefreshLicense:
		return RefreshLicenseRequest{V1Auth: auth, OrderID: q.Get("orderId"), InstanceID: q.Get("instanceId"),
			ProductID: q.Get("productId"), ExpireTime: q.Get("expireTime"), PeriodType: q.Get("periodType"),
			PeriodNumber: q.Get("periodNumber")}, nil
	case ActivityExpireLicense:
		return ExpireLicenseRequest{V1Auth: auth, InstanceID: q.Get("instanceId"), OrderID: q.Get("orderId")}, nil
	case ActivityReleaseLicense:
		return ReleaseLicenseRequest{V1Auth: auth, OrderID: q.Get("orderId"), InstanceID: q.Get("instanceId")}, nil
	default:
		return nil, unknownActivity(a)
	}
}
