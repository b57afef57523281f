package protocol

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Activities of the POST production interfaces (SaaS V2, license codes 2.0,
// online license, order notify).
const (
	ActivityNewInstance             = "newInstance"
	ActivityQueryInstance           = "queryInstance"
	ActivityRefreshInstance         = "refreshInstance"
	ActivityUpdateInstanceStatus    = "updateInstanceStatus"
	ActivityReleaseInstance         = "releaseInstance"
	ActivityUpgradeInstance         = "upgradeInstance"
	ActivityChangeInstanceCheck     = "changeInstanceCheck"
	ActivityRefreshLicenseCode      = "refreshLicenseCode"
	ActivityUpdateLicenseCodeStatus = "updateLicenseCodeStatus"
	ActivityReleaseLicenseCode      = "releaseLicenseCode"
	ActivityGetLicenseAsync         = "getLicenseAsync"
	ActivityOrderNotify             = "orderNotify"
)

// refreshInstance / refreshLicenseCode scenes.
const (
	SceneTrialToFormal            = "TRIAL_TO_FORMAL"
	SceneRenewal                  = "RENEWAL"
	SceneUnsubscribeRenewalPeriod = "UNSUBSCRIBE_RENEWAL_PERIOD"
	SceneRenewalChange            = "RENEWAL_CHANGE"
)

// updateInstanceStatus / updateLicenseCodeStatus statuses.
const (
	StatusFreeze   = "FREEZE"
	StatusUnfreeze = "UNFREEZE"
)

// Lengths printed in the V2 tables.
const (
	maxActivity = 20
	maxTestFlag = 2
	// maxScene: the V2 table prints none; the license table prints 64.
	maxScene = 64
	// maxQueryIDs is the documented limit of IDs per queryInstance call.
	maxQueryIDs = 100
)

// V2Request is a decoded POST production-interface request.
type V2Request interface {
	// Activity returns the request's activity constant.
	Activity() string
	// Validate checks the fields against the spec table; the error is a *FieldError.
	Validate() error
	// IsTest reports whether testFlag marks a debug or dial-test call.
	IsTest() bool
}

// isTestFlag reports whether a string testFlag is "1"; anything else
// (absent, "0", junk) is production traffic.
func isTestFlag(s string) bool { return strings.TrimSpace(s) == "1" }

// mockOrderPrefix starts the IDs of the mock orders that the seller
// console's debugger and the daily dial test use (MOCKPERIODYEARNEW,
// MOCKONDEMAND, …; saas-v2.md §6.5).
const mockOrderPrefix = "MOCK"

// IsTestOrder reports whether a call concerns a debug instance: testFlag
// (the request's IsTest) says so, or orderID is one of the seller console
// debugger's mock orders, whose IDs start with "MOCK" in capitals
// (saas-v2.md §6.5). Query Order answers canned data for those orders, so
// an instance created for one is a debug instance even when a call forgets
// testFlag. This is the one place for that rule.
func IsTestOrder(testFlag bool, orderID string) bool {
	return testFlag || strings.HasPrefix(orderID, mockOrderPrefix)
}

// NewInstanceRequest is newInstance: create an instance for a paid order
// line. Fields are declared in JSON-name order so Marshal writes keys in
// the natural order KooGallery uses.
type NewInstanceRequest struct {
	ActivityName string `json:"activity"`
	BusinessID   string `json:"businessId"`
	OrderID      string `json:"orderId"`
	OrderLineID  string `json:"orderLineId"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityNewInstance.
func (NewInstanceRequest) Activity() string { return ActivityNewInstance }

// IsTest reports whether testFlag is "1".
func (r NewInstanceRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the newInstance table.
func (r NewInstanceRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityNewInstance, maxActivity)
	c.required("orderId", r.OrderID, 64)
	c.required("orderLineId", r.OrderLineID, 64)
	c.required("businessId", r.BusinessID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// QueryInstanceRequest is queryInstance: report one or more instances.
type QueryInstanceRequest struct {
	ActivityName string `json:"activity"`
	InstanceID   string `json:"instanceId"` // comma-separated, at most 100 IDs
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityQueryInstance.
func (QueryInstanceRequest) Activity() string { return ActivityQueryInstance }

// IsTest reports whether testFlag is "1".
func (r QueryInstanceRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// InstanceIDs splits instanceId on commas, trims spaces and drops empties.
func (r QueryInstanceRequest) InstanceIDs() []string { return splitIDs(r.InstanceID) }

// Validate checks the request against the queryInstance table. The table
// prints Len 100 for the whole field yet allows 100 IDs, so (tolerant
// reading) the limits are applied per ID (64) and to the count (100).
func (r QueryInstanceRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityQueryInstance, maxActivity)
	checkIDList(&c, "instanceId", r.InstanceID)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

func splitIDs(s string) []string {
	var ids []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			ids = append(ids, p)
		}
	}
	return ids
}

// checkIDList checks a comma-separated instance ID list.
func checkIDList(c *checker, field, s string) {
	if !c.ok() {
		return
	}
	ids := splitIDs(s)
	if len(ids) == 0 {
		c.fail(field, "missing")
		return
	}
	if len(ids) > maxQueryIDs {
		c.fail(field, "more than 100 instance IDs")
		return
	}
	for _, id := range ids {
		c.length(field, id, 64)
	}
}

// RefreshInstanceRequest is refreshInstance: trial conversion, renewal,
// unsubscribed renewal period or renewal with change. Set the expiry to
// ExpireTime (absolute), never add to it.
type RefreshInstanceRequest struct {
	ActivityName string `json:"activity"`
	ExpireTime   string `json:"expireTime"`
	InstanceID   string `json:"instanceId"`
	OrderID      string `json:"orderId"`
	OrderLineID  string `json:"orderLineId"`
	ProductID    string `json:"productId,omitempty"`
	Scene        string `json:"scene"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityRefreshInstance.
func (RefreshInstanceRequest) Activity() string { return ActivityRefreshInstance }

// IsTest reports whether testFlag is "1".
func (r RefreshInstanceRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Expiry parses ExpireTime (14 or 17 digits, UTC).
func (r RefreshInstanceRequest) Expiry() (time.Time, error) { return ParseExpireTime(r.ExpireTime) }

// Validate checks the request against the refreshInstance table. The
// scene list is UNCONFIRMED beyond the four Scene constants, so any
// non-empty scene is accepted (tolerant reading); use KnownScene to tell.
func (r RefreshInstanceRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityRefreshInstance, maxActivity)
	c.required("scene", r.Scene, maxScene)
	c.required("orderId", r.OrderID, 64)
	c.required("orderLineId", r.OrderLineID, 64)
	c.required("instanceId", r.InstanceID, 64)
	c.optional("productId", r.ProductID, maxID)
	c.required("expireTime", r.ExpireTime, 20)
	c.timeFormat("expireTime", r.ExpireTime, ParseExpireTime, problemExpireTime)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// KnownScene reports whether scene is one of the four documented scenes.
func KnownScene(scene string) bool {
	switch scene {
	case SceneTrialToFormal, SceneRenewal, SceneUnsubscribeRenewalPeriod, SceneRenewalChange:
		return true
	}
	return false
}

// UpdateInstanceStatusRequest is updateInstanceStatus: FREEZE or UNFREEZE.
type UpdateInstanceStatusRequest struct {
	ActivityName string `json:"activity"`
	InstanceID   string `json:"instanceId"`
	Status       string `json:"status"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityUpdateInstanceStatus.
func (UpdateInstanceStatusRequest) Activity() string { return ActivityUpdateInstanceStatus }

// IsTest reports whether testFlag is "1".
func (r UpdateInstanceStatusRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the updateInstanceStatus table.
func (r UpdateInstanceStatusRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityUpdateInstanceStatus, maxActivity)
	c.required("instanceId", r.InstanceID, 64)
	c.required("status", r.Status, 32)
	c.oneOf("status", r.Status, StatusFreeze, StatusUnfreeze)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// ReleaseInstanceRequest is releaseInstance. Releasing an already released
// instance must succeed again.
type ReleaseInstanceRequest struct {
	ActivityName string `json:"activity"`
	InstanceID   string `json:"instanceId"`
	OrderID      string `json:"orderId,omitempty"`
	OrderLineID  string `json:"orderLineId,omitempty"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityReleaseInstance.
func (ReleaseInstanceRequest) Activity() string { return ActivityReleaseInstance }

// IsTest reports whether testFlag is "1".
func (r ReleaseInstanceRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the releaseInstance table.
func (r ReleaseInstanceRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityReleaseInstance, maxActivity)
	c.required("instanceId", r.InstanceID, 64)
	c.optional("orderId", r.OrderID, 64)
	c.optional("orderLineId", r.OrderLineID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// UpgradeInstanceRequest is upgradeInstance; the target spec comes from
// Query Order with the new order.
type UpgradeInstanceRequest struct {
	ActivityName string `json:"activity"`
	InstanceID   string `json:"instanceId"`
	OrderID      string `json:"orderId"`
	OrderLineID  string `json:"orderLineId"`
	TestFlag     string `json:"testFlag,omitempty"`
}

// Activity returns ActivityUpgradeInstance.
func (UpgradeInstanceRequest) Activity() string { return ActivityUpgradeInstance }

// IsTest reports whether testFlag is "1".
func (r UpgradeInstanceRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the upgradeInstance table.
func (r UpgradeInstanceRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityUpgradeInstance, maxActivity)
	c.required("instanceId", r.InstanceID, 64)
	c.required("orderId", r.OrderID, 64)
	c.required("orderLineId", r.OrderLineID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// ChangeInstanceCheckRequest is changeInstanceCheck: may the instance be
// renewed with a change to ProductInfo? Success allows it.
type ChangeInstanceCheckRequest struct {
	ActivityName string       `json:"activity"`
	InstanceID   string       `json:"instanceId"`
	ProductInfo  *ProductInfo `json:"productInfo"`
	TestFlag     string       `json:"testFlag,omitempty"`
}

// Activity returns ActivityChangeInstanceCheck.
func (ChangeInstanceCheckRequest) Activity() string { return ActivityChangeInstanceCheck }

// IsTest reports whether testFlag is "1".
func (r ChangeInstanceCheckRequest) IsTest() bool { return isTestFlag(r.TestFlag) }

// Validate checks the request against the changeInstanceCheck table. The
// ProductInfo structure is UNCONFIRMED, so only its presence and the
// lengths of its known fields are checked.
func (r ChangeInstanceCheckRequest) Validate() error {
	var c checker
	c.activity(r.ActivityName, ActivityChangeInstanceCheck, maxActivity)
	c.required("instanceId", r.InstanceID, 64)
	if c.ok() && r.ProductInfo == nil {
		c.fail("productInfo", "missing")
	}
	if c.ok() {
		r.ProductInfo.check(&c, "productInfo")
	}
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// DecodeV2 decodes a POST production-interface body into the typed request
// for its activity: the seven SaaS V2 basic activities plus getLicenseAsync
// (online license) and orderNotify. Unknown or missing activity gives a
// *FieldError for "activity"; malformed JSON a *DecodeError. Ambiguous
// bodies are refused (see the package documentation): a duplicated key,
// invalid UTF-8, a lone surrogate escape or a NUL character, and a
// boolean, object or array where a String is documented give a
// *FieldError naming the field (a *DecodeError when the problem is in a
// top-level key). A number for a String field is kept as its literal text.
// All these errors map to CodeInvalidParam. The result holds a value, not
// a pointer (switch on NewInstanceRequest, not *NewInstanceRequest).
// DecodeV2 does not call Validate.
func DecodeV2(body []byte) (V2Request, error) {
	m, err := decodeFields(body, "v2 body", v2BodyShape)
	if err != nil {
		return nil, err
	}
	activity, err := m.str("activity")
	if err != nil {
		return nil, err
	}
	var r V2Request
	switch activity {
	case ActivityNewInstance:
		r, err = decodeInto[NewInstanceRequest](m)
	case ActivityQueryInstance:
		r, err = decodeInto[QueryInstanceRequest](m)
	case ActivityRefreshInstance:
		r, err = decodeInto[RefreshInstanceRequest](m)
	case ActivityUpdateInstanceStatus:
		r, err = decodeInto[UpdateInstanceStatusRequest](m)
	case ActivityReleaseInstance:
		r, err = decodeInto[ReleaseInstanceRequest](m)
	case ActivityUpgradeInstance:
		r, err = decodeInto[UpgradeInstanceRequest](m)
	case ActivityChangeInstanceCheck:
		r, err = decodeInto[ChangeInstanceCheckRequest](m)
	case ActivityGetLicenseAsync:
		r, err = decodeInto[GetLicenseAsyncRequest](m)
	case ActivityOrderNotify:
		r, err = decodeInto[OrderNotifyRequest](m)
	default:
		return nil, unknownActivity(activity)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// decodeInto decodes checked fields into a T and returns it as a V2Request.
func decodeInto[T V2Request](m *fields) (V2Request, error) {
	var r T
	if err := decodeFieldsInto(m, r.Activity()+" body", &r); err != nil {
		return nil, err
	}
	return r, nil
}

func unknownActivity(activity string) error {
	if strings.TrimSpace(activity) == "" {
		return &FieldError{Field: "activity", Problem: "missing"}
	}
	if len(activity) > 64 {
		activity = activity[:64]
	}
	return &FieldError{Field: "activity", Problem: "unknown activity " + strconv.Quote(activity)}
}

// Response is the common reply body of every production interface.
type Response struct {
	ResultCode ResultCode `json:"resultCode"`
	ResultMsg  string     `json:"resultMsg,omitempty"`
}

// NewResponse returns a Response with code and its Meaning as message when
// msg is empty.
func NewResponse(code ResultCode, msg string) Response {
	if msg == "" {
		msg = code.Meaning()
	}
	return Response{ResultCode: code, ResultMsg: msg}
}

// ErrorResponse returns the reply for a decode or validation error: the
// code from ResultCodeFor and the error text (at most 255 characters) as
// message. A nil error gives a success reply.
func ErrorResponse(err error) Response {
	if err == nil {
		return NewResponse(CodeSuccess, "")
	}
	return Response{ResultCode: ResultCodeFor(err), ResultMsg: truncateRunes(err.Error(), 255)}
}

// NewInstanceResponse is the newInstance reply.
type NewInstanceResponse struct {
	Response
	InstanceID string `json:"instanceId"`
}

// Validate checks the reply as the console debugger does: resultCode set,
// resultMsg ≤ 255 and, on success or 000004, instanceId present and ≤ 64.
func (r NewInstanceResponse) Validate() error {
	var c checker
	c.required("resultCode", string(r.ResultCode), 6)
	c.optional("resultMsg", r.ResultMsg, 255)
	if r.ResultCode == CodeSuccess || r.ResultCode == CodeProcessing {
		c.required("instanceId", r.InstanceID, 64)
	}
	return c.result()
}

// QueryInstanceResponse is the queryInstance reply (V1 and V2).
type QueryInstanceResponse struct {
	Response
	EncryptType string         `json:"encryptType,omitempty"`
	Info        []InstanceInfo `json:"info,omitempty"`
}

// Validate checks the reply as the console debugger does: every entry has
// an instanceId, app info and usage entries are well formed.
func (r QueryInstanceResponse) Validate() error {
	var c checker
	c.required("resultCode", string(r.ResultCode), 6)
	c.optional("resultMsg", r.ResultMsg, 255)
	c.optional("encryptType", r.EncryptType, 3)
	for i, in := range r.Info {
		in.check(&c, "info["+itoa(i)+"]")
	}
	return c.result()
}

// InstanceInfo is one instance in a queryInstance reply.
type InstanceInfo struct {
	InstanceID string      `json:"instanceId"`
	AppInfo    *AppInfo    `json:"appInfo,omitempty"`
	UsageInfo  []UsageInfo `json:"usageInfo,omitempty"`
}

// Validate checks the entry against the InstanceInfo table.
func (in InstanceInfo) Validate() error {
	var c checker
	in.check(&c, "info")
	return c.result()
}

func (in InstanceInfo) check(c *checker, prefix string) {
	c.required(prefix+".instanceId", in.InstanceID, 64)
	if in.AppInfo != nil {
		in.AppInfo.check(c, prefix+".appInfo")
	}
	for i, u := range in.UsageInfo {
		u.check(c, prefix+".usageInfo["+itoa(i)+"]")
	}
}

// AppInfo tells the buyer how to use the instance. In V1 (and, if the
// product is so configured, V2) UserName and Password are encrypted
// (iv + base64); the length limits apply to the encrypted text.
type AppInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	Password    string `json:"password,omitempty"`
	Memo        string `json:"memo,omitempty"`
}

// Validate checks the lengths 512/512/128/128/1024 and that frontEndUrl is set.
func (a AppInfo) Validate() error {
	var c checker
	a.check(&c, "appInfo")
	return c.result()
}

func (a AppInfo) check(c *checker, prefix string) {
	c.required(prefix+".frontEndUrl", a.FrontEndURL, 512)
	c.optional(prefix+".adminUrl", a.AdminURL, 512)
	c.optional(prefix+".userName", a.UserName, 128)
	c.optional(prefix+".password", a.Password, 128)
	c.optional(prefix+".memo", a.Memo, 1024)
}

// UsageInfo is one usage entry of a pay-per-use or package instance.
type UsageInfo struct {
	RelatedInstanceID string  `json:"relatedInstanceId,omitempty"`
	UsageValue        Decimal `json:"usageValue"`
	StatisticalTime   string  `json:"statisticalTime"` // yyyyMMddHHmmssSSS, UTC
	DashboardURL      string  `json:"dashboardUrl,omitempty"`
}

// Validate checks the entry against the UsageInfo table: usageValue is
// Double(12,4) (at most 8 integer digits, not negative), statisticalTime
// is yyyyMMddHHmmssSSS.
func (u UsageInfo) Validate() error {
	var c checker
	u.check(&c, "usageInfo")
	return c.result()
}

func (u UsageInfo) check(c *checker, prefix string) {
	c.optional(prefix+".relatedInstanceId", u.RelatedInstanceID, 64)
	if c.ok() && (u.UsageValue.Sign() < 0 || u.UsageValue.units >= 1e8*decimalScale) {
		c.fail(prefix+".usageValue", "not a Double(12,4) of at least 0")
	}
	c.required(prefix+".statisticalTime", u.StatisticalTime, 20)
	c.timeFormat(prefix+".statisticalTime", u.StatisticalTime, ParseTime17, problemTime17)
	c.optional(prefix+".dashboardUrl", u.DashboardURL, 512)
}

func itoa(i int) string { return strconv.Itoa(i) }

// truncateRunes cuts s to at most n runes.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
