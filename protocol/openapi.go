package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ProductInfo is a product/spec of an order line (Query Order) or the
// target of changeInstanceCheck.
type ProductInfo struct {
	ProductID   FlexString `json:"productId"`
	SKUCode     FlexString `json:"skuCode"`
	LinearValue FlexNumber `json:"linearValue,omitempty"`
	ProductName FlexString `json:"productName,omitempty"`
}

type productInfoFields ProductInfo

// UnmarshalJSON accepts an object, a JSON string holding one, or (for
// changeInstanceCheck, whose structure is UNCONFIRMED) an array, of which
// the first element is used. Unknown fields are ignored.
func (p *ProductInfo) UnmarshalJSON(b []byte) error {
	text, ok, err := unquoteJSONText(b)
	if err != nil {
		return fmt.Errorf("protocol: decode productInfo: %w", err)
	}
	if !ok || bytes.Equal(text, []byte("null")) {
		return nil
	}
	if text[0] == '[' {
		var list []productInfoFields
		if err := json.Unmarshal(text, &list); err != nil {
			return fmt.Errorf("protocol: decode productInfo: %w", err)
		}
		if len(list) > 0 {
			*p = ProductInfo(list[0])
		}
		return nil
	}
	var f productInfoFields
	if err := json.Unmarshal(text, &f); err != nil {
		return fmt.Errorf("protocol: decode productInfo: %w", err)
	}
	*p = ProductInfo(f)
	return nil
}

func (p *ProductInfo) check(c *checker, prefix string) {
	c.optional(prefix+".productId", string(p.ProductID), maxID)
	c.optional(prefix+".skuCode", string(p.SKUCode), maxID)
	c.optional(prefix+".linearValue", string(p.LinearValue), 20)
	c.optional(prefix+".productName", string(p.ProductName), maxFreeText)
}

// ProductInfoList is a list of ProductInfo that also accepts a single
// object or a JSON string holding either.
type ProductInfoList []ProductInfo

// UnmarshalJSON implements json.Unmarshaler.
func (l *ProductInfoList) UnmarshalJSON(b []byte) error {
	text, ok, err := unquoteJSONText(b)
	if err != nil {
		return fmt.Errorf("protocol: decode productInfo list: %w", err)
	}
	if !ok || bytes.Equal(text, []byte("null")) {
		return nil
	}
	if text[0] == '{' {
		var p ProductInfo
		if err := json.Unmarshal(text, &p); err != nil {
			return err
		}
		*l = ProductInfoList{p}
		return nil
	}
	var list []ProductInfo
	if err := json.Unmarshal(text, &list); err != nil {
		return fmt.Errorf("protocol: decode productInfo list: %w", err)
	}
	*l = list
	return nil
}

// ExtendParamList is a list of name/value pairs. The Query Order structure
// is UNCONFIRMED, so it also accepts a JSON object (turned into pairs
// sorted by name) or a JSON string holding either.
type ExtendParamList []ExtendParam

// UnmarshalJSON implements json.Unmarshaler.
func (l *ExtendParamList) UnmarshalJSON(b []byte) error {
	text, ok, err := unquoteJSONText(b)
	if err != nil {
		return fmt.Errorf("protocol: decode extendParams: %w", err)
	}
	if !ok || bytes.Equal(text, []byte("null")) {
		return nil
	}
	if text[0] == '{' {
		var m map[string]FlexString
		if err := json.Unmarshal(text, &m); err != nil {
			return fmt.Errorf("protocol: decode extendParams: %w", err)
		}
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		list := make(ExtendParamList, 0, len(m))
		for _, k := range names {
			list = append(list, ExtendParam{Name: FlexString(k), Value: m[k]})
		}
		*l = list
		return nil
	}
	var list []ExtendParam
	if err := json.Unmarshal(text, &list); err != nil {
		return fmt.Errorf("protocol: decode extendParams: %w", err)
	}
	*l = list
	return nil
}

