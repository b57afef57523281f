package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kit (joint-operation) operations: the last path segment of
// /produceAPI/<name> (V1) and /produceAPI/v2/<name> (V2).
const (
	KitTenantSync      = "tenantSync"
	KitApplicationSync = "applicationSync"
	KitAuthSync        = "authSync"
	KitSingleOrgSync   = "singleOrgSync"
	KitAllOrgSync      = "allOrgSync"
)

// Kit flag values.
const (
	KitFlagDelete = 0
	KitFlagAdd    = 1
	KitFlagModify = 2
	KitFlagRevoke = 3 // authSync only (V2): revoke authorisation
)

// KitUnset is the value DecodeKit presets Flag and TestFlag to, so that
// Validate can tell an absent flag from 0 (delete / production).
const KitUnset FlexInt = -1

// Kit user roles.
const (
	KitRoleUser  = "user"
	KitRoleAdmin = "admin"
)

// maxKitUsers is the documented limit of users per authSync call.
const maxKitUsers = 500

// KitOperation extracts the operation from a Kit request path:
// "/produceAPI/v2/tenantSync" → ("tenantSync", 2, true) and
// "/produceAPI/tenantSync" → ("tenantSync", 1, true). Anything may precede
// "/produceAPI/" (the seller's own path prefix); a trailing slash is
// ignored; unknown names report ok == false.
func KitOperation(path string) (name string, version int, ok bool) {
	p := strings.TrimSuffix(path, "/")
	i := strings.LastIndex(p, "/produceAPI/")
	if i < 0 {
		return "", 0, false
	}
	rest := p[i+len("/produceAPI/"):]
	version = 1
	if r, found := strings.CutPrefix(rest, "v2/"); found {
		rest, version = r, 2
	}
	switch rest {
	case KitTenantSync, KitApplicationSync, KitAuthSync, KitSingleOrgSync, KitAllOrgSync:
		return rest, version, true
	}
	return "", 0, false
}

// KitRequest is a decoded Kit request.
type KitRequest interface {
	// Operation returns the Kit* operation name.
	Operation() string
	// Validate checks the fields against the spec table; the error is a *FieldError.
	Validate() error
	// IsTest reports whether testFlag is 1.
	IsTest() bool
}

// checkKitCommon checks testFlag (0 or 1, mandatory) and timeStamp
// (yyyyMMddHHmmssSSS, GMT+8, mandatory).
func checkKitCommon(c *checker, testFlag FlexInt, timeStamp string) {
	if c.ok() && testFlag == KitUnset {
		c.fail("testFlag", "missing")
	}
	if c.ok() && testFlag != 0 && testFlag != 1 {
		c.fail("testFlag", "must be 0 or 1")
	}
	c.required("timeStamp", timeStamp, 20)
	c.timeFormat("timeStamp", timeStamp, ParseKitTime, problemKitTimeStamp)
}

// checkKitFlag checks a mandatory flag against max (2, or 3 for authSync).
func checkKitFlag(c *checker, flag FlexInt, max FlexInt) {
	if c.ok() && flag == KitUnset {
		c.fail("flag", "missing")
	}
	if c.ok() && (flag < 0 || flag > max) {
		if max == KitFlagRevoke {
			c.fail("flag", "must be 0, 1, 2 or 3")
		} else {
			c.fail("flag", "must be 0, 1 or 2")
		}
	}
}

// TenantSyncRequest is tenantSync: create, modify or delete the buyer's
// enterprise. InstanceID and OrderID are mandatory in the table but empty
// when the seller applies for app credentials, so only their lengths are
// checked.
type TenantSyncRequest struct {
	DomainName string  `json:"domainName"`
	Flag       FlexInt `json:"flag"`
	InstanceID string  `json:"instanceId"`
	Name       string  `json:"name"`
	OrderID    string  `json:"orderId"`
	TenantCode string  `json:"tenantCode"`
	TenantID   string  `json:"tenantId"`
	TestFlag   FlexInt `json:"testFlag"`
	TimeStamp  string  `json:"timeStamp"`
}

