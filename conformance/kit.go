package conformance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Spec sections of the Kit cases.
const (
	specKit       = "saas-v1-joint-login.md Part B, saas-v2.md §3.8"
	specKitTenant = "saas-v1-joint-login.md §B.2, saas-v2.md §3.8"
	specKitApp    = "saas-v1-joint-login.md §B.3, saas-v2.md §3.8"
	specKitAuth   = "saas-v1-joint-login.md §B.4, saas-v2.md §3.8"
	specKitOrg    = "saas-v1-joint-login.md §B.5, saas-v2.md §3.8"
	specKitAllOrg = "saas-v1-joint-login.md §B.6, saas-v2.md §3.8"
	specKitV1Auth = "saas-v1-joint-login.md §B.1, §A.2 (authToken header)"
	specKitV2Auth = "saas-v2.md §2.3 (x-sign, x-timestamp, x-nonce)"
)

// tooManyUsers is how many users kit/<gen>/too-many-users authorises in
// one call: one more than authSync allows (saas-v1-joint-login.md §B.4).
const tooManyUsers = 501

// kitGen is one generation of the Kit: V1 (authToken header,
// /produceAPI/<name>) or V2 (x-sign, /produceAPI/v2/<name>).
type kitGen struct {
	name   string // "v1" or "v2"
	family *emulator.Family
}

// kitGens are the generations in run order.
var kitGens = []kitGen{{"v1", emulator.KitV1}, {"v2", emulator.KitV2}}

// kitUser is a user the Kit cases authorise.
type kitUser struct {
	UserName string `json:"userName"`
	Name     string `json:"name"`
	OrgCode  string `json:"orgCode"`
	Role     string `json:"role"`
	Enable   string `json:"enable"`
	Mobile   string `json:"mobile,omitempty"`
	Email    string `json:"email,omitempty"`
	// Extension nests fields as Huawei's example does (§B.4).
	Extension map[string]string `json:"extension,omitempty"`
}

// kitOrg is a department of the Kit cases.
type kitOrg struct{ code, name, parent string }

// kitTenant is the tenant one generation's cases work on.
type kitTenant struct {
	gen                    kitGen
	instanceID, orderID    string
	tenantID, code, appID  string
	clientID, secretCipher string // the clientSecret as sent (encrypted)
	orgs                   []kitOrg
	users                  []kitUser
}

// kit runs the Kit cases, for the V1 and then the V2 generation, each on
// a tenant of its own bound to an instance bought for it (V1 newInstance
// for V1, a V2 purchase of product p for V2).
func (r *runner) kit(ctx context.Context, p emulator.Product) {
	for _, g := range kitGens {
		if ctx.Err() != nil {
			return
		}
		t := r.kitBind(ctx, g, p)
		steps := []func(context.Context, *kitTenant){
			r.kitAppSync,
			r.kitAllOrgSync,
			r.kitAuthAdd,
			r.kitAuthModify,
			r.kitAuthRevoke,
			r.kitAuthDelete,
			r.kitSingleOrgSync,
			r.kitRepeatAdd,
			r.kitDeleteUnknown,
			r.kitTooManyUsers,
			r.kitBadSecret,
			r.kitTestAccount,
			r.kitMissingAuthToken,
			r.kitBadAuthToken,
			r.kitBadSign,
			r.kitStaleTimestamp,
			r.kitReplayedNonce,
			r.kitSignFormB,
			r.kitUnbind,
		}
		for _, step := range steps {
			if ctx.Err() != nil {
				return
			}
			step(ctx, t)
		}
	}
}

// kitID is the case ID of step for t's generation.
func (t *kitTenant) id(step string) string { return "kit/" + t.gen.name + "/" + step }

// body encodes a Kit request body: fields plus testFlag 0 and timeStamp
// (GMT+8 yyyyMMddHHmmssSSS, saas-v2.md §3.8).
func kitBody(fields map[string]any) []byte {
	b := map[string]any{"testFlag": 0, "timeStamp": protocol.FormatKitTime(time.Now())}
	for k, v := range fields {
		b[k] = v
	}
	return mustMarshal(b)
}

// call is a Kit call of operation op in t's generation.
func (t *kitTenant) call(op string, fields map[string]any, expect ...protocol.ResultCode) emulator.Call {
	return emulator.Call{Family: t.gen.family, Interface: op, Body: kitBody(fields), Expect: expect}
}

// tenantFields are tenantSync's fields with flag.
func (t *kitTenant) tenantFields(flag int) map[string]any {
	return map[string]any{"instanceId": t.instanceID, "orderId": t.orderID, "tenantId": t.tenantID,
		"tenantCode": t.code, "name": "Conformance " + t.code, "domainName": "https://" + t.code + ".idp.example.com", "flag": flag}
}

// appFields are applicationSync's fields with flag.
func (t *kitTenant) appFields(flag int) map[string]any {
	return map[string]any{"instanceId": t.instanceID, "tenantId": t.tenantID, "appId": t.appID,
		"clientId": t.clientID, "clientSecret": t.secretCipher, "flag": flag}
}

// userList is authSync's userList as the generation sends it: JSON text
// in V1 (§B.4), an array in V2 (§3.8).
func (t *kitTenant) userList(users []kitUser) any {
	if t.gen.name == "v1" {
		return string(mustMarshal(users))
	}
	return users
}

// authFields are authSync's fields for users with flag.
func (t *kitTenant) authFields(users []kitUser, flag int) map[string]any {
	return map[string]any{"instanceId": t.instanceID, "tenantId": t.tenantID, "appId": t.appID,
		"userList": t.userList(users), "currentSyncTime": protocol.FormatKitTime(time.Now()), "flag": flag}
}

// orgFields are singleOrgSync's fields for o with flag.
func (t *kitTenant) orgFields(o kitOrg, flag int) map[string]any {
	return map[string]any{"instanceId": t.instanceID, "tenantId": t.tenantID, "orgCode": o.code,
		"orgName": o.name, "parentCode": o.parent, "flag": flag}
}

// allOrgFields are allOrgSync's fields: V1's orgInfo is JSON text with
// "name" (§B.6), V2's orgInfoList an array with "orgName" (§3.8).
func (t *kitTenant) allOrgFields() map[string]any {
	f := map[string]any{"instanceId": t.instanceID, "tenantId": t.tenantID}
	if t.gen.name == "v1" {
		list := make([]map[string]string, len(t.orgs))
		for i, o := range t.orgs {
			list[i] = map[string]string{"orgCode": o.code, "name": o.name, "parentCode": o.parent}
		}
		f["orgInfo"] = string(mustMarshal(list))
		return f
	}
	list := make([]map[string]string, len(t.orgs))
	for i, o := range t.orgs {
		list[i] = map[string]string{"orgCode": o.code, "orgName": o.name, "parentCode": o.parent}
	}
	f["orgInfoList"] = list
	return f
}

// kitBind buys an instance for generation g and binds a new tenant to it
// with tenantSync flag 1. When the purchase gets no instance the Kit cases
// still run, on a made-up instanceId (the purchase's failures are this
// case's).
func (r *runner) kitBind(ctx context.Context, g kitGen, p emulator.Product) *kitTenant {
	n := emulator.NewNonce()[:12]
	t := &kitTenant{gen: g, tenantID: "conformance-tenant-" + n, code: "conf" + n, appID: "CONFAPP" + strings.ToUpper(n),
		clientID: "conformance-client-" + n}
	t.orgs = []kitOrg{{"ROOT" + n, "Conformance HQ", ""}, {"RD" + n, "R&D", "ROOT" + n}, {"OPS" + n, "Operations", "ROOT" + n}}
	t.users = []kitUser{
		{UserName: "admin-" + n, Name: "Admin", OrgCode: "ROOT" + n, Role: protocol.KitRoleAdmin, Enable: "true",
			Mobile: "13800000001", Email: "admin@example.com"},
		{UserName: "dev-" + n, Name: "Developer", OrgCode: "RD" + n, Role: protocol.KitRoleUser, Enable: "true",
			Extension: map[string]string{"employeeType": "1", "workPlace": "Shenzhen", "entryDate": "2024-1-2"}},
		{UserName: "ops-" + n, Name: "Operator", OrgCode: "OPS" + n, Role: protocol.KitRoleUser, Enable: "true"},
	}
	cr := r.begin(t.id("tenant-sync"), "a purchase, then tenantSync flag 1 binds a new tenant to its instance", specKitTenant)
	defer r.end(cr)
	if g.name == "v1" {
		s := r.v1Purchase(ctx, cr, protocol.V1ChargingPeriod)
		t.instanceID, t.orderID = s.instanceID, s.orderID
	} else {
		p = r.jointProduct(p)
		if sub, ok := r.purchaseWith(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID}, nil); sub.InstanceID != "" || ok {
			t.instanceID, t.orderID = sub.InstanceID, sub.OrderID
		}
	}
	if t.instanceID == "" {
		t.instanceID, t.orderID = neverIssued(), "CS"+strings.ToUpper(emulator.NewNonce()[:15])
		cr.c.Note = "the purchase got no instance: the Kit cases use the made-up instanceId " + t.instanceID
	}
	r.send(ctx, cr, t.call(protocol.KitTenantSync, t.tenantFields(protocol.KitFlagAdd)), nil)
	return t
}

// jointProduct is the emulator's joint-operation V2 product
// (OFFI-EMU-JOINT) when it has one, else p.
func (r *runner) jointProduct(p emulator.Product) emulator.Product {
	ps := r.e.Products()
	if i := slices.IndexFunc(ps, func(x emulator.Product) bool { return x.ID == "OFFI-EMU-JOINT" }); i >= 0 {
		return ps[i]
	}
	return p
}

// kitStep runs a case of calls that must each answer 000000.
func (r *runner) kitStep(ctx context.Context, id, title, spec string, calls ...emulator.Call) {
	cr := r.begin(id, title, spec)
	defer r.end(cr)
	for _, c := range calls {
		if _, ok := r.send(ctx, cr, c, nil); !ok {
			return
		}
	}
}

// randomSecret is a client secret the way an identity center makes one.
func randomSecret() string { return "cs-" + rand.Text() }

func (r *runner) kitAppSync(ctx context.Context, t *kitTenant) {
	cr := r.begin(t.id("application-sync"), "applicationSync flag 1 with a clientSecret RSA-OAEP-encrypted to the seller's public key", specKitApp)
	defer r.end(cr)
	secret, err := sign.EncryptClientSecret(r.cfg.RSAPublicKey, randomSecret())
	if err != nil {
		cr.fail(RuleNotRun, "not run: %v", err)
		return
	}
	t.secretCipher = secret
	r.send(ctx, cr, t.call(protocol.KitApplicationSync, t.appFields(protocol.KitFlagAdd)), nil)
}

func (r *runner) kitAllOrgSync(ctx context.Context, t *kitTenant) {
	r.kitStep(ctx, t.id("all-org-sync"), "allOrgSync sends the whole department tree (three departments)", specKitAllOrg,
		t.call(protocol.KitAllOrgSync, t.allOrgFields()))
}

func (r *runner) kitAuthAdd(ctx context.Context, t *kitTenant) {
	r.kitStep(ctx, t.id("auth-add"), "authSync flag 1 authorises three users (flat and extension-nested fields, mobile and e-mail)", specKitAuth,
		t.call(protocol.KitAuthSync, t.authFields(t.users, protocol.KitFlagAdd)))
}

func (r *runner) kitAuthModify(ctx context.Context, t *kitTenant) {
	u := t.users[1]
	u.Role, u.OrgCode, u.Name = protocol.KitRoleAdmin, t.orgs[2].code, "Developer, moved"
	t.users[1] = u
	r.kitStep(ctx, t.id("auth-modify"), "authSync flag 2 changes a user's role, name and department", specKitAuth,
		t.call(protocol.KitAuthSync, t.authFields([]kitUser{u}, protocol.KitFlagModify)))
}

// kitAuthRevoke revokes a user's authorisation (flag 3), which V2 adds
// (saas-v2.md §3.8); V1 has no such flag, so it is skipped there.
func (r *runner) kitAuthRevoke(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v2" {
		return
	}
	r.kitStep(ctx, t.id("auth-revoke"), "authSync flag 3 revokes a user's authorisation", specKitAuth,
		t.call(protocol.KitAuthSync, t.authFields(t.users[2:3], protocol.KitFlagRevoke)))
}

func (r *runner) kitAuthDelete(ctx context.Context, t *kitTenant) {
	r.kitStep(ctx, t.id("auth-delete"), "authSync flag 0 deletes a user", specKitAuth,
		t.call(protocol.KitAuthSync, t.authFields(t.users[1:2], protocol.KitFlagDelete)))
}

func (r *runner) kitSingleOrgSync(ctx context.Context, t *kitTenant) {
	qa := kitOrg{"QA" + t.code, "Quality", t.orgs[1].code}
	renamed := qa
	renamed.name = "Quality Assurance"
	r.kitStep(ctx, t.id("single-org-sync"), "singleOrgSync adds a department (flag 1), renames it (flag 2) and deletes it (flag 0)", specKitOrg,
		t.call(protocol.KitSingleOrgSync, t.orgFields(qa, protocol.KitFlagAdd)),
		t.call(protocol.KitSingleOrgSync, t.orgFields(renamed, protocol.KitFlagModify)),
		t.call(protocol.KitSingleOrgSync, t.orgFields(renamed, protocol.KitFlagDelete)))
}

// kitRepeatAdd repeats each add: every repeat must answer 000000 again
// (all Kit interfaces are idempotent, saas-v2.md §3.8).
func (r *runner) kitRepeatAdd(ctx context.Context, t *kitTenant) {
	cr := r.begin(t.id("repeat-add"), "every add repeated (tenantSync, applicationSync, authSync, singleOrgSync flag 1) answers 000000 again", suiteSpec[RuleKitIdempotent])
	defer r.end(cr)
	org := kitOrg{"DUP" + t.code, "Twice added", t.orgs[0].code}
	calls := []emulator.Call{
		t.call(protocol.KitTenantSync, t.tenantFields(protocol.KitFlagAdd)),
		t.call(protocol.KitApplicationSync, t.appFields(protocol.KitFlagAdd)),
		t.call(protocol.KitAuthSync, t.authFields(t.users[:1], protocol.KitFlagAdd)),
		t.call(protocol.KitSingleOrgSync, t.orgFields(org, protocol.KitFlagAdd)),
		t.call(protocol.KitSingleOrgSync, t.orgFields(org, protocol.KitFlagAdd)),
	}
	what := []string{"tenantSync flag 1 of tenant " + t.tenantID, "applicationSync flag 1 of app " + t.appID,
		"authSync flag 1 of user " + t.users[0].UserName, "singleOrgSync flag 1 of department " + org.code, "singleOrgSync flag 1 of department " + org.code}
	for i, c := range calls {
		r.send(ctx, cr, c, resultCodeAs(RuleKitIdempotent, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to %s, which it already holds, want 000000: a repeated add must succeed (Kit calls are idempotent)", answered(got), what[i])
		}))
	}
}

// kitDeleteUnknown deletes what the seller never held: each must answer
// 000000 (saas-v2.md §3.8).
func (r *runner) kitDeleteUnknown(ctx context.Context, t *kitTenant) {
	cr := r.begin(t.id("delete-unknown"), "deleting what is not there (a user, a department, an app, a tenant) answers 000000", suiteSpec[RuleKitDeleteUnknown])
	defer r.end(cr)
	n := emulator.NewNonce()[:12]
	ghost := kitUser{UserName: "never-authorised-" + n, Name: "Ghost", OrgCode: t.orgs[0].code, Role: protocol.KitRoleUser, Enable: "true"}
	other := *t
	other.appID, other.tenantID = "NEVERAPP"+strings.ToUpper(n), "never-tenant-"+n
	app := t.appFields(protocol.KitFlagDelete)
	app["appId"] = other.appID
	calls := []emulator.Call{
		t.call(protocol.KitAuthSync, t.authFields([]kitUser{ghost}, protocol.KitFlagDelete)),
		t.call(protocol.KitSingleOrgSync, t.orgFields(kitOrg{"NEVER" + n, "Never there", t.orgs[0].code}, protocol.KitFlagDelete)),
		t.call(protocol.KitApplicationSync, app),
		t.call(protocol.KitTenantSync, other.tenantFields(protocol.KitFlagDelete)),
	}
	what := []string{"authSync flag 0 of user " + ghost.UserName, "singleOrgSync flag 0 of department NEVER" + n,
		"applicationSync flag 0 of app " + other.appID, "tenantSync flag 0 of tenant " + other.tenantID}
	for i, c := range calls {
		r.send(ctx, cr, c, resultCodeAs(RuleKitDeleteUnknown, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to %s, which it never held, want 000000: deleting what is not there must succeed", answered(got), what[i])
		}))
	}
}

// refused judges a call that must be refused: any resultCode but 000000
// passes (the violation is dropped); 000000 fails rule with the message
// accepted.
func refused(rule, accepted string) translate {
	return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleResultCode {
			return Failure{}, false
		}
		if a.ResultCode != protocol.CodeSuccess {
			return Failure{}, true
		}
		return Failure{Rule: rule, Message: accepted, Spec: suiteSpec[rule]}, true
	}
}

func (r *runner) kitTooManyUsers(ctx context.Context, t *kitTenant) {
	cr := r.begin(t.id("too-many-users"), fmt.Sprintf("authSync with %d users (at most 500) is refused: not 000000", tooManyUsers), suiteSpec[RuleKitUserLimit])
	defer r.end(cr)
	users := make([]kitUser, tooManyUsers)
	for i := range users {
		users[i] = kitUser{UserName: fmt.Sprintf("bulk-%s-%03d", t.code, i), Name: fmt.Sprintf("User %d", i),
			OrgCode: t.orgs[0].code, Role: protocol.KitRoleUser, Enable: "true"}
	}
	c := t.call(protocol.KitAuthSync, t.authFields(users, protocol.KitFlagAdd), protocol.CodeInvalidParam)
	r.send(ctx, cr, c, refused(RuleKitUserLimit, fmt.Sprintf("the seller accepted an authSync with %d users: it does not enforce the limit of 500 users per call", tooManyUsers)))
}

func (r *runner) kitBadSecret(ctx context.Context, t *kitTenant) {
	cr := r.begin(t.id("bad-secret"), "applicationSync whose clientSecret does not decrypt with the seller's private key is refused: not 000000", suiteSpec[RuleKitClientSecret])
	defer r.end(cr)
	junk := make([]byte, r.cfg.RSAPublicKey.Size())
	_, _ = rand.Read(junk)
	f := t.appFields(protocol.KitFlagAdd)
	f["appId"] = "BADSECRET" + strings.ToUpper(emulator.NewNonce()[:8])
	f["clientSecret"] = base64.StdEncoding.EncodeToString(junk)
	r.send(ctx, cr, t.call(protocol.KitApplicationSync, f, protocol.CodeInvalidParam),
		refused(RuleKitClientSecret, "the seller accepted an applicationSync whose clientSecret cannot be decrypted with its private key: it does not decrypt the secret (or ignores the failure), so its users could not sign in"))
}

// kitTestAccount plays the test-account flow: tenantSync, applicationSync
// and allOrgSync of a new tenant with empty instanceId and orderId
// (saas-v1-joint-login.md §B.7).
func (r *runner) kitTestAccount(ctx context.Context, t *kitTenant) {
	cr := r.begin(t.id("test-account"), "test-account flow: tenantSync, applicationSync and allOrgSync with empty instanceId and orderId answer 000000", suiteSpec[RuleKitTestAccount])
	defer r.end(cr)
	n := emulator.NewNonce()[:12]
	test := *t
	test.instanceID, test.orderID = "", ""
	test.tenantID, test.code, test.appID = "conformance-test-tenant-"+n, "test"+n, "CONFTEST"+strings.ToUpper(n)
	secret, err := sign.EncryptClientSecret(r.cfg.RSAPublicKey, randomSecret())
	if err != nil {
		cr.fail(RuleNotRun, "not run: %v", err)
		return
	}
	test.secretCipher = secret
	calls := []emulator.Call{
		test.call(protocol.KitTenantSync, test.tenantFields(protocol.KitFlagAdd)),
		test.call(protocol.KitApplicationSync, test.appFields(protocol.KitFlagAdd)),
		test.call(protocol.KitAllOrgSync, test.allOrgFields()),
	}
	for _, c := range calls {
		r.send(ctx, cr, c, resultCodeAs(RuleKitTestAccount, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to %s with empty instanceId and orderId, want 000000: the test-account flow has no instance", answered(got), c.Interface)
		}))
	}
}

// kitProbe is the harmless call the authentication cases tamper with:
// allOrgSync of the tenant's tree as it is.
func (t *kitTenant) probe(tamper emulator.Tamper, expect ...protocol.ResultCode) emulator.Call {
	c := t.call(protocol.KitAllOrgSync, t.allOrgFields(), expect...)
	c.Tamper = tamper
	return c
}

// kitAuthCase sends the probe tampered in each way given, in a case of
// its own: each must answer 000001; a seller that takes it fails rule.
func (r *runner) kitAuthCase(ctx context.Context, t *kitTenant, id, title, rule, spec string, tries ...kitTamper) {
	cr := r.begin(t.id(id), title, spec)
	defer r.end(cr)
	r.kitAuthTries(ctx, cr, t, rule, spec, tries...)
}

// kitAuthTries sends the probe tampered in each way given within case cr.
func (r *runner) kitAuthTries(ctx context.Context, cr *caseRun, t *kitTenant, rule, spec string, tries ...kitTamper) {
	for _, try := range tries {
		r.send(ctx, cr, t.probe(try.tamper, authFailed...), func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
			if v.Rule != emulator.RuleResultCode {
				return Failure{}, false
			}
			msg := fmt.Sprintf("the seller %s to a Kit %s call %s, want 000001 (authentication failed)", answered(a.ResultCode), t.gen.name, try.what)
			if a.ResultCode == protocol.CodeSuccess {
				msg = fmt.Sprintf("the seller accepted a Kit %s call %s: %s", t.gen.name, try.what, try.fault)
			}
			return Failure{Rule: rule, Message: msg, Spec: spec}, true
		})
	}
}

// kitTamper is one way of breaking a Kit call's authentication.
type kitTamper struct {
	tamper      emulator.Tamper
	what, fault string
}

func (r *runner) kitMissingAuthToken(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v1" {
		return
	}
	r.kitAuthCase(ctx, t, "missing-auth-token", "a Kit V1 call without the authToken header answers 000001", RuleAuthToken, specKitV1Auth,
		kitTamper{emulator.Tamper{Omit: []string{sign.AuthTokenParam}}, "without the authToken header", "it skips the check when the header is absent"})
}

func (r *runner) kitBadAuthToken(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v1" {
		return
	}
	r.kitAuthCase(ctx, t, "bad-auth-token", "a Kit V1 call with a wrong authToken header, or one made with another key, answers 000001", RuleAuthToken, specKitV1Auth,
		kitTamper{emulator.Tamper{Signature: zeroToken}, "with a wrong authToken header", "it does not check the authToken header"},
		kitTamper{emulator.Tamper{Key: "conformance-made-up-key-" + emulator.NewNonce()}, "whose authToken is made with a made-up key", "it does not check the authToken header against its Kit key"})
}

func (r *runner) kitBadSign(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v2" {
		return
	}
	r.kitAuthCase(ctx, t, "bad-sign", "a Kit V2 call with a wrong x-sign (64 zeros), or none, answers 000001", RuleSignature, specKitV2Auth,
		kitTamper{emulator.Tamper{Signature: strings.Repeat("0", 64)}, "with a wrong x-sign", "it does not check x-sign"},
		kitTamper{emulator.Tamper{Omit: []string{"x-sign"}}, "without x-sign", "it skips the check when the header is absent"})
}

func (r *runner) kitStaleTimestamp(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v2" {
		return
	}
	r.kitAuthCase(ctx, t, "stale-timestamp", fmt.Sprintf("a correctly signed Kit V2 call with an x-timestamp %v old, or none, answers 000001", staleBy), RuleTimestamp, specKitV2Auth,
		kitTamper{emulator.Tamper{Skew: -staleBy}, fmt.Sprintf("whose x-timestamp was %v old", staleBy), "it does not check the 60 s x-timestamp window"},
		kitTamper{emulator.Tamper{Omit: []string{"x-timestamp"}}, "without x-timestamp", "it skips the check when the header is absent"})
}

// kitReplayedNonce sends a good probe with nonce N, which must be
// accepted, then another reusing N, which must answer 000001, then one
// without x-nonce.
func (r *runner) kitReplayedNonce(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v2" {
		return
	}
	cr := r.begin(t.id("replayed-nonce"), "a correctly signed Kit V2 call reusing the x-nonce of an earlier call, or without one, answers 000001", specKitV2Auth)
	defer r.end(cr)
	nonce := emulator.NewNonce()
	if _, ok := r.send(ctx, cr, t.probe(emulator.Tamper{Nonce: nonce}), nil); !ok {
		return
	}
	r.kitAuthTries(ctx, cr, t, RuleNonce, specKitV2Auth,
		kitTamper{emulator.Tamper{Nonce: nonce}, "that reused the x-nonce of an earlier call", "it does not remember nonces (no replay defence)"},
		kitTamper{emulator.Tamper{Omit: []string{"x-nonce"}}, "without x-nonce", "it skips the check when the header is absent"})
}

// kitSignFormB sends a probe whose x-sign is in form B (the
// basic-interface formula): which form KooGallery sends is UNCONFIRMED
// (saas-v2.md §2.3), so a seller must take both.
func (r *runner) kitSignFormB(ctx context.Context, t *kitTenant) {
	if t.gen.name != "v2" {
		return
	}
	cr := r.begin(t.id("sign-form-b"), "a Kit V2 call whose x-sign is in form B (with the inner body HMAC) answers 000000: both forms must be accepted", specKitV2Auth)
	defer r.end(cr)
	c := t.probe(emulator.Tamper{})
	c.KitForm = emulator.KitFormB
	r.send(ctx, cr, c, resultCodeAs(RuleSignature, func(got protocol.ResultCode) string {
		return fmt.Sprintf("the seller %s to a Kit V2 call signed in form B, want 000000: x-sign may come in either canonical form (UNCONFIRMED which), so both must be accepted", answered(got))
	}))
}

// kitUnbind unbinds the tenant: authSync flag 0 of the users left,
// applicationSync flag 0, tenantSync flag 0.
func (r *runner) kitUnbind(ctx context.Context, t *kitTenant) {
	left := []kitUser{t.users[0], t.users[2]}
	r.kitStep(ctx, t.id("unbind"), "unbinding: authSync flag 0 of the users left, applicationSync flag 0, tenantSync flag 0", specKit,
		t.call(protocol.KitAuthSync, t.authFields(left, protocol.KitFlagDelete)),
		t.call(protocol.KitApplicationSync, t.appFields(protocol.KitFlagDelete)),
		t.call(protocol.KitTenantSync, t.tenantFields(protocol.KitFlagDelete)))
}
