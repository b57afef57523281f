// Package provision is the contract between koobridge and the vendor's own
// product: koobridge tells the product about instance events (created,
// renewed, frozen, unfrozen, upgraded, released) and paid orders
// (order.notified), and asks it about renewal changes. A vendor's Go
// service implements Provisioner; any other service is reached through
// the adapters here: Webhook (a signed HTTP POST, checked on the vendor's
// side with VerifyWebhook), Exec (a local command) and the built-in Demo.
//
// A Provisioner answers with a Result, an error to be retried, an error
// wrapped with Permanent (not retried), or, for instance.created, a
// business refusal made with Refuse (000100–000107, relayed to KooGallery
// and not retried).
package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/mask"
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
	// EventOrderNotified tells the vendor of a paid order KooGallery
	// notified (orderNotify), with the order's details from Query Order.
	EventOrderNotified EventType = "order.notified"
)

// Event types of the joint-operation Kit: a buyer enterprise (tenant), its
// OAuth client for the vendor's app, the users it authorised and its
// departments. They are delivered in order per tenant (Event.Seq counts
// them from 1) and carry the tenant's id in Event.Tenant.
const (
	EventTenantCreated   EventType = "tenant.created"   // bound (tenantSync flag 1), or bound again after a deletion
	EventTenantUpdated   EventType = "tenant.updated"   // name, code, identity-center domain, instance or order changed
	EventTenantDeleted   EventType = "tenant.deleted"   // unbound (tenantSync flag 0): its apps, users and departments are gone
	EventAppCreated      EventType = "app.created"      // applicationSync flag 1: the OAuth client, secret decrypted
	EventAppUpdated      EventType = "app.updated"      // the client id, the secret or the instance changed
	EventAppDeleted      EventType = "app.deleted"      // applicationSync flag 0; the app's users are removed with it
	EventUsersAuthorized EventType = "users.authorized" // users authorised (again) for the app
	EventUsersChanged    EventType = "users.changed"    // authorised users' details changed
	EventUsersEnabled    EventType = "users.enabled"    // users whose account was enabled again
	EventUsersDisabled   EventType = "users.disabled"   // users whose account was disabled
	EventUsersRevoked    EventType = "users.revoked"    // authSync flag 3: authorisation withdrawn, the user kept
	EventUsersDeleted    EventType = "users.deleted"    // authSync flag 0: the users removed
	EventOrgCreated      EventType = "org.created"      // a department added (singleOrgSync flag 1)
	EventOrgUpdated      EventType = "org.updated"      // renamed or moved (flag 2, or flag 1 of a known one)
	EventOrgDeleted      EventType = "org.deleted"      // removed (flag 0)
	EventOrgsReplaced    EventType = "orgs.replaced"    // the whole tree replaced (allOrgSync): Orgs is the new tree
)

// Event types of license products (license-openapi.md §A–§C). The
// license.* events about a license code carry Event.License; they are not
// ordered among themselves (each says the state it left the code in).
// license.requested asks the vendor's license generator for a license:
// Event.LicenseRequest says for what, and the Result's License answers.
const (
	EventLicenseActivated EventType = "license.activated" // the vendor's client software activated the code (first time)
	EventLicenseRenewed   EventType = "license.renewed"   // refreshLicenseCode, or license 1.0 refreshLicense: a new expiry
	EventLicenseFrozen    EventType = "license.frozen"    // updateLicenseCodeStatus FREEZE, or license 1.0 expireLicense
	EventLicenseUnfrozen  EventType = "license.unfrozen"  // updateLicenseCodeStatus UNFREEZE
	EventLicenseReleased  EventType = "license.released"  // releaseLicenseCode, or license 1.0 releaseLicense
	EventLicenseRequested EventType = "license.requested" // getLicenseAsync (online license) or getLicense (license 1.0)
)

