package protocol

import "strings"

// ResultCode is the resultCode of a production interface reply.
type ResultCode string

// Result codes of the production interfaces (SaaS V1/V2, Kit, license,
// online license, order notify). Codes 000101–000107 are only meaningful for
// newInstance.
const (
	CodeSuccess           ResultCode = "000000" // success
	CodeAuthFailed        ResultCode = "000001" // bad signature, stale timestamp or replayed nonce
	CodeInvalidParam      ResultCode = "000002" // invalid request parameter (also unknown activity)
	CodeInstanceNotFound  ResultCode = "000003" // instance (or license code) does not exist
	CodeProcessing        ResultCode = "000004" // accepted, still being processed
	CodeInternal          ResultCode = "000005" // other internal error
	CodeNoResource        ResultCode = "000100" // newInstance: no resource can be allocated
	CodeMobileInvalid     ResultCode = "000101" // newInstance: mobile number empty or duplicate
	CodeEmailInvalid      ResultCode = "000102" // newInstance: e-mail empty or duplicate
	CodeRepurchase        ResultCode = "000103" // newInstance: cannot be purchased again
	CodeServiceError      ResultCode = "000104" // newInstance: internal service error
	CodeAlreadySubscribed ResultCode = "000105" // newInstance: customer already holds the benefit
	CodeSoldOut           ResultCode = "000106" // newInstance: sold out
	CodeEmailDomainInUse  ResultCode = "000107" // newInstance: SaaS e-mail domain already in use
)

// Extra result codes of the online-license guide (在线开通License). Code
// 000100 is shared with CodeNoResource: in the online-license guide it means
// "no such instance resource", in the SaaS guides "no resource can be
// allocated". Both are failures; the meaning depends on the interface.
const (
	CodeNoSuchInstanceResource ResultCode = "000100" // online license: no such instance resource
	CodeQuotaInsufficient      ResultCode = "000900" // online license: quota insufficient
	CodeOutsideOrderValidity   ResultCode = "000901" // online license: must apply within the order validity period
	CodeExpiryRequired         ResultCode = "000902" // online license: a period license needs an expiry time
	CodeFingerprintRequired    ResultCode = "000903" // online license: device fingerprint required
)

var resultMeanings = map[ResultCode]string{
	CodeSuccess:              "success",
	CodeAuthFailed:           "authentication failed",
	CodeInvalidParam:         "invalid request parameter",
	CodeInstanceNotFound:     "instance does not exist",
	CodeProcessing:           "request is being processed",
	CodeInternal:             "internal error",
	CodeNoResource:           "no instance resource can be allocated (online license: no such instance resource)",
	CodeMobileInvalid:        "mobile number empty or duplicate",
	CodeEmailInvalid:         "e-mail empty or duplicate",
	CodeRepurchase:           "cannot be purchased again",
	CodeServiceError:         "internal service error",
	CodeAlreadySubscribed:    "customer already subscribed to the benefit",
	CodeSoldOut:              "sold out",
	CodeEmailDomainInUse:     "SaaS e-mail domain already in use",
	CodeQuotaInsufficient:    "quota insufficient",
	CodeOutsideOrderValidity: "must apply within the order validity period",
	CodeExpiryRequired:       "a period license needs an expiry time",
	CodeFingerprintRequired:  "device fingerprint required",
}

// String returns the code itself.
func (c ResultCode) String() string { return string(c) }

// Meaning returns a short English description of the code, or "unknown
// result code" for codes the spec does not list.
func (c ResultCode) Meaning() string {
	if m, ok := resultMeanings[c]; ok {
		return m
	}
	return "unknown result code"
}

// Success reports whether c is CodeSuccess.
func (c ResultCode) Success() bool { return c == CodeSuccess }