// Get returns the value of the first pair named name.
func (l ExtendParamList) Get(name string) (string, bool) {
	for _, p := range l {
		if string(p.Name) == name {
			return string(p.Value), true
		}
	}
	return "", false
}

// Query Order orderType values.
const (
	OrderTypeNew           = "NEW"
	OrderTypeTrial         = "TRIAL"
	OrderTypeTrialToFormal = "TRIAL_TO_FORMAL"
	OrderTypeUnsubscribe   = "UNSUBSCRIBE"
	OrderTypeRenew         = "RENEW"
	OrderTypeChange        = "CHANGE"
)

// Query Order chargingMode values (V2).
const (
	ChargingPeriod      = "PERIOD"
	ChargingOneTime     = "ONE_TIME"
	ChargingOnDemand    = "ON_DEMAND"
	ChargingOnDemandPkg = "ON_DEMAND_PKG"
)

// QueryOrderResponse is the Query Order reply. Gateway failures answer
// error_code/error_msg instead of resultCode/resultMsg; Code and Msg read
// whichever is present.
type QueryOrderResponse struct {
	ResultCode FlexString `json:"resultCode"`
	ResultMsg  FlexString `json:"resultMsg"`
	OrderInfo  *OrderInfo `json:"orderInfo,omitempty"`
	ErrorCode  FlexString `json:"error_code,omitempty"`
	ErrorMsg   FlexString `json:"error_msg,omitempty"`
}

// Code returns resultCode, or error_code when resultCode is absent.
func (r QueryOrderResponse) Code() string {
	if r.ResultCode != "" {
		return string(r.ResultCode)
	}
	return string(r.ErrorCode)
}

// Msg returns resultMsg, or error_msg when resultMsg is absent.
func (r QueryOrderResponse) Msg() string {
	if r.ResultMsg != "" {
		return string(r.ResultMsg)
	}
	return string(r.ErrorMsg)
}

// Success reports whether Code is a success code (MKT.0000 or CBC.0000).
func (r QueryOrderResponse) Success() bool { return OpenAPISuccess(r.Code()) }

// DecodeQueryOrderResponse decodes a Query Order reply leniently.
func DecodeQueryOrderResponse(body []byte) (QueryOrderResponse, error) {
	var r QueryOrderResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return QueryOrderResponse{}, &DecodeError{What: "query order response", Err: err}
	}
	return r, nil
}

// OrderInfo is the order of a Query Order reply.
type OrderInfo struct {
	OrderID      FlexString      `json:"orderId"`
	OrderType    FlexString      `json:"orderType"`
	CreateTime   FlexString      `json:"createTime"` // yyyyMMddHHmmss, UTC (zone UNCONFIRMED)
	OrderLine    []OrderLine     `json:"orderLine"`
	BuyerInfo    *BuyerInfo      `json:"buyerInfo,omitempty"`
	ExtendParams ExtendParamList `json:"extendParams,omitempty"`
}

// Line returns the order line with the given ID.
func (o OrderInfo) Line(orderLineID string) (OrderLine, bool) {
	for _, l := range o.OrderLine {
		if string(l.OrderLineID) == orderLineID {
			return l, true
		}
	}
	return OrderLine{}, false
}

// OrderLine is one line of an order.
type OrderLine struct {
	OrderLineID           FlexString      `json:"orderLineId"`
	ChargingMode          FlexString      `json:"chargingMode"` // Charging* constants (V1: integers)
	ExpireTime            FlexString      `json:"expireTime,omitempty"`
	PeriodType            FlexString      `json:"periodType,omitempty"`
	PeriodNumber          FlexNumber      `json:"periodNumber,omitempty"`
	Currency              FlexString      `json:"currency,omitempty"`
	CurrencyAfterDiscount FlexString      `json:"currencyAfterDiscount,omitempty"`
	ProductInfo           ProductInfoList `json:"productInfo,omitempty"`
	ExtendParams          ExtendParamList `json:"extendParams,omitempty"`
}

// BuyerInfo is the customer of an order. Whether mobilePhone and email are
// encrypted is UNCONFIRMED; try to decrypt when they look like iv+base64.
type BuyerInfo struct {
	CustomerID       FlexString `json:"customerId"`
	CustomerName     FlexString `json:"customerName"`
	CustomerRealName FlexString `json:"customerRealName,omitempty"`
	CustomerType     FlexString `json:"customerType,omitempty"` // integer in the example, accepted as text
	UserID           FlexString `json:"userId,omitempty"`
	UserName         FlexString `json:"userName,omitempty"`
	MobilePhone      FlexString `json:"mobilePhone,omitempty"`
	Email            FlexString `json:"email,omitempty"`
}

// Usage push limits.
const maxUsageRecords = 1000

// UsagePushRequest is the body of the new usage push. Its bytes are
// signed, and KooGallery wants keys in natural order, so every struct
// below declares its fields in alphabetical order of their JSON names.
type UsagePushRequest struct {
	UsageRecords []UsageRecord `json:"usage_records"`
}

// UsageRecord is one metered record of the new usage push.
type UsageRecord struct {
	BeginTime         string `json:"begin_time"`  // yyyyMMdd'T'HHmmss'Z'
	EndTime           string `json:"end_time"`    // yyyyMMdd'T'HHmmss'Z'
	InstanceID        string `json:"instance_id"` // pay-per-use instance
	MeteringSN        string `json:"metering_sn"` // unique; reuse it on retry
	RecordTime        string `json:"record_time"` // yyyyMMdd'T'HHmmss'Z'
	RelatePkgInstance string `json:"relate_pkg_instance,omitempty"`
	UsageValue        string `json:"usage_value"` // decimal text, > 0, ≤ 4 decimals
}

// Validate checks the body against the usage-push table: 1 to 1000
// records, each complete, times in yyyyMMdd'T'HHmmss'Z' with begin not
// after end, usage_value > 0 with at most 4 decimals.
func (r UsagePushRequest) Validate() error {
	var c checker
	if len(r.UsageRecords) == 0 {
		c.fail("usage_records", "missing")
	}
	if len(r.UsageRecords) > maxUsageRecords {
		c.fail("usage_records", "more than 1000 records")
	}
	for i, rec := range r.UsageRecords {
		p := "usage_records[" + itoa(i) + "]."
		c.required(p+"instance_id", rec.InstanceID, 64)
		checkUsageTimes(&c, p, rec.RecordTime, rec.BeginTime, rec.EndTime)
		checkUsageValue(&c, p+"usage_value", rec.UsageValue)
		c.required(p+"metering_sn", rec.MeteringSN, 64)
		c.optional(p+"relate_pkg_instance", rec.RelatePkgInstance, 64)
	}
	return c.result()
}

func checkUsageTimes(c *checker, p, record, begin, end string) {
	for _, f := range []struct{ name, v string }{{"record_time", record}, {"begin_time", begin}, {"end_time", end}} {
		c.required(p+f.name, f.v, 17)
		c.timeFormat(p+f.name, f.v, ParseUsageTime, problemUsageTime)
	}
	if c.ok() && begin > end { // same fixed-width layout: string order is time order
		c.fail(p+"end_time", "before begin_time")
	}
}

func checkUsageValue(c *checker, field, v string) {
	c.required(field, v, 20)
	if !c.ok() {
		return
	}
	if d, err := ParseDecimal(v); err != nil || d.Sign() <= 0 || strings.HasPrefix(v, "-") {
		c.fail(field, "not a number greater than 0 with at most 4 decimals")
	}
}

// OldUsagePushRequest is the body of the old usage push
// (/rest/marketplace/v1/isv/usage-data), whose records carry product_id.
type OldUsagePushRequest struct {
	UsageRecords []OldUsageRecord `json:"usage_records"`
}

// OldUsageRecord is one record of the old usage push.
type OldUsageRecord struct {
	BeginTime         string `json:"begin_time"`
	EndTime           string `json:"end_time"`
	InstanceID        string `json:"instance_id"`
	ProductID         string `json:"product_id"`
	RecordTime        string `json:"record_time"`
	RelatePkgInstance string `json:"relate_pkg_instance,omitempty"`
	UsageValue        string `json:"usage_value"`
}

