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
}

// Is reports whether target is the sentinel of e's code, so that
// errors.Is(err, ErrLicenseNotFound) holds for an answer of 92020005. An
// unknown code matches no sentinel: it is a generic failure (§A.8.5).
func (e *Error) Is(target error) bool {
	s, ok := codeErrors[strings.TrimSpace(e.Code)]
	return ok && s == target
}
