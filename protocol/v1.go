package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
)

// Activities of the SaaS V1 GET interface that differ from V2 (V1 also
// uses newInstance, refreshInstance, releaseInstance and queryInstance).
const (
	ActivityExpireInstance = "expireInstance"
	ActivityUpgrade        = "upgrade"
	ActivityInstanceStatus = "instanceStatus"
)

// V1 instanceStatus values.
const (
	InstanceStatusFreeze = "FREEZE"
	InstanceStatusNormal = "NORMAL"
)

// V1 chargingMode values (integers in V1 query strings).
const (
	V1ChargingOnDemand    = "0"
	V1ChargingPeriod      = "1"
	V1ChargingOneTime     = "3"
	V1ChargingOnDemandPkg = "5"
)

// V1Request is a decoded V1 GET request (SaaS V1 or license 1.0).
type V1Request interface {
	// Activity returns the request's activity constant.
	Activity() string
	// Validate checks the parameters against the spec table; the error is a *FieldError.
	Validate() error
	// IsTest reports whether testFlag marks a debug or dial-test call.
	IsTest() bool
}

// V1Auth holds the parameters every V1 GET request carries. AuthToken is
// checked by protocol/sign; Validate only checks presence and form.
type V1Auth struct {
	AuthToken string
	TimeStamp string // yyyyMMddHHmmssSSS, UTC
	TestFlag  string
}

// IsTest reports whether testFlag is "1".
func (a V1Auth) IsTest() bool { return isTestFlag(a.TestFlag) }

// Time parses TimeStamp.
func (a V1Auth) Time() (time.Time, error) { return ParseTime17(a.TimeStamp) }

func (a V1Auth) checkAuth(c *checker) {
	c.required("authToken", a.AuthToken, 50)
	c.required("timeStamp", a.TimeStamp, 20)
	c.timeFormat("timeStamp", a.TimeStamp, ParseTime17, problemTime17)
}

func v1Auth(q url.Values) V1Auth {
	return V1Auth{AuthToken: q.Get("authToken"), TimeStamp: q.Get("timeStamp"), TestFlag: q.Get("testFlag")}
}

// ExtendParam is a name/value pair (V1 saasExtendParams, Query Order
// extendParams). Values that arrive as numbers or objects are kept as text.
type ExtendParam struct {
	Name  FlexString `json:"name"`
	Value FlexString `json:"value"`
}

// V1NewInstanceRequest is V1 newInstance: the full customer and order data
// in the query string. MobilePhone and Email arrive encrypted
// (iv + base64, see protocol/sign).
type V1NewInstanceRequest struct {
	V1Auth
	CustomerID       string
	CustomerName     string
	UserID           string
	UserName         string
	MobilePhone      string
	Email            string
	BusinessID       string
	OrderID          string
	SKUCode          string
	ProductID        string
	TrialFlag        string
	ExpireTime       string // yyyyMMddHHmmss, for reference only
	ChargingMode     string // V1Charging* constants
	SaaSExtendParams string // raw parameter value
	ExtendParams     []ExtendParam
	Amount           string
	DiskSize         string
	BandWidth        string
	PeriodType       string
	PeriodNumber     string
	OrderAmount      string
	ProvisionType    string
}

// Activity returns ActivityNewInstance.
func (V1NewInstanceRequest) Activity() string { return ActivityNewInstance }

// IsTrial reports whether trialFlag is "1".
func (r V1NewInstanceRequest) IsTrial() bool { return isTestFlag(r.TrialFlag) }

// Validate checks the request against the V1 newInstance table. Choices
// for UNCONFIRMED points: customerName is optional (it is on the intl
// site); mobilePhone and email (encrypted) are capped at 256, trialFlag
// and provisionType at 8 and 64; chargingMode is any integer of up to 3
// digits; orderAmount may be negative with at most 3 decimals.
func (r V1NewInstanceRequest) Validate() error {
	var c checker
	r.checkAuth(&c)
	c.required("customerId", r.CustomerID, 100)
	c.optional("customerName", r.CustomerName, 64)
	c.optional("userId", r.UserID, 64)
	c.optional("userName", r.UserName, 64)
	c.optional("mobilePhone", r.MobilePhone, 256)
	c.optional("email", r.Email, 256)
	c.required("businessId", r.BusinessID, 64)
	c.required("orderId", r.OrderID, 64)
	c.required("skuCode", r.SKUCode, 64)
	c.required("productId", r.ProductID, 64)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	c.optional("trialFlag", r.TrialFlag, 8)
	c.optional("expireTime", r.ExpireTime, 20)
	c.timeFormat("expireTime", r.ExpireTime, ParseExpireTime, problemExpireTime)
	c.digits("chargingMode", r.ChargingMode, 3)
	c.optional("saasExtendParams", r.SaaSExtendParams, 2048)
	c.digits("amount", r.Amount, 10)
	c.digits("diskSize", r.DiskSize, 10)
	c.digits("bandWidth", r.BandWidth, 10)
	c.optional("periodType", r.PeriodType, 10)
	c.digits("periodNumber", r.PeriodNumber, 4)
	c.decimal("orderAmount", r.OrderAmount, 20, 3)
	c.optional("provisionType", r.ProvisionType, 64)
	return c.result()
}