// Event is one notification to the vendor. ID is its idempotency key: the
// same event delivered twice (a retry, a crash between delivery and
// commit) carries the same ID, and the vendor must treat the second
// delivery as a repeat.
type Event struct {
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	Test bool      `json:"test"` // from a KooGallery debug call or dial test
	// Instance is the instance the event is about; absent from
	// order.notified, which is about an order.
	Instance Instance `json:"instance,omitzero"`
	// Scene is the refreshInstance scene for instance.renewed
	// (TRIAL_TO_FORMAL, RENEWAL, UNSUBSCRIBE_RENEWAL_PERIOD, RENEWAL_CHANGE).
	Scene string `json:"scene,omitempty"`
	// Change is the requested target for change.check.
	Change *Product `json:"change,omitempty"`
	// AppInfoOptional is set on instance.created of a product without a
	// web front end (an online-license product, license-openapi.md §C):
	// the reply may then carry no appInfo.
	AppInfoOptional bool `json:"appInfoOptional,omitempty"`
	// Order is the notified order for order.notified, and the purchase
	// order for instance.created of a SaaS V1 purchase, whose call carries
	// the whole order (buyer data included) instead of leaving it to Query
	// Order.
	Order *Order `json:"order,omitempty"`

	// Seq numbers a tenant's events from 1, in the order they happened;
	// the Kit events only.
	Seq int64 `json:"seq,omitempty"`
	// Tenant is the enterprise a Kit event is about, as it stands after
	// the change (before it, for tenant.deleted).
	Tenant *Tenant `json:"tenant,omitempty"`
	// App is the OAuth client of an app.* event.
	App *App `json:"app,omitempty"`
	// Users are the users of a users.* event (and of app.deleted: the
	// app's users removed with it).
	Users []User `json:"users,omitempty"`
	// Org is the department of an org.* event; Orgs the whole tree of
	// orgs.replaced.
	Org  *Org  `json:"org,omitempty"`
	Orgs []Org `json:"orgs,omitempty"`

	// License is the license code a license.* event is about, as it
	// stands after the change (license 1.0 events: the generated
	// license's instance, Code empty).
	License *License `json:"license,omitempty"`
	// LicenseRequest is what license.requested asks for.
	LicenseRequest *LicenseRequest `json:"licenseRequest,omitempty"`
}

// License is a license code (or a license 1.0 license) as the vendor
// sees it.
type License struct {
	Code        string    `json:"code,omitempty"`
	InstanceID  string    `json:"instanceId,omitempty"` // license 1.0: the instanceId answered to getLicense
	Status      string    `json:"status"`               // active, frozen, released
	ExpireTime  time.Time `json:"expireTime,omitzero"`
	OrderID     string    `json:"orderId,omitempty"`
	OrderLineID string    `json:"orderLineId,omitempty"`
	ProductID   string    `json:"productId,omitempty"`
	Amount      int       `json:"amount,omitempty"`
	// Scene is the refreshLicenseCode scene of license.renewed (RENEWAL,
	// UNSUBSCRIBE_RENEWAL_PERIOD).
	Scene string `json:"scene,omitempty"`
}

// LicenseRequest is a buyer's request for a license file or string: an
// online-license getLicenseAsync (Kind "online", for Event.Instance) or a
// license 1.0 getLicense (Kind "legacy", for Event.Order). The same
// request may be delivered again; answer it with the same license.
type LicenseRequest struct {
	Kind          string    `json:"kind"`              // "online" or "legacy"
	EventID       string    `json:"eventId,omitempty"` // online: KooGallery's eventId
	EffectiveTime time.Time `json:"effectiveTime,omitzero"`
	ExpireTime    time.Time `json:"expireTime,omitzero"` // zero for a perpetual license
	// DeviceFingerprint is the buyer's device fingerprint or hardware
	// code (license-openapi.md §D.3) for node-locked licenses; "" when
	// none was given.
	DeviceFingerprint string `json:"deviceFingerprint,omitempty"`
	ProductID         string `json:"productId,omitempty"`
	Amount            int    `json:"amount,omitempty"`
}

// LicenseFile is a license the vendor's generator made, in answer to
// license.requested: either Characters (a license string of at most 1024
// characters, uploaded as type CHARACTERS) or Content with FileName (a
// license file, uploaded as type FILE). In a webhook or exec reply
// Content is base64 (standard alphabet), as encoding/json writes []byte.
type LicenseFile struct {
	Characters string `json:"characters,omitempty"`
	FileName   string `json:"fileName,omitempty"`
	Content    []byte `json:"content,omitempty"`
}