// Validate checks the old body like UsagePushRequest.Validate, with
// product_id instead of metering_sn.
func (r OldUsagePushRequest) Validate() error {
	var c checker
	if len(r.UsageRecords) == 0 {
		c.fail("usage_records", "missing")
	}
	if len(r.UsageRecords) > maxUsageRecords {
		c.fail("usage_records", "more than 1000 records")
	}
	for i, rec := range r.UsageRecords {
		p := "usage_records[" + itoa(i) + "]."
		c.required(p+"instance_id", rec.InstanceID, 64)
		c.required(p+"product_id", rec.ProductID, 64)
		checkUsageTimes(&c, p, rec.RecordTime, rec.BeginTime, rec.EndTime)
		checkUsageValue(&c, p+"usage_value", rec.UsageValue)
		c.optional(p+"relate_pkg_instance", rec.RelatePkgInstance, 64)
	}
	return c.result()
}

// OpenAPIResult is the error_code/error_msg reply of the Open APIs, with
// every other field kept in Extra (the shape of rejected-record lists and
// extra_info is UNCONFIRMED).
type OpenAPIResult struct {
	ErrorCode string
	ErrorMsg  string
	Extra     map[string]json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *OpenAPIResult) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("protocol: decode open API result: %w", err)
	}
	var code, msg FlexString
	if raw, ok := m["error_code"]; ok {
		if err := code.UnmarshalJSON(raw); err != nil {
			return err
		}
		delete(m, "error_code")
	}
	if raw, ok := m["error_msg"]; ok {
		if err := msg.UnmarshalJSON(raw); err != nil {
			return err
		}
		delete(m, "error_msg")
	}
	if len(m) == 0 {
		m = nil
	}
	*r = OpenAPIResult{ErrorCode: string(code), ErrorMsg: string(msg), Extra: m}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (r OpenAPIResult) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(r.Extra)+2)
	for k, v := range r.Extra {
		m[k] = v
	}
	m["error_code"] = r.ErrorCode
	m["error_msg"] = r.ErrorMsg
	return json.Marshal(m)
}

// Success reports whether ErrorCode is a success code.
func (r OpenAPIResult) Success() bool { return OpenAPISuccess(r.ErrorCode) }

// UsagePushResponse is the usage push reply (new and old).
type UsagePushResponse = OpenAPIResult

// LicenseActivateRequest is the v1 license activate body.
type LicenseActivateRequest struct {
	License        string `json:"license"`
	RealEffectTime string `json:"real_effect_time,omitempty"` // yyyyMMddHHmmss, UTC
}

// Validate checks the body against the activate table.
func (r LicenseActivateRequest) Validate() error {
	var c checker
	c.required("license", r.License, 64)
	c.optional("real_effect_time", r.RealEffectTime, 16)
	c.timeFormat("real_effect_time", r.RealEffectTime, ParseTime14, problemTime14)
	return c.result()
}

// LicenseActivateV2Request is the v2 (batch) license activate body.
type LicenseActivateV2Request struct {
	LicenseList    []string `json:"license_list"`
	RealEffectTime string   `json:"real_effect_time,omitempty"`
}

// Validate checks 1 to 100 codes of at most 64 characters.
func (r LicenseActivateV2Request) Validate() error {
	var c checker
	if len(r.LicenseList) == 0 {
		c.fail("license_list", "missing")
	}
	if len(r.LicenseList) > 100 {
		c.fail("license_list", "more than 100 license codes")
	}
	for i, l := range r.LicenseList {
		c.required("license_list["+itoa(i)+"]", l, 64)
	}
	c.optional("real_effect_time", r.RealEffectTime, 16)
	c.timeFormat("real_effect_time", r.RealEffectTime, ParseTime14, problemTime14)
	return c.result()
}

