package openapi

import (
	"errors"
	"strings"

	"github.com/koobridge/koobridge/protocol"
)

// Sentinels of the license Open API error codes (license-openapi.md
// §A.8.4). An answer carrying one of these codes is returned as an *Error
// whose Is method matches the sentinel, so both
// errors.Is(err, ErrLicenseNotFound) and errors.As(err, &e) hold.
var (
	// ErrLicenseInternal is 92020001, an internal error (one copy of the
	// table lists it as 403 Unauthorized). Retryable.
	ErrLicenseInternal = errors.New("openapi: license API internal error (92020001)")
	// ErrLicenseInvalidParam is 92020002, an invalid parameter.
	ErrLicenseInvalidParam = errors.New("openapi: license API invalid parameter (92020002)")
	// ErrLicenseIllegalState is 92020003: the code is not in a state that
	// allows the call, for instance activating a code already active.
	ErrLicenseIllegalState = errors.New("openapi: license code in an illegal state (92020003)")
	// ErrLicenseNotReceived is 92020004: the buyer has not received the
	// code yet, so it cannot be activated.
	ErrLicenseNotReceived = errors.New("openapi: license code not received by the buyer yet (92020004)")
	// ErrLicenseNotFound is 92020005: no such license code.
	ErrLicenseNotFound = errors.New("openapi: license code does not exist (92020005)")
	// ErrLicenseNotActivated is 92020011: the code was never activated.
	ErrLicenseNotActivated = errors.New("openapi: license code not activated (92020011)")
	// ErrLicenseInvalidInBatch is 92020020: a batch call holds at least one
	// invalid code; the whole batch is refused.
	ErrLicenseInvalidInBatch = errors.New("openapi: invalid license code in the batch (92020020)")
	// ErrRequestInvalid is 95000001, a request parameter the API refused.
	ErrRequestInvalid = errors.New("openapi: request parameter invalid (95000001)")
	// ErrMethodNotSupported is 95000002, an HTTP method the API refused.
	ErrMethodNotSupported = errors.New("openapi: HTTP method not supported (95000002)")
	// ErrContentTypeNotSupported is 95000003, a Content-Type the API
	// refused.
	ErrContentTypeNotSupported = errors.New("openapi: content type not supported (95000003)")
	// ErrBodyNotReadable is 95000004, a request body the API could not
	// read.
	ErrBodyNotReadable = errors.New("openapi: request body not readable (95000004)")
)

// Sentinels of the license upload error codes (license-openapi.md §C.7).
// The CBC codes are the marketplace's general ones, so ErrIllegalOperation,
// ErrInvalidParam and ErrInternal also match their MKT twins (MKT.0150,
// MKT.0101, MKT.0999) and the same codes from Query Order.
var (
	// ErrIllegalOperation is CBC.0150 (or MKT.0150), an illegal operation.
	ErrIllegalOperation = errors.New("openapi: illegal operation (CBC.0150)")
	// ErrInvalidParam is CBC.0101 (or MKT.0101), an invalid parameter.
	ErrInvalidParam = errors.New("openapi: invalid parameter (CBC.0101)")
	// ErrInternal is CBC.0999 (or MKT.0999), an internal error. Retryable.
	ErrInternal = errors.New("openapi: internal error (CBC.0999)")
	// ErrUploadResourceInvalid is 91381033: the license resource is
	// invalid.
	ErrUploadResourceInvalid = errors.New("openapi: license resource invalid (91381033)")
	// ErrUploadApplicationInvalid is 91381034: the license application
	// (the event) is invalid.
	ErrUploadApplicationInvalid = errors.New("openapi: license application invalid (91381034)")
	// ErrUploadNoRemainingAmount is 91381035: no licenses left for the
	// period.
	ErrUploadNoRemainingAmount = errors.New("openapi: no remaining license amount for the period (91381035)")
	// ErrUploadInner is 91381036, an inner error. Retryable.
	ErrUploadInner = errors.New("openapi: license upload inner error (91381036)")
	// ErrUploadInvalidFormat is 91381037: the license format is invalid.
	ErrUploadInvalidFormat = errors.New("openapi: invalid license format (91381037)")
	// ErrUploadApplicationDenied is 91381038: the application was denied.
	ErrUploadApplicationDenied = errors.New("openapi: license application denied (91381038)")
	// ErrUploadPermissionDenied is 91380150: the account's role may not
	// upload.
	ErrUploadPermissionDenied = errors.New("openapi: role permission denied (91380150)")
)

// Sentinels of the API gateway codes a caller may want to tell apart
// (license-openapi.md §E.4).
var (
	// ErrAuthentication is APIGW.0301 or APIGW.0303: the gateway refused
	// the AK/SK signature (a wrong key pair or a clock off by more than
	// 15 minutes). Five failures in a row lock the AK for 5 minutes.
	ErrAuthentication = errors.New("openapi: authentication refused by the API gateway")
	// ErrNotAuthorized is APIGW.0302: the IAM user may not call the API.
	ErrNotAuthorized = errors.New("openapi: IAM user not authorised (APIGW.0302)")
	// ErrThrottled is APIG.0308: too many requests. Retryable.
	ErrThrottled = errors.New("openapi: throttled by the API gateway (APIG.0308)")
)

// ErrIncompleteAnswer marks a success answer that lacks what the call
// returns (activate without data.license_code_info, query without data):
// the call may have taken effect, but its result is unknown.
var ErrIncompleteAnswer = errors.New("openapi: success answer without its data")

// Sentinels of the usage push error codes (saas-v2.md §7.2,
// saas-v1-joint-login.md §A.5.8) not covered above: MKT.0101, MKT.0150 and
// MKT.0999 are ErrInvalidParam, ErrIllegalOperation and ErrInternal. The
// general codes also match their CBC twins; the CBC.900x codes do not
// (their limits differ), so ErrUsage* match only the MKT codes.
var (
	// ErrInputCheckFailed is MKT.0100 (or CBC.0100): the input check
	// failed. Final, although it comes with HTTP 500.
	ErrInputCheckFailed = errors.New("openapi: input check failed (MKT.0100)")
	// ErrBodySignature is MKT.0102: the usage push's signature header does
	// not match (a wrong key, or a body changed on the way).
	ErrBodySignature = errors.New("openapi: invalid body signature (MKT.0102)")
	// ErrParamError is MKT.0199 (or CBC.0199), a request parameter error.
	ErrParamError = errors.New("openapi: request parameter error (MKT.0199)")
	// ErrNoAuthority is MKT.0151 (or CBC.0151): the account may not call
	// the API (not a seller role).
	ErrNoAuthority = errors.New("openapi: no API authority (MKT.0151)")
	// ErrIllegalToken is MKT.0154 (or CBC.0154), an illegal token.
	ErrIllegalToken = errors.New("openapi: illegal token (MKT.0154)")
	// ErrUsageInstanceNotFound is MKT.9001: a record's instance_id names
	// no instance. Final, although it comes with HTTP 500.
	ErrUsageInstanceNotFound = errors.New("openapi: usage for an unknown instance (MKT.9001)")
	// ErrUsageInvalid is MKT.9002, invalid usage entities (for instance a
	// period outside the instance's life). Final, although it comes with
	// HTTP 500.
	ErrUsageInvalid = errors.New("openapi: invalid usage entities (MKT.9002)")
	// ErrUsageTooMany is MKT.9003: more than 1000 records in one push.
	// Final, although it comes with HTTP 500.
	ErrUsageTooMany = errors.New("openapi: more than 1000 usage records (MKT.9003)")
	// ErrUsageTooOld is MKT.9004: a begin_time older than 21 days; the
	// record can never be accepted. Final, although it comes with HTTP 500.
	ErrUsageTooOld = errors.New("openapi: usage begin_time older than 21 days (MKT.9004)")
)

// codeErrors maps each known code to its sentinel.
var codeErrors = map[string]error{
	protocol.LicenseInternalError:           ErrLicenseInternal,
	protocol.LicenseInvalidParam:            ErrLicenseInvalidParam,
	protocol.LicenseIllegalState:            ErrLicenseIllegalState,
	protocol.LicenseNotReceived:             ErrLicenseNotReceived,
	protocol.LicenseNotFound:                ErrLicenseNotFound,
	protocol.LicenseNotActivated:            ErrLicenseNotActivated,
	protocol.LicenseInvalidInBatch:          ErrLicenseInvalidInBatch,
	protocol.LicenseRequestInvalid:          ErrRequestInvalid,
	protocol.LicenseMethodNotSupported:      ErrMethodNotSupported,
	protocol.LicenseContentTypeNotSupported: ErrContentTypeNotSupported,
	protocol.LicenseBodyNotReadable:         ErrBodyNotReadable,

	protocol.CBCIllegalOperation:             ErrIllegalOperation,
	protocol.MKTIllegalOperation:             ErrIllegalOperation,
	protocol.CBCInvalidParam:                 ErrInvalidParam,
	protocol.MKTInvalidParam:                 ErrInvalidParam,
	protocol.CBCInternalError:                ErrInternal,
	protocol.MKTInternalError:                ErrInternal,
	protocol.OnlineLicenseResourceInvalid:    ErrUploadResourceInvalid,
	protocol.OnlineLicenseApplicationInvalid: ErrUploadApplicationInvalid,
	protocol.OnlineLicenseNoRemainingAmount:  ErrUploadNoRemainingAmount,
	protocol.OnlineLicenseInnerError:         ErrUploadInner,
	protocol.OnlineLicenseInvalidFormat:      ErrUploadInvalidFormat,
	protocol.OnlineLicenseApplicationDenied:  ErrUploadApplicationDenied,
	protocol.OnlineLicensePermissionDenied:   ErrUploadPermissionDenied,

	protocol.APIGWAuthFailed:    ErrAuthentication,
	protocol.APIGWAppAuthFailed: ErrAuthentication,
	protocol.APIGWNotAuthorized: ErrNotAuthorized,
	protocol.APIGThrottled:      ErrThrottled,

	protocol.MKTInputCheckFailed:     ErrInputCheckFailed,
	protocol.CBCInputCheckFailed:     ErrInputCheckFailed,
	protocol.MKTInvalidBodySignature: ErrBodySignature,
	protocol.MKTParamError:           ErrParamError,
	protocol.CBCParamError:           ErrParamError,
	protocol.MKTNoAuthority:          ErrNoAuthority,
	protocol.CBCNoAuthority:          ErrNoAuthority,
	protocol.MKTIllegalToken:         ErrIllegalToken,
	protocol.CBCIllegalToken:         ErrIllegalToken,
	protocol.MKTInstanceNotFound:     ErrUsageInstanceNotFound,
	protocol.MKTInvalidUsageEntities: ErrUsageInvalid,
	protocol.MKTTooManyRecords:       ErrUsageTooMany,
	protocol.MKTBeginTimeTooOld:      ErrUsageTooOld,
}

// Is reports whether target is the sentinel of e's code, so that
// errors.Is(err, ErrLicenseNotFound) holds for an answer of 92020005. An
// unknown code matches no sentinel: it is a generic failure (§A.8.5).
func (e *Error) Is(target error) bool {
	s, ok := codeErrors[strings.TrimSpace(e.Code)]
	return ok && s == target
}