// V1NewInstanceResponse is the V1 newInstance reply: app info comes back
// at once, userName/password encrypted with EncryptType.
type V1NewInstanceResponse struct {
	Response
	EncryptType string   `json:"encryptType,omitempty"`
	InstanceID  string   `json:"instanceId"`
	AppInfo     *AppInfo `json:"appInfo,omitempty"`
}

// Validate checks the reply as the V1 debugger does: on success an
// instanceId ≤ 64, and app info (when present) within its lengths.
func (r V1NewInstanceResponse) Validate() error {
	var c checker
	c.required("resultCode", string(r.ResultCode), 6)
	c.optional("resultMsg", r.ResultMsg, 255)
	c.optional("encryptType", r.EncryptType, 3)
	if r.ResultCode == CodeSuccess || r.ResultCode == CodeProcessing {
		c.required("instanceId", r.InstanceID, 64)
	}
	if r.AppInfo != nil {
		r.AppInfo.check(&c, "appInfo")
	}
	return c.result()
}

// V1QueryInstanceResponse is the V1 queryInstance reply; it has the V2 shape.
type V1QueryInstanceResponse = QueryInstanceResponse

// V1RefreshInstanceRequest is V1 refreshInstance: renewal, renewal refund
// (negative orderAmount) or trial conversion (trialToFormal=1).
type V1RefreshInstanceRequest struct {
	V1Auth
	OrderID       string
	InstanceID    string
	ProductID     string
	ExpireTime    string
	TrialToFormal string
	PeriodType    string
	PeriodNumber  string
	OrderAmount   string
}

// Activity returns ActivityRefreshInstance.
func (V1RefreshInstanceRequest) Activity() string { return ActivityRefreshInstance }

// Expiry parses ExpireTime (14 or 17 digits, UTC).
func (r V1RefreshInstanceRequest) Expiry() (time.Time, error) { return ParseExpireTime(r.ExpireTime) }