// Operation returns KitTenantSync.
func (TenantSyncRequest) Operation() string { return KitTenantSync }

// IsTest reports whether testFlag is 1.
func (r TenantSyncRequest) IsTest() bool { return r.TestFlag == 1 }

// Time parses TimeStamp (GMT+8).
func (r TenantSyncRequest) Time() (time.Time, error) { return ParseKitTime(r.TimeStamp) }

// Validate checks the request against the tenantSync table.
func (r TenantSyncRequest) Validate() error {
	var c checker
	c.optional("instanceId", r.InstanceID, 64)
	c.optional("orderId", r.OrderID, 64)
	c.required("tenantId", r.TenantID, 64)
	c.required("tenantCode", r.TenantCode, 64)
	c.required("name", r.Name, 255)
	c.required("domainName", r.DomainName, 255)
	checkKitFlag(&c, r.Flag, KitFlagModify)
	checkKitCommon(&c, r.TestFlag, r.TimeStamp)
	return c.result()
}

// ApplicationSyncRequest is applicationSync: the tenant's OAuth client.
// ClientSecret is RSA-OAEP encrypted with the seller's public key (see
// protocol/sign).
type ApplicationSyncRequest struct {
	AppID        string  `json:"appId"`
	ClientID     string  `json:"clientId"`
	ClientSecret string  `json:"clientSecret"`
	Flag         FlexInt `json:"flag"`
	InstanceID   string  `json:"instanceId"`
	TenantID     string  `json:"tenantId"`
	TestFlag     FlexInt `json:"testFlag"`
	TimeStamp    string  `json:"timeStamp"`
}

// Operation returns KitApplicationSync.
func (ApplicationSyncRequest) Operation() string { return KitApplicationSync }

// IsTest reports whether testFlag is 1.
func (r ApplicationSyncRequest) IsTest() bool { return r.TestFlag == 1 }

// Validate checks the request against the applicationSync table. The
// secret has no printed length; 4096 characters holds the base64 of an
// RSA-8192 ciphertext. A delete (flag 0) names the app by tenantId and
// appId, so its clientId and clientSecret may be empty (the tolerant
// reading: the table marks them mandatory without saying so for deletes).
func (r ApplicationSyncRequest) Validate() error {
	var c checker
	c.optional("instanceId", r.InstanceID, 64)
	c.required("tenantId", r.TenantID, 64)
	c.required("appId", r.AppID, 64)
	if r.Flag == KitFlagDelete {
		c.optional("clientId", r.ClientID, 64)
		c.optional("clientSecret", r.ClientSecret, 4096)
	} else {
		c.required("clientId", r.ClientID, 64)
		c.required("clientSecret", r.ClientSecret, 4096)
	}
	checkKitFlag(&c, r.Flag, KitFlagModify)
	checkKitCommon(&c, r.TestFlag, r.TimeStamp)
	return c.result()
}

// AuthSyncRequest is authSync: users the enterprise authorised for the app.
type AuthSyncRequest struct {
	AppID           string      `json:"appId"`
	CurrentSyncTime string      `json:"currentSyncTime"`
	Flag            FlexInt     `json:"flag"`
	InstanceID      string      `json:"instanceId"`
	TenantID        string      `json:"tenantId"`
	TestFlag        FlexInt     `json:"testFlag"`
	TimeStamp       string      `json:"timeStamp"`
	UserList        KitUserList `json:"userList"`
}

// Operation returns KitAuthSync.
func (AuthSyncRequest) Operation() string { return KitAuthSync }

// IsTest reports whether testFlag is 1.
func (r AuthSyncRequest) IsTest() bool { return r.TestFlag == 1 }

// Validate checks the request against the authSync table. The
// currentSyncTime format is UNCONFIRMED, so only presence and a cap of 32
// are checked. flag 3 (revoke) is accepted for V1 and V2 alike. instanceId
// may be empty: the seller's test account is authorised without an
// instance (saas-v1-joint-login.md §B.7). A delete or a revocation (flag 0
// or 3) names its users by userName; their other fields are checked only
// when present.
func (r AuthSyncRequest) Validate() error {
	var c checker
	c.optional("instanceId", r.InstanceID, 64)
	c.required("tenantId", r.TenantID, 64)
	c.required("appId", r.AppID, 64)
	if c.ok() && r.UserList == nil {
		c.fail("userList", "missing")
	}
	if c.ok() && len(r.UserList) > maxKitUsers {
		c.fail("userList", "more than 500 users")
	}
	byName := r.Flag == KitFlagDelete || r.Flag == KitFlagRevoke
	for i, u := range r.UserList {
		if byName {
			u.checkName(&c, "userList["+itoa(i)+"]")
		} else {
			u.check(&c, "userList["+itoa(i)+"]")
		}
	}
	c.required("currentSyncTime", r.CurrentSyncTime, 32)
	checkKitFlag(&c, r.Flag, KitFlagRevoke)
	checkKitCommon(&c, r.TestFlag, r.TimeStamp)
	return c.result()
}

// KitUser is one user of authSync. Huawei's example nests entryDate,
// employeeType and workPlace under "extension"; both layouts are accepted.
// When a field is present both flat and nested, the flat value wins (it
// is the documented layout); nested values only fill absent flat ones.
type KitUser struct {
	Email        string    `json:"email,omitempty"`
	EmployeeCode string    `json:"employeeCode,omitempty"`
	EmployeeType FlexInt   `json:"employeeType,omitempty"` // 1 regular, 2 intern, 3 dispatched, 4 outsourced; 0 absent
	Enable       *FlexBool `json:"enable"`
	EntryDate    string    `json:"entryDate,omitempty"`
	Mobile       string    `json:"mobile,omitempty"`
	Name         string    `json:"name"`
	OrgCode      string    `json:"orgCode"`
	Position     string    `json:"position,omitempty"`
	Role         string    `json:"role"`
	UserName     string    `json:"userName"`
	WorkPlace    string    `json:"workPlace,omitempty"`
}

type kitUserFields struct {
	Email        FlexString `json:"email"`
	EmployeeCode FlexString `json:"employeeCode"`
	EmployeeType FlexInt    `json:"employeeType"`
	Enable       *FlexBool  `json:"enable"`
	EntryDate    FlexString `json:"entryDate"`
	Mobile       FlexString `json:"mobile"`
	Name         FlexString `json:"name"`
	OrgCode      FlexString `json:"orgCode"`
	Position     FlexString `json:"position"`
	Role         FlexString `json:"role"`
	UserName     FlexString `json:"userName"`
	WorkPlace    FlexString `json:"workPlace"`
	Extension    *struct {
		EmployeeType FlexInt    `json:"employeeType"`
		EntryDate    FlexString `json:"entryDate"`
		WorkPlace    FlexString `json:"workPlace"`
		EmployeeCode FlexString `json:"employeeCode"`
		Position     FlexString `json:"position"`
	} `json:"extension"`
}

// UnmarshalJSON implements json.Unmarshaler (flat or nested extension).
func (u *KitUser) UnmarshalJSON(b []byte) error {
	var f kitUserFields
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("protocol: decode kit user: %w", err)
	}
	out := KitUser{Email: string(f.Email), EmployeeCode: string(f.EmployeeCode), EmployeeType: f.EmployeeType,
		Enable: f.Enable, EntryDate: string(f.EntryDate), Mobile: string(f.Mobile), Name: string(f.Name),
		OrgCode: string(f.OrgCode), Position: string(f.Position), Role: string(f.Role),
		UserName: string(f.UserName), WorkPlace: string(f.WorkPlace)}
	if x := f.Extension; x != nil {
		if out.EmployeeType == 0 {
			out.EmployeeType = x.EmployeeType
		}
		if out.EntryDate == "" {
			out.EntryDate = string(x.EntryDate)
		}
		if out.WorkPlace == "" {
			out.WorkPlace = string(x.WorkPlace)
		}
		if out.EmployeeCode == "" {
			out.EmployeeCode = string(x.EmployeeCode)
		}
		if out.Position == "" {
			out.Position = string(x.Position)
		}
	}
	*u = out
	return nil
}

