// Package inbound is koobridge's one pipeline for every call KooGallery
// makes to the seller: body cap, strict query parsing, authentication,
// decoding, validation, dispatch to the family's service, the reply with
// its Body-Sign, metrics, the request id and the ledger row. It is written
// once and parameterised by Family values: a family of KooGallery calls
// (SaaS V2 basic interfaces, order notification, …) brings its route, its
// authentication scheme, the key type its calls are signed with, its
// decoder and its service, and nothing else.
//
// Several families may share a route (the production path carries the V2
// basic activities, orderNotify and the license-code activities, each
// signed with the key of its own interface type): the activity named in
// the body (or, for GET, the query) picks the family, and so the key that
// must verify the call. Nothing is acted on before that signature holds;
// an activity no family serves is verified with the first family's key and
// then answered 000002.
package inbound

import (
	"context"
	"net/http"
	"net/url"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/protocol"
)

// KeyType names the Seller Center interface type a key is bound to
// (saas-v2.md §2.1): one key per type, so each family verifies and signs
// with its own type's keys.
type KeyType string

// Key types.
const (
	KeyBasic   KeyType = "basic"   // 基础接口: SaaS V1/V2 basic interfaces, usage push
	KeyKit     KeyType = "kit"     // 联营SaaS同步接口: joint-operation Kit sync
	KeyLicense KeyType = "license" // License: license codes, online license
	KeyGeneral KeyType = "general" // 通用接口: order notification
)

// Keys holds the accepted keys of each type, the one bound in Seller
// Center first (it signs the replies of calls that failed to verify);
// several during a rotation. The caller resolves fallbacks: every type a
// family uses must have at least one key.
type Keys map[KeyType][]string

// Scheme is how the calls of a family authenticate.
type Scheme int

// Authentication schemes.
const (
	// URLSignature: signature, timestamp (Unix ms) and nonce query
	// parameters over the raw body (saas-v2.md §2.2): V2, license 2.0,
	// orderNotify.
	URLSignature Scheme = iota + 1
	// KitHeaders: x-sign, x-timestamp and x-nonce headers over the raw
	// body, either canonical form (saas-v2.md §2.3): Kit V2.
	KitHeaders
	// V1Token: an authToken over the query parameters of a GET, or in the
	// authToken header over the fields of a JSON body (Kit V1); no nonce
	// (saas-v1-joint-login.md §A.2).
	V1Token
)

// Call is one HTTP request as a family's decoder sees it: the query is
// already parsed strictly (no parameter twice), the body read whole.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Request is a decoded call.
type Request interface {
	// Activity names what the call asks for; it labels metrics, the log
	// and the ledger.
	Activity() string
	// Validate checks the fields; a *protocol.FieldError is answered
	// 000002 with its text.
	Validate() error
}

// Outcome is a family service's answer to one call: the reply for the
// pipeline to marshal and sign, and what the ledger records about it.
type Outcome struct {
	// Response is a protocol response value, or json.RawMessage of a
	// stored reply (sent byte for byte).
	Response    any
	Code        protocol.ResultCode
	Msg         string
	IdemKey     string // the call's idempotency key, "" for reads
	InstanceID  string
	OrderID     string
	OrderLineID string
	TenantID    string // the enterprise a Kit call is about
	Repeat      bool   // answered from a stored outcome or an already reached state
	Test        bool   // a debug call (protocol.IsTestOrder)
}

// Family is one family of KooGallery calls, as the pipeline needs it.
type Family struct {
	// Name labels the family in the ledger (the call's interface), the
	// log and metrics, e.g. "v2", "order".
	Name string
	// Method and Path are the family's route. Families on the same route
	// are told apart by Activities.
	Method string
	Path   string
	// Aliases are further paths served exactly as Path (the Kit calls are
	// answered at the server's root and under the production path).
	Aliases []string
	// Keys is the interface type whose keys verify the calls and sign the
	// replies.
	Keys KeyType
	// Scheme is how the calls authenticate.
	Scheme Scheme
	// Activities are the activities the family serves: they pick the
	// family at a shared route and bound the metrics' activity label.
	Activities []string
	// ActivityAt, when set, names the activity of a call from its path,
	// for families whose bodies carry none (the Kit: the path's last
	// segment is the operation); it labels calls refused before decoding,
	// whatever "activity" their body holds.
	ActivityAt func(path string) string
	// MaxBody, when larger than the server's cap, is the body cap of the
	// family's calls (the Kit's authSync carries up to 500 users, more
	// than the basic interfaces' few hundred bytes); zero means the
	// server's.
	MaxBody int64
	// Decode turns an authenticated call into a Request; its errors are
	// answered 000002 (protocol.ErrorResponse) unless they are not
	// protocol errors, which are answered 000005.
	Decode func(c *Call) (Request, error)
	// Serve answers a decoded, valid request. An error is an internal
	// failure, answered 000005 so that KooGallery retries.
	Serve func(ctx context.Context, req Request) (Outcome, error)
	// Jobs are the background job kinds the family owns, registered with
	// the job runner before it starts.
	Jobs map[string]jobs.HandlerFunc
}

// serves reports whether f serves activity.
func (f *Family) serves(activity string) bool {
	for _, a := range f.Activities {
		if a == activity {
			return true
		}
	}
	return false
}