// LicenseActivateResponse is the license activate reply.
type LicenseActivateResponse struct {
	ErrorCode FlexString           `json:"error_code"`
	ErrorMsg  FlexString           `json:"error_msg"`
	Data      *LicenseActivateData `json:"data,omitempty"`
}

// Success reports whether ErrorCode is 92020000.
func (r LicenseActivateResponse) Success() bool { return OpenAPISuccess(string(r.ErrorCode)) }

// LicenseActivateData holds license_code_info, a JSON document encoded as
// a string (a plain object is accepted too).
type LicenseActivateData struct {
	LicenseCodeInfo FlexString `json:"license_code_info"`
}

// LicenseCodeInfo is the decoded license_code_info. ExpireTime is only an
// estimate; query the license for the real value.
type LicenseCodeInfo struct {
	Status     FlexString `json:"status"`
	ExpireTime FlexString `json:"expire_time"`
	ProductID  FlexString `json:"product_id"`
	OrderID    FlexString `json:"order_id"`
	Amount     FlexNumber `json:"amount"`
}

var errNoLicenseCodeInfo = errors.New("protocol: license_code_info is empty")

// Info decodes LicenseCodeInfo.
func (d LicenseActivateData) Info() (LicenseCodeInfo, error) {
	s := strings.TrimSpace(string(d.LicenseCodeInfo))
	if s == "" {
		return LicenseCodeInfo{}, errNoLicenseCodeInfo
	}
	var info LicenseCodeInfo
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		return LicenseCodeInfo{}, &DecodeError{What: "license_code_info", Err: err}
	}
	return info, nil
}

// License statuses of LicenseInfo and LicenseCodeInfo.
const (
	LicenseStatusAlive    = "ALIVE"
	LicenseStatusExpired  = "EXPIRED"
	LicenseStatusReleased = "RELEASED"
)

// LicenseQueryRequest is the license query (ex-heartbeat) body.
type LicenseQueryRequest struct {
	// HeartbeatInfo is deprecated (report usage with
	// SoftwareUsageInfoRequest) but still accepted.
	HeartbeatInfo *HeartbeatInfo `json:"heartbeatInfo,omitempty"`
	License       string         `json:"license"`
}

// HeartbeatInfo is the deprecated usage part of a license query.
type HeartbeatInfo struct {
	IP                string `json:"ip,omitempty"`
	ThirdPartyAccount string `json:"thirdPartyAccount"`
}

// Validate checks the body against the query table.
func (r LicenseQueryRequest) Validate() error {
	var c checker
	c.required("license", r.License, 64)
	if h := r.HeartbeatInfo; h != nil {
		c.required("heartbeatInfo.thirdPartyAccount", h.ThirdPartyAccount, 256)
		c.optional("heartbeatInfo.ip", h.IP, 32)
	}
	return c.result()
}

// LicenseQueryResponse is the license query reply.
type LicenseQueryResponse struct {
	ErrorCode FlexString   `json:"error_code"`
	ErrorMsg  FlexString   `json:"error_msg"`
	Data      *LicenseInfo `json:"data,omitempty"`
}

// Success reports whether ErrorCode is 92020000.
func (r LicenseQueryResponse) Success() bool { return OpenAPISuccess(string(r.ErrorCode)) }

// LicenseInfo is a license's state. The documented table is cut off after
// activate_time (UNCONFIRMED); expire_time is read when present and every
// other field is kept in Extra.
type LicenseInfo struct {
	LicenseCode  string
	Status       string
	ActivateTime string
	ExpireTime   string
	Extra        map[string]json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *LicenseInfo) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("protocol: decode license info: %w", err)
	}
	take := func(name string) (string, error) {
		raw, ok := m[name]
		if !ok {
			return "", nil
		}
		delete(m, name)
		var s FlexString
		err := s.UnmarshalJSON(raw)
		return string(s), err
	}
	var out LicenseInfo
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"license_code", &out.LicenseCode}, {"status", &out.Status}, {"activate_time", &out.ActivateTime}, {"expire_time", &out.ExpireTime}} {
		if *f.dst, err = take(f.name); err != nil {
			return err
		}
	}
	if len(m) > 0 {
		out.Extra = m
	}
	*l = out
	return nil
}

// MarshalJSON implements json.Marshaler.
func (l LicenseInfo) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(l.Extra)+4)
	for k, v := range l.Extra {
		m[k] = v
	}
	m["license_code"] = l.LicenseCode
	m["status"] = l.Status
	m["activate_time"] = l.ActivateTime
	if l.ExpireTime != "" {
		m["expire_time"] = l.ExpireTime
	}
	return json.Marshal(m)
}

// SoftwareUsageInfoRequest is the license software-usage-info body.
type SoftwareUsageInfoRequest struct {
	UsageInfo []SoftwareUsageEntry `json:"usage_info"`
}

// SoftwareUsageEntry is one license in a software-usage-info body.
type SoftwareUsageEntry struct {
	License string `json:"license"`
	// SoftwareUsageInfo uses the documented JSON name, capital I included.
	SoftwareUsageInfo []SoftwareUsageItem `json:"software_usage_Info"`
}

// SoftwareUsageItem carries exactly one of ActiveNum (a count) or ID (a
// user or device identifier).
type SoftwareUsageItem struct {
	ActiveNum *int   `json:"active_num,omitempty"`
	ID        string `json:"id,omitempty"`
}

// Validate checks 1 to 100 entries, each with a license and items holding
// exactly one of id or active_num.
func (r SoftwareUsageInfoRequest) Validate() error {
	var c checker
	if len(r.UsageInfo) == 0 {
		c.fail("usage_info", "missing")
	}
	if len(r.UsageInfo) > 100 {
		c.fail("usage_info", "more than 100 entries")
	}
	for i, e := range r.UsageInfo {
		p := "usage_info[" + itoa(i) + "]."
		c.required(p+"license", e.License, 64)
		for j, it := range e.SoftwareUsageInfo {
			q := p + "software_usage_Info[" + itoa(j) + "]"
			if c.ok() && (it.ActiveNum == nil) == (it.ID == "") {
				c.fail(q, "must have exactly one of id or active_num")
			}
			c.optional(q+".id", it.ID, 256)
			if c.ok() && it.ActiveNum != nil && *it.ActiveNum < 0 {
				c.fail(q+".active_num", "negative")
			}
		}
	}
	return c.result()
}

// SoftwareUsageInfoResponse is the software-usage-info reply; the failed
// entries list in data is UNCONFIRMED and kept raw.
type SoftwareUsageInfoResponse struct {
	ErrorCode FlexString                 `json:"error_code"`
	ErrorMsg  FlexString                 `json:"error_msg"`
	Data      map[string]json.RawMessage `json:"data,omitempty"`
}

// License upload types.
const (
	UploadTypeCharacters = "CHARACTERS"
	UploadTypeFile       = "FILE"
)

// IsvUpdateFileReq is the isvUpdateFileReq JSON part of the license upload
// (multipart) request.
type IsvUpdateFileReq struct {
	Characters string `json:"characters,omitempty"`
	FileName   string `json:"file_name,omitempty"`
	SHA256     string `json:"sha256,omitempty"` // hex assumed (UNCONFIRMED)
	Type       string `json:"type"`
}

// Validate checks the type and the fields it needs: characters (≤ 1024)
// for CHARACTERS, file_name and sha256 for FILE. The sha256 encoding is
// UNCONFIRMED, so only its presence and a cap of 128 are checked.
func (r IsvUpdateFileReq) Validate() error {
	var c checker
	c.required("type", r.Type, 16)
	c.oneOf("type", r.Type, UploadTypeCharacters, UploadTypeFile)
	if r.Type == UploadTypeCharacters {
		c.required("characters", r.Characters, 1024)
	} else {
		c.required("file_name", r.FileName, 255)
		c.required("sha256", r.SHA256, 128)
	}
	return c.result()
}