// Enabled reports the enable flag (false when absent).
func (u KitUser) Enabled() bool { return u.Enable != nil && bool(*u.Enable) }

// Validate checks the user against the authSync user table.
func (u KitUser) Validate() error {
	var c checker
	u.check(&c, "user")
	return c.result()
}

// checkName applies the user table to a user named for a delete or a
// revocation: userName is required, the rest only checked for length.
func (u KitUser) checkName(c *checker, p string) {
	c.required(p+".userName", u.UserName, 128)
	c.optional(p+".name", u.Name, 128)
	c.optional(p+".position", u.Position, 128)
	c.optional(p+".orgCode", u.OrgCode, 64)
	c.optional(p+".role", u.Role, 16)
	c.optional(p+".employeeCode", u.EmployeeCode, 64)
	c.optional(p+".mobile", u.Mobile, 32)
	c.optional(p+".email", u.Email, 256)
	c.optional(p+".workPlace", u.WorkPlace, 256)
	c.optional(p+".entryDate", u.EntryDate, 32)
}

// check applies the user table. Lengths are not printed: identifiers get
// 64, names, positions and places 128 or 256, e-mail 256, mobile 32.
func (u KitUser) check(c *checker, p string) {
	c.required(p+".userName", u.UserName, 128)
	c.required(p+".name", u.Name, 128)
	c.optional(p+".position", u.Position, 128)
	c.required(p+".orgCode", u.OrgCode, 64)
	c.required(p+".role", u.Role, 16)
	c.oneOf(p+".role", u.Role, KitRoleUser, KitRoleAdmin)
	if c.ok() && u.Enable == nil {
		c.fail(p+".enable", "missing")
	}
	c.optional(p+".employeeCode", u.EmployeeCode, 64)
	if c.ok() && u.EmployeeType != 0 && (u.EmployeeType < 1 || u.EmployeeType > 4) {
		c.fail(p+".employeeType", "must be 1, 2, 3 or 4")
	}
	c.optional(p+".mobile", u.Mobile, 32)
	c.optional(p+".email", u.Email, 256)
	c.optional(p+".workPlace", u.WorkPlace, 256)
	c.optional(p+".entryDate", u.EntryDate, 32)
}

// KitUserList is authSync's userList: a JSON array, or (V1, and the
// published examples) a JSON string holding the array. An empty array or
// blank string decodes to an empty, non-nil list.
type KitUserList []KitUser

// UnmarshalJSON implements json.Unmarshaler.
func (l *KitUserList) UnmarshalJSON(b []byte) error {
	text, ok, err := unquoteJSONText(b)
	if err != nil {
		return fmt.Errorf("protocol: decode userList: %w", err)
	}
	if !ok {
		*l = KitUserList{}
		return nil
	}
	if bytes.Equal(text, []byte("null")) {
		return nil
	}
	var list []KitUser
	if err := json.Unmarshal(text, &list); err != nil {
		return fmt.Errorf("protocol: decode userList: %w", err)
	}
	if list == nil {
		list = []KitUser{}
	}
	*l = list
	return nil
}

// SingleOrgSyncRequest is singleOrgSync: one department added, modified or
// deleted.
type SingleOrgSyncRequest struct {
	Flag       FlexInt `json:"flag"`
	InstanceID string  `json:"instanceId"`
	OrgCode    string  `json:"orgCode"`
	OrgName    string  `json:"orgName"`
	ParentCode string  `json:"parentCode,omitempty"`
	TenantID   string  `json:"tenantId"`
	TestFlag   FlexInt `json:"testFlag"`
	TimeStamp  string  `json:"timeStamp"`
}