// Tenant is a buyer enterprise bound to a joint-operation product.
type Tenant struct {
	ID         string `json:"tenantId"`
	Code       string `json:"tenantCode"`
	Name       string `json:"name"`
	DomainName string `json:"domainName"`           // the enterprise's identity center (OneAccess), with https://
	InstanceID string `json:"instanceId,omitempty"` // "" in the test-account flow
	OrderID    string `json:"orderId,omitempty"`
}

// App is an enterprise's OAuth client for the vendor's app credential.
// ClientSecret is the secret in clear (decrypted with the seller's RSA
// private key): the vendor needs it to sign the enterprise's users in.
// koobridge keeps it only sealed and never logs or shows it.
type App struct {
	AppID        string `json:"appId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// User is a user an enterprise authorised for the vendor's app. Mobile
// and Email are given in full to the vendor; koobridge keeps them sealed.
type User struct {
	AppID        string `json:"appId"`
	UserName     string `json:"userName"`
	Name         string `json:"name,omitempty"`
	OrgCode      string `json:"orgCode,omitempty"`
	Role         string `json:"role,omitempty"` // "user" or "admin"
	Enable       bool   `json:"enable"`
	Authorized   bool   `json:"authorized"` // false once revoked
	Position     string `json:"position,omitempty"`
	EmployeeCode string `json:"employeeCode,omitempty"`
	EmployeeType int    `json:"employeeType,omitempty"` // 1 regular, 2 intern, 3 dispatched, 4 outsourced
	Mobile       string `json:"mobile,omitempty"`
	Email        string `json:"email,omitempty"`
	WorkPlace    string `json:"workPlace,omitempty"`
	EntryDate    string `json:"entryDate,omitempty"`
}

// Org is a department. ParentCode is "" for a top-level department. In
// org.updated, Moved says the department changed parents and
// OldParentCode is the parent it left ("" when it was at the top).
type Org struct {
	OrgCode       string `json:"orgCode"`
	Name          string `json:"name"`
	ParentCode    string `json:"parentCode,omitempty"`
	Moved         bool   `json:"moved,omitempty"`
	OldParentCode string `json:"oldParentCode,omitempty"`
}

// Order is one order line of a paid order, as Query Order reports it
// (license-openapi.md §E.2), for order.notified. The buyer's mobile number
// and e-mail are given in full (decrypted when KooGallery sent them
// encrypted): the vendor needs them; koobridge's own log and ledger only
// keep them masked.
type Order struct {
	OrderID      string    `json:"orderId"`
	OrderLineID  string    `json:"orderLineId"`
	OrderType    string    `json:"orderType,omitempty"` // NEW, TRIAL, TRIAL_TO_FORMAL, UNSUBSCRIBE, RENEW, CHANGE
	CreateTime   time.Time `json:"createTime,omitzero"`
	ProductID    string    `json:"productId,omitempty"`
	SKUCode      string    `json:"skuCode,omitempty"`
	ProductName  string    `json:"productName,omitempty"`
	LinearValue  string    `json:"linearValue,omitempty"`
	ChargingMode string    `json:"chargingMode,omitempty"` // PERIOD, ONE_TIME, ON_DEMAND, ON_DEMAND_PKG
	PeriodType   string    `json:"periodType,omitempty"`
	PeriodNumber int       `json:"periodNumber,omitempty"`
	ExpireTime   time.Time `json:"expireTime,omitzero"`
	Buyer        Buyer     `json:"buyer,omitzero"`
	// OrderAmount is the amount paid, decimal text in yuan, for
	// reconciliation (SaaS V1 orderAmount); "" when not given.
	OrderAmount string `json:"orderAmount,omitempty"`
	// ExtendParams are the fields the buyer filled in at purchase (SaaS V1
	// saasExtendParams), in the order given.
	ExtendParams []ExtendParam `json:"extendParams,omitempty"`
}

// ExtendParam is one field the buyer filled in at purchase.
type ExtendParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Buyer is the customer of an order.
type Buyer struct {
	CustomerID       string `json:"customerId,omitempty"`
	CustomerName     string `json:"customerName,omitempty"`
	CustomerRealName string `json:"customerRealName,omitempty"`
	UserID           string `json:"userId,omitempty"`
	UserName         string `json:"userName,omitempty"`
	MobilePhone      string `json:"mobilePhone,omitempty"`
	Email            string `json:"email,omitempty"`
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
	// AppInfo answers instance.created (required there, unless the event
	// says AppInfoOptional) and may update it on instance.upgraded; nil
	// elsewhere.
	AppInfo *AppInfo `json:"appInfo,omitempty"`
	// Allowed and Reason answer change.check.
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
	// License answers license.requested (required there); nil elsewhere.
	License *LicenseFile `json:"license,omitempty"`
}

// Provisioner delivers one event to the vendor's product, once. Retries,
// backoff and dead-lettering are the job queue's business, not the
// Provisioner's. Return an error wrapped with Permanent when retrying
// cannot help (the vendor rejected the event), and Refuse(code, message)
// to refuse a purchase (instance.created) for a business reason.
//
// Deliveries are at least once: the same event (same ID) may come again
// after a crash or a lost reply, and must then be treated as a repeat.
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

// Business result codes with which the vendor's product may refuse a
// purchase (saas-v2.md §5, saas-v1-joint-login.md §A.4). KooGallery shows
// the buyer the refusal; koobridge records it, does not retry it, and the
// instance ends failed with the reason. 000104 ("internal service error")
// is not among them: an internal error is retried.
const (
	CodeNoResources      = "000100" // no instance resource can be allocated
	CodeMobileInUse      = "000101" // mobile number empty or already used
	CodeEmailInUse       = "000102" // e-mail empty or already used
	CodeAlreadyPurchased = "000103" // the product cannot be purchased again
	CodeAlreadyEntitled  = "000105" // the customer already holds the benefit
	CodeSoldOut          = "000106" // sold out
	CodeEmailDomainInUse = "000107" // the SaaS e-mail domain is already in use
)

// refusalCodes are the codes Refuse accepts.
var refusalCodes = map[string]bool{
	CodeNoResources: true, CodeMobileInUse: true, CodeEmailInUse: true, CodeAlreadyPurchased: true,
	CodeAlreadyEntitled: true, CodeSoldOut: true, CodeEmailDomainInUse: true,
}

// IsRefusalCode reports whether code is one of the business result codes
// a purchase may be refused with.
func IsRefusalCode(code string) bool { return refusalCodes[code] }

// maxRefusalMessage is resultMsg's limit (255 characters).
const maxRefusalMessage = 255

// Refusal is the vendor's product refusing a purchase for a business
// reason: the answer to instance.created that KooGallery relays to the
// buyer. It is permanent (errors.Is(err, ErrPermanent) holds), so it is
// never retried. Get one with Refuse; read one with errors.As.
type Refusal struct {
	// Code is one of the Code* constants.
	Code string
	// Message is what KooGallery shows (resultMsg); the code's meaning
	// when the vendor gave none.
	Message string
}

// Refuse returns a *Refusal with code and message, for a Provisioner to
// return from instance.created. A code that is not one of the Code*
// constants gives a plain permanent error instead (the purchase fails with
// 000005), since KooGallery would not understand it. The message is cut
// to 255 characters and invalid UTF-8 in it is dropped.
func Refuse(code, message string) error {
	if !refusalCodes[code] {
		return Permanent(fmt.Errorf("provision: refusal code %q is not one of 000100–000103, 000105–000107", code))
	}
	message = strings.TrimSpace(strings.ToValidUTF8(message, ""))
	if message == "" {
		message = refusalMeaning[code]
	}
	if r := []rune(message); len(r) > maxRefusalMessage {
		message = string(r[:maxRefusalMessage])
	}
	return &Refusal{Code: code, Message: message}
}

var refusalMeaning = map[string]string{
	CodeNoResources:      "no instance resource can be allocated",
	CodeMobileInUse:      "mobile number empty or already used",
	CodeEmailInUse:       "e-mail empty or already used",
	CodeAlreadyPurchased: "the product cannot be purchased again",
	CodeAlreadyEntitled:  "the customer already holds the benefit",
	CodeSoldOut:          "sold out",
	CodeEmailDomainInUse: "the e-mail domain is already in use",
}

// Error returns "purchase refused: <code> <message>", the message with
// personal data masked: the error goes to logs and job records, while
// Message, for the buyer, goes to KooGallery as the vendor wrote it.
func (r *Refusal) Error() string { return "purchase refused: " + r.Code + " " + mask.Text(r.Message) }

// Unwrap makes a Refusal permanent: errors.Is(r, ErrPermanent) is true.
func (r *Refusal) Unwrap() error { return ErrPermanent }