// Validate checks the request against the V1 refreshInstance table.
func (r V1RefreshInstanceRequest) Validate() error {
	var c checker
	c.required("authToken", r.AuthToken, 50)
	c.required("orderId", r.OrderID, 64)
	c.required("instanceId", r.InstanceID, 64)
	c.optional("productId", r.ProductID, 64)
	c.required("expireTime", r.ExpireTime, 20)
	c.timeFormat("expireTime", r.ExpireTime, ParseExpireTime, problemExpireTime)
	c.optional("trialToFormal", r.TrialToFormal, 2)
	c.required("timeStamp", r.TimeStamp, 20)
	c.timeFormat("timeStamp", r.TimeStamp, ParseTime17, problemTime17)
	c.optional("periodType", r.PeriodType, 10)
	c.digits("periodNumber", r.PeriodNumber, 2)
	c.decimal("orderAmount", r.OrderAmount, 20, 3)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// V1ExpireInstanceRequest is V1 expireInstance: freeze at expiry.
type V1ExpireInstanceRequest struct {
	V1Auth
	InstanceID string
	OrderID    string
}

// Activity returns ActivityExpireInstance.
func (V1ExpireInstanceRequest) Activity() string { return ActivityExpireInstance }

// Validate checks the request against the V1 expireInstance table.
func (r V1ExpireInstanceRequest) Validate() error {
	var c checker
	c.required("authToken", r.AuthToken, 50)
	c.required("instanceId", r.InstanceID, 64)
	c.required("orderId", r.OrderID, 64)
	c.required("timeStamp", r.TimeStamp, 20)
	c.timeFormat("timeStamp", r.TimeStamp, ParseTime17, problemTime17)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// V1ReleaseInstanceRequest is V1 releaseInstance.
type V1ReleaseInstanceRequest struct {
	V1Auth
	InstanceID  string
	OrderID     string
	OrderAmount string
}

// Activity returns ActivityReleaseInstance.
func (V1ReleaseInstanceRequest) Activity() string { return ActivityReleaseInstance }

// Validate checks the request against the V1 releaseInstance table.
func (r V1ReleaseInstanceRequest) Validate() error {
	var c checker
	c.required("authToken", r.AuthToken, 50)
	c.required("instanceId", r.InstanceID, 64)
	c.required("orderId", r.OrderID, 64)
	c.required("timeStamp", r.TimeStamp, 20)
	c.timeFormat("timeStamp", r.TimeStamp, ParseTime17, problemTime17)
	c.decimal("orderAmount", r.OrderAmount, 20, 3)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// V1UpgradeRequest is V1 upgrade: the new spec in the query string.
type V1UpgradeRequest struct {
	V1Auth
	InstanceID string
	OrderID    string
	SKUCode    string
	ProductID  string
	Amount     string
	DiskSize   string
	BandWidth  string
}

// Activity returns ActivityUpgrade.
func (V1UpgradeRequest) Activity() string { return ActivityUpgrade }

// Validate checks the request against the V1 upgrade table.
func (r V1UpgradeRequest) Validate() error {
	var c checker
	c.required("authToken", r.AuthToken, 50)
	c.required("instanceId", r.InstanceID, 64)
	c.required("orderId", r.OrderID, 64)
	c.required("skuCode", r.SKUCode, 64)
	c.required("productId", r.ProductID, 64)
	c.required("timeStamp", r.TimeStamp, 20)
	c.timeFormat("timeStamp", r.TimeStamp, ParseTime17, problemTime17)
	c.digits("amount", r.Amount, 10)
	c.digits("diskSize", r.DiskSize, 10)
	c.digits("bandWidth", r.BandWidth, 10)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// V1InstanceStatusRequest is V1 instanceStatus: FREEZE or NORMAL a
// pay-per-use instance.
type V1InstanceStatusRequest struct {
	V1Auth
	InstanceID     string
	InstanceStatus string
}

// Activity returns ActivityInstanceStatus.
func (V1InstanceStatusRequest) Activity() string { return ActivityInstanceStatus }

// Validate checks the request against the V1 instanceStatus table.
func (r V1InstanceStatusRequest) Validate() error {
	var c checker
	c.required("authToken", r.AuthToken, 50)
	c.required("instanceId", r.InstanceID, 64)
	c.required("instanceStatus", r.InstanceStatus, 32)
	c.oneOf("instanceStatus", r.InstanceStatus, InstanceStatusFreeze, InstanceStatusNormal)
	c.required("timeStamp", r.TimeStamp, 20)
	c.timeFormat("timeStamp", r.TimeStamp, ParseTime17, problemTime17)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// V1QueryInstanceRequest is V1 queryInstance.
type V1QueryInstanceRequest struct {
	V1Auth
	InstanceID string // comma-separated, at most 100 IDs
}

// Activity returns ActivityQueryInstance.
func (V1QueryInstanceRequest) Activity() string { return ActivityQueryInstance }

// InstanceIDs splits instanceId on commas, trims spaces and drops empties.
func (r V1QueryInstanceRequest) InstanceIDs() []string { return splitIDs(r.InstanceID) }

// Validate checks the request against the V1 queryInstance table; the
// printed S64 is applied per ID, with at most 100 IDs.
func (r V1QueryInstanceRequest) Validate() error {
	var c checker
	c.required("authToken", r.AuthToken, 50)
	c.required("timeStamp", r.TimeStamp, 20)
	c.timeFormat("timeStamp", r.TimeStamp, ParseTime17, problemTime17)
	checkIDList(&c, "instanceId", r.InstanceID)
	c.optional("testFlag", r.TestFlag, maxTestFlag)
	return c.result()
}

// DecodeV1 decodes a V1 GET query (values already URL-decoded) into the
// typed request for its activity. Unknown or missing activity, or a
// saasExtendParams that cannot be decoded (or whose JSON has a duplicated
// key, invalid UTF-8 or NUL), gives a *FieldError. It does not call
// Validate.
//
// q must come from ParseQuery, not url.ParseQuery or Request.URL.Query:
// DecodeV1 reads the first value of each parameter and does not check the
// values again, so only ParseQuery's refusals (a parameter given twice,
// malformed escapes, invalid UTF-8, NUL) keep the request unambiguous. The
// same holds for DecodeLegacyLicense.
func DecodeV1(q url.Values) (V1Request, error) {
	auth := v1Auth(q)
	switch a := q.Get("activity"); a {
	case ActivityNewInstance:
		r := V1NewInstanceRequest{V1Auth: auth,
			CustomerID: q.Get("customerId"), CustomerName: q.Get("customerName"),
			UserID: q.Get("userId"), UserName: q.Get("userName"),
			MobilePhone: q.Get("mobilePhone"), Email: q.Get("email"),
			BusinessID: q.Get("businessId"), OrderID: q.Get("orderId"),
			SKUCode: q.Get("skuCode"), ProductID: q.Get("productId"),
			TrialFlag: q.Get("trialFlag"), ExpireTime: q.Get("expireTime"),
			ChargingMode: q.Get("chargingMode"), SaaSExtendParams: q.Get("saasExtendParams"),
			Amount: q.Get("amount"), DiskSize: q.Get("diskSize"), BandWidth: q.Get("bandWidth"),
			PeriodType: q.Get("periodType"), PeriodNumber: q.Get("periodNumber"),
			OrderAmount: q.Get("orderAmount"), ProvisionType: q.Get("provisionType")}
		if r.SaaSExtendParams != "" {
			params, err := DecodeSaaSExtendParams(r.SaaSExtendParams)
			if fe := (*FieldError)(nil); errors.As(err, &fe) {
				return nil, fe
			}
			if err != nil {
				return nil, &FieldError{Field: "saasExtendParams", Problem: "not base64 of a JSON array of {name, value}"}
			}
			r.ExtendParams = params
		}
		return r, nil
	case ActivityRefreshInstance:
		return V1RefreshInstanceRequest{V1Auth: auth, OrderID: q.Get("orderId"), InstanceID: q.Get("instanceId"),
			ProductID: q.Get("productId"), ExpireTime: q.Get("expireTime"), TrialToFormal: q.Get("trialToFormal"),
			PeriodType: q.Get("periodType"), PeriodNumber: q.Get("periodNumber"), OrderAmount: q.Get("orderAmount")}, nil
	case ActivityExpireInstance:
		return V1ExpireInstanceRequest{V1Auth: auth, InstanceID: q.Get("instanceId"), OrderID: q.Get("orderId")}, nil
	case ActivityReleaseInstance:
		return V1ReleaseInstanceRequest{V1Auth: auth, InstanceID: q.Get("instanceId"), OrderID: q.Get("orderId"),
			OrderAmount: q.Get("orderAmount")}, nil
	case ActivityUpgrade:
		return V1UpgradeRequest{V1Auth: auth, InstanceID: q.Get("instanceId"), OrderID: q.Get("orderId"),
			SKUCode: q.Get("skuCode"), ProductID: q.Get("productId"), Amount: q.Get("amount"),
			DiskSize: q.Get("diskSize"), BandWidth: q.Get("bandWidth")}, nil
	case ActivityInstanceStatus:
		return V1InstanceStatusRequest{V1Auth: auth, InstanceID: q.Get("instanceId"),
			InstanceStatus: q.Get("instanceStatus")}, nil
	case ActivityQueryInstance:
		return V1QueryInstanceRequest{V1Auth: auth, InstanceID: q.Get("instanceId")}, nil
	default:
		return nil, unknownActivity(a)
	}
}

var errExtendParams = errors.New("protocol: saasExtendParams: not base64")

// DecodeSaaSExtendParams decodes a V1 saasExtendParams value:
// base64 of a JSON array of {"name","value"}. The JSON is read as strictly
// as a request body: a duplicated key, invalid UTF-8 or a NUL character
// gives a *FieldError. The value should already be
// URL-decoded; being tolerant, it is URL-decoded once more if it still
// holds %XX escapes, spaces are read as '+' (a '+' that was not
// percent-encoded turns into a space in a query string), and standard or
// URL-safe base64, padded or not, is accepted.
func DecodeSaaSExtendParams(v string) ([]ExtendParam, error) {
	s := strings.TrimSpace(v)
	if strings.Contains(s, "%") {
		if u, err := url.QueryUnescape(s); err == nil {
			s = u
		}
	}
	s = strings.ReplaceAll(s, " ", "+")
	var raw []byte
	var err error = errExtendParams
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errExtendParams
	}
	if err := checkJSON(raw, "saasExtendParams", fieldRule{allow: kindArray | kindNull, want: "an array", elem: extendParamsShape}); err != nil {
		return nil, err
	}
	var params []ExtendParam
	if err := json.Unmarshal(raw, &params); err != nil {
		return nil, &DecodeError{What: "saasExtendParams", Err: err}
	}
	if params == nil {
		params = []ExtendParam{}
	}
	return params, nil
}

// EncodeSaaSExtendParams is the inverse of DecodeSaaSExtendParams before
// URL encoding: standard padded base64 of the JSON array.
func EncodeSaaSExtendParams(params []ExtendParam) (string, error) {
	b, err := Marshal(params)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