// Operation returns KitSingleOrgSync.
func (SingleOrgSyncRequest) Operation() string { return KitSingleOrgSync }

// IsTest reports whether testFlag is 1.
func (r SingleOrgSyncRequest) IsTest() bool { return r.TestFlag == 1 }

// Validate checks the request against the singleOrgSync table. instanceId
// may be empty, as in the other calls of the test-account flow.
func (r SingleOrgSyncRequest) Validate() error {
	var c checker
	c.optional("instanceId", r.InstanceID, 64)
	c.required("tenantId", r.TenantID, 64)
	c.required("orgCode", r.OrgCode, 64)
	if r.Flag == KitFlagDelete { // a delete names the department by its code
		c.optional("orgName", r.OrgName, 128)
	} else {
		c.required("orgName", r.OrgName, 128)
	}
	c.optional("parentCode", r.ParentCode, 64)
	if c.ok() && r.ParentCode != "" && r.ParentCode == r.OrgCode {
		c.fail("parentCode", "a department cannot be its own parent")
	}
	checkKitFlag(&c, r.Flag, KitFlagModify)
	checkKitCommon(&c, r.TestFlag, r.TimeStamp)
	return c.result()
}

// KitOrg is one department of allOrgSync.
type KitOrg struct {
	OrgCode    string `json:"orgCode"`
	OrgName    string `json:"orgName"`
	ParentCode string `json:"parentCode,omitempty"`
}