// Open API result codes of usage push and query order (resultCode /
// error_code). The MKT.* HTTP statuses come from the V1 usage-push table,
// which is the only one that prints them all.
const (
	MKTSuccess              = "MKT.0000" // HTTP 200: success
	MKTInternalError        = "MKT.0999" // HTTP 500: internal error
	MKTInputCheckFailed     = "MKT.0100" // HTTP 500: input check failed
	MKTInvalidParam         = "MKT.0101" // HTTP 400: invalid parameter
	MKTInvalidBodySignature = "MKT.0102" // HTTP 400: invalid body signature
	MKTParamError           = "MKT.0199" // HTTP 400: request parameter error
	MKTIllegalOperation     = "MKT.0150" // HTTP 401: illegal operation
	MKTNoAuthority          = "MKT.0151" // HTTP 401: no authority
	MKTIllegalToken         = "MKT.0154" // HTTP 401: illegal token
	MKTInstanceNotFound     = "MKT.9001" // HTTP 500: instance not found
	MKTInvalidUsageEntities = "MKT.9002" // HTTP 500: invalid usage entities
	MKTTooManyRecords       = "MKT.9003" // HTTP 500: more than 1000 records
	MKTBeginTimeTooOld      = "MKT.9004" // HTTP 500: begin_time older than 21 days

	CBCSuccess              = "CBC.0000" // HTTP 200: success
	CBCInternalError        = "CBC.0999" // HTTP 500: internal error
	CBCInputCheckFailed     = "CBC.0100" // HTTP 500: input check failed
	CBCInvalidParam         = "CBC.0101" // HTTP 400: invalid parameter
	CBCParamError           = "CBC.0199" // HTTP 400: parameter error
	CBCIllegalOperation     = "CBC.0150" // HTTP 401 (403 in the license-upload table): illegal operation
	CBCNoAuthority          = "CBC.0151" // HTTP 401: no authority
	CBCIllegalToken         = "CBC.0154" // HTTP 401: illegal token
	CBCRateLimited          = "CBC.0250" // HTTP 406: request frequency over limit
	CBCInstanceNotFound     = "CBC.9001" // HTTP 500: instance not found
	CBCInvalidUsageEntities = "CBC.9002" // invalid usage entities
	CBCTooManyRecords       = "CBC.9003" // more than 100 records
	CBCBeginTimeOutOfRange  = "CBC.9004" // beginTime out of range (21 days)
)

// License Open API error codes (activate, query, software usage).
const (
	LicenseSuccess                 = "92020000" // HTTP 200: success
	LicenseInternalError           = "92020001" // HTTP 500: internal error (one variant: 403 unauthorized)
	LicenseInvalidParam            = "92020002" // HTTP 400: invalid parameter
	LicenseIllegalState            = "92020003" // illegal state, e.g. already activated
	LicenseNotReceived             = "92020004" // cannot activate before the user has received the code
	LicenseNotFound                = "92020005" // license code does not exist
	LicenseNotActivated            = "92020011" // license code not activated
	LicenseInvalidInBatch          = "92020020" // an invalid license code exists in the batch
	LicenseRequestInvalid          = "95000001" // HTTP 400: request parameter invalid
	LicenseMethodNotSupported      = "95000002" // HTTP 405: HTTP method not supported
	LicenseContentTypeNotSupported = "95000003" // HTTP 415: content type not supported
	LicenseBodyNotReadable         = "95000004" // HTTP 400: request body not readable
)

// Online-license upload Open API error codes (all with HTTP 200).
const (
	OnlineLicenseResourceInvalid    = "91381033" // license resource invalid
	OnlineLicenseApplicationInvalid = "91381034" // license application invalid
	OnlineLicenseNoRemainingAmount  = "91381035" // no remaining amount for the period
	OnlineLicenseInnerError         = "91381036" // inner error
	OnlineLicenseInvalidFormat      = "91381037" // invalid license format
	OnlineLicenseApplicationDenied  = "91381038" // application denied
	OnlineLicensePermissionDenied   = "91380150" // role permission denied
)

// API gateway error codes.
const (
	APIGWAPINotFound        = "APIGW.0101" // HTTP 404: API does not exist or is not published
	APIGWBackendNotFound    = "APIGW.0103" // HTTP 404: backend does not exist
	APIGWPluginConfigError  = "APIGW.0104" // HTTP 400: plugin configuration error
	APIGWBackendConfigError = "APIGW.0105" // HTTP 400: backend configuration error
	APIGWOrchestrationError = "APIGW.0106" // HTTP 400: orchestration error
	APIGWBadRequest         = "APIGW.0201" // HTTP 400 (also 413, 414, 494, 502, 504): bad request
	APIGWAuthFailed         = "APIGW.0301" // HTTP 401: incorrect IAM authentication information
	APIGWNotAuthorized      = "APIGW.0302" // HTTP 403: IAM user not authorised
	APIGWAppAuthFailed      = "APIGW.0303" // HTTP 401: incorrect app authentication
	APIGThrottled           = "APIG.0308"  // HTTP 429: throttled
)

// OpenAPICodeInfo describes one Open API code.
type OpenAPICodeInfo struct {
	HTTPStatus int    // documented HTTP status, 0 when the spec prints none
	Meaning    string // short English description
}

