package license

import (
	"errors"
	"time"
)

// Errors of Activate and Check, for the license service to map onto its
// HTTP answers. Match them with errors.Is; the error text names the
// problem for the vendor's client software and never holds a device
// fingerprint.
var (
	// ErrInvalid: the request itself is wrong (a field missing, too long,
	// not printable).
	ErrInvalid = errors.New("license: invalid request")
	// ErrUnknown: KooGallery does not know the code (92020005), asked
	// by Activate or by Check's query.
	ErrUnknown = errors.New("license: unknown license code")
	// ErrNotActivated: Check of a code koobridge has not activated (or
	// never heard of), of a device that has not activated the code, or
	// of a code KooGallery reports as not activated (92020011: the
	// activation is then cleared, and the next Activate activates it
	// again).
	ErrNotActivated = errors.New("license: license code not activated")
	// ErrRefused: KooGallery refuses to activate the code now: the buyer
	// has not received it yet (92020004), or it is in an illegal state
	// (92020003) and KooGallery's query does not show it alive. Only
	// refusals of the license code itself: KooGallery or its gateway
	// refusing koobridge is ErrUnavailable.
	ErrRefused = errors.New("license: KooGallery refused the license code")
	// ErrNoSeat: every seat of the code (its amount) is taken by other
	// devices.
	ErrNoSeat = errors.New("license: no free seat on this license code")
	// ErrUnavailable: KooGallery's Open API could not be asked, or
	// refused koobridge's call for koobridge's own reasons (the gateway
	// refusing the AK/SK or the IAM user, a code koobridge does not know;
	// logged at error level), and no cached answer is recent enough (the
	// offline grace is over, or the code was never confirmed).
	ErrUnavailable = errors.New("license: KooGallery cannot be reached")
)

// Verdict is the license service's answer about one code for one device:
// what the signed license token says.
type Verdict struct {
	License     string
	Fingerprint string // as the client sent it
	// Status is "active", "frozen" or "released".
	Status string
	// Expires is the license's expiry; zero when KooGallery gave none.
	Expires time.Time
	// ValidUntil is the end of the offline grace: the client may keep
	// working without asking again until then (never after a freeze or
	// release: then it is the time of the answer).
	ValidUntil time.Time
	// Cached says the answer came from koobridge's cache because
	// KooGallery could not be reached.
	Cached bool
}