// UnmarshalJSON accepts orgName (V2) or name (V1); orgName wins when both
// are present.
func (o *KitOrg) UnmarshalJSON(b []byte) error {
	var f struct {
		OrgCode    FlexString `json:"orgCode"`
		OrgName    FlexString `json:"orgName"`
		Name       FlexString `json:"name"`
		ParentCode FlexString `json:"parentCode"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("protocol: decode org: %w", err)
	}
	name := f.OrgName
	if name == "" {
		name = f.Name
	}
	*o = KitOrg{OrgCode: string(f.OrgCode), OrgName: string(name), ParentCode: string(f.ParentCode)}
	return nil
}

// KitOrgList is a department list: a JSON array or a JSON string holding
// one. An empty array or blank string decodes to an empty, non-nil list.
type KitOrgList []KitOrg

// UnmarshalJSON implements json.Unmarshaler.
func (l *KitOrgList) UnmarshalJSON(b []byte) error {
	text, ok, err := unquoteJSONText(b)
	if err != nil {
		return fmt.Errorf("protocol: decode org list: %w", err)
	}
	if !ok {
		*l = KitOrgList{}
		return nil
	}
	if bytes.Equal(text, []byte("null")) {
		return nil
	}
	var list []KitOrg
	if err := json.Unmarshal(text, &list); err != nil {
		return fmt.Errorf("protocol: decode org list: %w", err)
	}
	if list == nil {
		list = []KitOrg{}
	}
	*l = list
	return nil
}

// AllOrgSyncRequest is allOrgSync: the tenant's whole department tree,
// which replaces the seller's copy. V2 sends orgInfoList (array or string)
// and V1 orgInfo (string, with "name"); DecodeKit moves a V1 orgInfo into
// OrgInfoList (and clears OrgInfo) so callers read one field. Flag appears
// in the published example only and is optional.
type AllOrgSyncRequest struct {
	Flag        FlexInt    `json:"flag"`
	InstanceID  string     `json:"instanceId"`
	OrgInfo     KitOrgList `json:"orgInfo,omitempty"`
	OrgInfoList KitOrgList `json:"orgInfoList"`
	TenantID    string     `json:"tenantId"`
	TestFlag    FlexInt    `json:"testFlag"`
	TimeStamp   string     `json:"timeStamp"`
}

// Operation returns KitAllOrgSync.
func (AllOrgSyncRequest) Operation() string { return KitAllOrgSync }

// IsTest reports whether testFlag is 1.
func (r AllOrgSyncRequest) IsTest() bool { return r.TestFlag == 1 }

// Orgs returns OrgInfoList, or OrgInfo when OrgInfoList is absent.
func (r AllOrgSyncRequest) Orgs() []KitOrg {
	if r.OrgInfoList != nil {
		return r.OrgInfoList
	}
	return r.OrgInfo
}

// Validate checks the request against the allOrgSync table (V1 and V2).
// instanceId may be empty: when the seller applies for an app credential or
// a test account, KooGallery sends tenantSync, applicationSync and
// allOrgSync without an instance (saas-v1-joint-login.md §B.7).
func (r AllOrgSyncRequest) Validate() error {
	var c checker
	c.optional("instanceId", r.InstanceID, 64)
	c.required("tenantId", r.TenantID, 64)
	orgs := r.Orgs()
	if c.ok() && orgs == nil {
		c.fail("orgInfoList", "missing")
	}
	for i, o := range orgs {
		p := "orgInfoList[" + itoa(i) + "]"
		c.required(p+".orgCode", o.OrgCode, 64)
		c.required(p+".orgName", o.OrgName, 128)
		c.optional(p+".parentCode", o.ParentCode, 64)
	}
	if c.ok() && r.Flag != KitUnset && (r.Flag < 0 || r.Flag > KitFlagModify) {
		c.fail("flag", "must be 0, 1 or 2")
	}
	checkKitCommon(&c, r.TestFlag, r.TimeStamp)
	return c.result()
}

// DecodeKit decodes a Kit body for operation name (from KitOperation) into
// its typed request. Flag and TestFlag are preset to KitUnset so Validate
// reports them missing when absent. Numbers are accepted for string fields
// (kept as their text) and numeric strings for integer fields; the body is
// otherwise read as strictly as by DecodeV2 (duplicated keys, invalid
// UTF-8, lone surrogates, NUL, booleans, objects or arrays for String
// fields are refused, inside userList and orgInfoList too, also when they
// arrive as JSON text in a string). An unknown name gives a *FieldError
// for "operation"; malformed JSON a *DecodeError. It does not call
// Validate.
func DecodeKit(name string, body []byte) (KitRequest, error) {
	var sh shape
	switch name {
	case KitAuthSync:
		sh = authSyncShape
	case KitAllOrgSync:
		sh = allOrgSyncShape
	}
	m, err := decodeFields(body, "kit body", sh)
	if err != nil {
		return nil, err
	}
	what := name + " body"
	switch name {
	case KitTenantSync:
		r := TenantSyncRequest{Flag: KitUnset, TestFlag: KitUnset}
		if err = decodeFieldsInto(m, what, &r); err != nil {
			return nil, err
		}
		return r, nil
	case KitApplicationSync:
		r := ApplicationSyncRequest{Flag: KitUnset, TestFlag: KitUnset}
		if err = decodeFieldsInto(m, what, &r); err != nil {
			return nil, err
		}
		return r, nil
	case KitAuthSync:
		r := AuthSyncRequest{Flag: KitUnset, TestFlag: KitUnset}
		if err = decodeFieldsInto(m, what, &r); err != nil {
			return nil, err
		}
		return r, nil
	case KitSingleOrgSync:
		r := SingleOrgSyncRequest{Flag: KitUnset, TestFlag: KitUnset}
		if err = decodeFieldsInto(m, what, &r); err != nil {
			return nil, err
		}
		return r, nil
	case KitAllOrgSync:
		r := AllOrgSyncRequest{Flag: KitUnset, TestFlag: KitUnset}
		if err = decodeFieldsInto(m, what, &r); err != nil {
			return nil, err
		}
		// orgInfo is only V1's spelling: fold it into OrgInfoList (an
		// empty orgInfoList does not hide a non-empty orgInfo).
		if len(r.OrgInfoList) == 0 && r.OrgInfo != nil {
			r.OrgInfoList = r.OrgInfo
		}
		r.OrgInfo = nil
		return r, nil
	default:
		return nil, &FieldError{Field: "operation", Problem: "unknown Kit operation"}
	}
}