var openAPICodes = map[string]OpenAPICodeInfo{
	MKTSuccess:              {200, "success"},
	MKTInternalError:        {500, "internal error"},
	MKTInputCheckFailed:     {500, "input check failed"},
	MKTInvalidParam:         {400, "invalid parameter"},
	MKTInvalidBodySignature: {400, "invalid body signature"},
	MKTParamError:           {400, "request parameter error"},
	MKTIllegalOperation:     {401, "illegal operation"},
	MKTNoAuthority:          {401, "no authority"},
	MKTIllegalToken:         {401, "illegal token"},
	MKTInstanceNotFound:     {500, "instance not found"},
	MKTInvalidUsageEntities: {500, "invalid usage entities"},
	MKTTooManyRecords:       {500, "more than 1000 records"},
	MKTBeginTimeTooOld:      {500, "begin_time older than 21 days"},

	CBCSuccess:              {200, "success"},
	CBCInternalError:        {500, "internal error"},
	CBCInputCheckFailed:     {500, "input check failed"},
	CBCInvalidParam:         {400, "invalid parameter"},
	CBCParamError:           {400, "parameter error"},
	CBCIllegalOperation:     {401, "illegal operation"},
	CBCNoAuthority:          {401, "no authority"},
	CBCIllegalToken:         {401, "illegal token"},
	CBCRateLimited:          {406, "request frequency over limit"},
	CBCInstanceNotFound:     {500, "instance not found"},
	CBCInvalidUsageEntities: {0, "invalid usage entities"},
	CBCTooManyRecords:       {0, "more than 100 records"},
	CBCBeginTimeOutOfRange:  {0, "beginTime out of range (21 days)"},

	LicenseSuccess:                 {200, "success"},
	LicenseInternalError:           {500, "internal error"},
	LicenseInvalidParam:            {400, "invalid parameter"},
	LicenseIllegalState:            {0, "illegal state"},
	LicenseNotReceived:             {0, "cannot activate before the user has received the code"},
	LicenseNotFound:                {0, "license code does not exist"},
	LicenseNotActivated:            {0, "license code not activated"},
	LicenseInvalidInBatch:          {0, "invalid license code exists"},
	LicenseRequestInvalid:          {400, "request parameter invalid"},
	LicenseMethodNotSupported:      {405, "HTTP method not supported"},
	LicenseContentTypeNotSupported: {415, "content type not supported"},
	LicenseBodyNotReadable:         {400, "request body not readable"},

	OnlineLicenseResourceInvalid:    {200, "license resource invalid"},
	OnlineLicenseApplicationInvalid: {200, "license application invalid"},
	OnlineLicenseNoRemainingAmount:  {200, "no remaining amount for the period"},
	OnlineLicenseInnerError:         {200, "inner error"},
	OnlineLicenseInvalidFormat:      {200, "invalid license format"},
	OnlineLicenseApplicationDenied:  {200, "application denied"},
	OnlineLicensePermissionDenied:   {200, "role permission denied"},

	APIGWAPINotFound:        {404, "API does not exist"},
	APIGWBackendNotFound:    {404, "backend does not exist"},
	APIGWPluginConfigError:  {400, "plugin configuration error"},
	APIGWBackendConfigError: {400, "backend configuration error"},
	APIGWOrchestrationError: {400, "orchestration error"},
	APIGWBadRequest:         {400, "bad request"},
	APIGWAuthFailed:         {401, "incorrect IAM authentication information"},
	APIGWNotAuthorized:      {403, "IAM user not authorised"},
	APIGWAppAuthFailed:      {401, "incorrect app authentication"},
	APIGThrottled:           {429, "throttled"},
}

// LookupOpenAPICode returns what the spec says about an Open API code. Unknown
// codes (the API may add new ones) report ok == false and must be treated as
// generic failures.
func LookupOpenAPICode(code string) (info OpenAPICodeInfo, ok bool) {
	info, ok = openAPICodes[strings.TrimSpace(code)]
	return info, ok
}

// OpenAPISuccess reports whether an Open API result or error code means
// success. Both MKT.0000 and CBC.0000 count (the query-order table says
// CBC.0000, the live mock answers MKT.0000), and so does the license API's
// 92020000.
func OpenAPISuccess(code string) bool {
	switch strings.TrimSpace(code) {
	case MKTSuccess, CBCSuccess, LicenseSuccess:
		return true
	}
	return false
}
