// Package provision drives the vendor's own product: it tells it about
// instance events (created, renewed, frozen, unfrozen, upgraded, released)
// and asks it about renewal changes. Adapters: demo (built in), webhook
// (signed HTTP POST) and exec (a local command).
package provision

import (
	"context"
	"errors"
	"time"
)

// EventType names what happened to an instance.
type EventType string

// Event types, as sent to webhooks and exec commands.
const (
	EventCreated     EventType = "instance.created"
	EventRenewed     EventType = "instance.renewed"
	EventFrozen      EventType = "instance.frozen"
	EventUnfrozen    EventType = "instance.unfrozen"
	EventUpgraded    EventType = "instance.upgraded"
	EventReleased    EventType = "instance.released"
	EventChangeCheck EventType = "change.check"
)

// Event is one notification to the vendor. ID is its idempotency key: the
// same event delivered twice (a retry, a crash between delivery and
// commit) carries the same ID, and the vendor must treat the second
// delivery as a repeat.
type Event struct {
	ID       string    `json:"id"`
	Type     EventType `json:"type"`
	Time     time.Time `json:"time"`
	Test     bool      `json:"test"` // from a KooGallery debug call or dial test
	Instance Instance  `json:"instance"`
	// Scene is the refreshInstance scene for instance.renewed
	// (TRIAL_TO_FORMAL, RENEWAL, UNSUBSCRIBE_RENEWAL_PERIOD, RENEWAL_CHANGE).
	Scene string `json:"scene,omitempty"`
	// Change is the requested target for change.check.
	Change *Product `json:"change,omitempty"`
}

// Instance is the vendor's view of an instance.
type Instance struct {
	ID           string    `json:"id"`
	OrderID      string    `json:"orderId"`
	OrderLineID  string    `json:"orderLineId"`
	ProductID    string    `json:"productId,omitempty"`
	SKUCode      string    `json:"skuCode,omitempty"`
	ChargingMode string    `json:"chargingMode,omitempty"`
	PeriodType   string    `json:"periodType,omitempty"`
	PeriodNumber int       `json:"periodNumber,omitempty"`
	LinearValue  string    `json:"linearValue,omitempty"`
	CustomerID   string    `json:"customerId,omitempty"`
	CustomerName string    `json:"customerName,omitempty"`
	ExpireTime   time.Time `json:"expireTime,omitzero"`
	Status       string    `json:"status"`
}

// Product is a target product or specification.
type Product struct {
	ProductID   string `json:"productId,omitempty"`
	SKUCode     string `json:"skuCode,omitempty"`
	LinearValue string `json:"linearValue,omitempty"`
	ProductName string `json:"productName,omitempty"`
}

// AppInfo is how the buyer reaches the product, as the vendor reports it.
// Password is plain text here; koobridge encrypts it at rest.
type AppInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	Password    string `json:"password,omitempty"`
	Memo        string `json:"memo,omitempty"`
}

// Result is the vendor's answer to an event.
type Result struct {
	// AppInfo answers instance.created (required there) and may update it
	// on instance.upgraded; nil elsewhere.
	AppInfo *AppInfo `json:"appInfo,omitempty"`
	// Allowed and Reason answer change.check.
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

// Provisioner delivers one event to the vendor's product, once. Retries,
// backoff and dead-lettering are the job queue's business, not the
// Provisioner's. Return an error wrapped with Permanent when retrying
// cannot help (the vendor rejected the event).
type Provisioner interface {
	Provision(ctx context.Context, ev Event) (Result, error)
}

// ErrPermanent marks errors that retrying will not fix.
var ErrPermanent = errors.New("provision: permanent failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }
