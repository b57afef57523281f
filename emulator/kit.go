package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Tenant binding status (Tenant.Status, Subscription.TenantStatus).
const (
	TenantPending = "pending" // bind or test-account started; tenantSync not yet answered 000000
	TenantBound   = "bound"   // tenantSync flag 1 succeeded
	TenantUnbound = "unbound" // tenantSync flag 0 succeeded: the seller deleted it
)

// Tenant is an enterprise the emulator made for a joint-operation
// subscription, as the Kit calls told the seller of it: what the seller
// should hold after them.
type Tenant struct {
	TenantID   string `json:"tenantId"`
	TenantCode string `json:"tenantCode"`
	Name       string `json:"name"`
	DomainName string `json:"domainName"`
	// OneAccessURL is the base URL of the identity center the emulator
	// plays for the tenant (OneAccessHandler): Config.PublicURL +
	// /oneaccess/<tenantCode>, or the path alone when PublicURL is unset.
	// With PublicURL it is DomainName.
	OneAccessURL string `json:"oneAccessUrl"`
	// ClientID is the OAuth client of the tenant's app (applicationSync);
	// the secret is never shown.
	ClientID       string `json:"clientId"`
	SubscriptionID string `json:"subscriptionId"`
	// InstanceID and OrderID are empty for a test account.
	InstanceID  string `json:"instanceId"`
	OrderID     string `json:"orderId"`
	TestAccount bool   `json:"testAccount,omitempty"`
	// Family is the Kit family the calls went through: kit-v1 or kit-v2.
	Family string       `json:"family"`
	Status string       `json:"status"`
	Apps   []TenantApp  `json:"apps"`
	Users  []TenantUser `json:"users"`
	Orgs   []TenantOrg  `json:"orgs"`
}

// TenantApp is an app of a tenant (applicationSync).
type TenantApp struct {
	AppID    string `json:"appId"`
	ClientID string `json:"clientId"`
}

// TenantUser is a user authSync told the seller of. Authorized is false
// once revoke-user revoked it; users deleted (unbind) are gone.
type TenantUser struct {
	UserName   string `json:"userName"`
	Name       string `json:"name"`
	OrgCode    string `json:"orgCode"`
	Role       string `json:"role"`
	Enable     bool   `json:"enable"`
	Authorized bool   `json:"authorized"`
}

// TenantOrg is a department (allOrgSync, singleOrgSync).
type TenantOrg struct {
	OrgCode    string `json:"orgCode"`
	Name       string `json:"name"`
	ParentCode string `json:"parentCode"`
}

// tenant is the emulator's copy of a Tenant, with what it does not show.
// Guarded by Emulator.mu.
type tenant struct {
	t Tenant
	// secret is the clientSecret in plain text, sealed is its RSA-OAEP
	// ciphertext as sent (applicationSync flag 0 sends it again).
	secret, sealed string
	// orgSeq numbers the departments org-change adds; changing is the
	// one it is changing, revoking the user revoke-user revokes.
	orgSeq   int
	changing string
	revoking string
	// oa is the tenant's identity center: its directory and the
	// registered callbacks.
	oa oaTenant
}

func (t *tenant) snapshot() Tenant {
	c := t.t
	c.Apps = slices.Clone(list(t.t.Apps))
	c.Users = slices.Clone(list(t.t.Users))
	c.Orgs = slices.Clone(list(t.t.Orgs))
	return c
}

// authorized reports whether userName is an authorised user.
func (t *tenant) authorized(userName string) bool {
	i := slices.IndexFunc(t.t.Users, func(u TenantUser) bool { return u.UserName == userName })
	return i >= 0 && t.t.Users[i].Authorized
}

// countAuthorized counts the authorised users.
func (t *tenant) countAuthorized() int {
	n := 0
	for _, u := range t.t.Users {
		if u.Authorized {
			n++
		}
	}
	return n
}

// Tenants lists the tenants the emulator made, oldest first.
func (e *Emulator) Tenants() []Tenant {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Tenant, len(e.tenants))
	for i, t := range e.tenants {
		out[i] = t.snapshot()
	}
	return out
}

// Tenant returns one tenant by tenantId.
func (e *Emulator) Tenant(id string) (Tenant, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.tenants {
		if t.t.TenantID == id {
			return t.snapshot(), true
		}
	}
	return Tenant{}, false
}

// randomSecret is a made-up OAuth client secret: 32 URL-safe characters.
func randomSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newAppID is the emulator's app credential ID (应用凭证管理), one per
// emulator, shared by its tenants as KooGallery's is.
func newAppID() string { return "EMUAPP" + strings.ToUpper(NewNonce()[:10]) }

// tenantForLocked returns sub's tenant, made (pending) when it has none.
// A tenant unbound earlier is bound again with a new OAuth client.
func (e *Emulator) tenantForLocked(sub *Subscription, test bool) *tenant {
	t := e.tenantBySub[sub.ID]
	if t == nil {
		id := NewNonce()
		code := "emu" + id[:8]
		domain := "https://" + code + ".idp.emulator.example.com"
		if e.cfg.PublicURL != "" {
			domain = e.oneAccessURL(code)
		}
		t = &tenant{t: Tenant{
			TenantID: id, TenantCode: code, Name: "Emulator Enterprise " + code,
			DomainName: domain, OneAccessURL: e.oneAccessURL(code),
			SubscriptionID: sub.ID, TestAccount: test,
		}}
		e.tenants = append(e.tenants, t)
		e.tenantBySub[sub.ID] = t
	}
	t.t.InstanceID, t.t.OrderID = sub.InstanceID, sub.OrderID
	if test {
		t.t.InstanceID, t.t.OrderID = "", ""
	}
	t.t.Status = TenantPending
	t.t.Family = kitFamily(sub).Name
	t.t.ClientID = NewNonce()
	t.secret, t.sealed = randomSecret(), ""
	t.t.Apps, t.t.Users, t.t.Orgs = nil, nil, nil
	sub.TenantID, sub.TenantStatus, sub.AuthorizedUsers = t.t.TenantID, TenantPending, 0
	return t
}

// kitFamily is KitV1 for a V1 product and KitV2 otherwise.
func kitFamily(sub *Subscription) *Family {
	if protocolOf(sub.Protocol) == ProtocolV1 {
		return KitV1
	}
	return KitV2
}

// kitDisplay names the Kit scenarios' family in the scenario list.
var kitDisplay = &Family{Name: "kit"}

// needsPublicKey refuses what sends applicationSync flag 1 without the
// seller's public key.
func needsPublicKey(cfg Config) string {
	if cfg.SellerPublicKey == nil {
		return "the seller's RSA public key is missing: applicationSync sends clientSecret encrypted to it; " +
			"start koobridge emulate with --rsa-public-key-file (Config.SellerPublicKey)"
	}
	return ""
}

// kitTenant is sub's tenant (the Kit steps run after bind made it).
func (e *Emulator) kitTenant(sub *Subscription) *tenant { return e.tenantBySub[sub.ID] }

// kitTestFlagOf is the Kit testFlag of sub: 1 for a debug subscription.
func kitTestFlagOf(sub *Subscription) protocol.FlexInt {
	if sub.Test {
		return 1
	}
	return 0
}

// kitTime is the Kit timeStamp of now: GMT+8 yyyyMMddHHmmssSSS of the
// wall clock (saas-v2.md §3.8).
func (e *Emulator) kitTime() string { return protocol.FormatKitTime(e.cfg.Now()) }

// bindSteps are tenantSync, applicationSync and allOrgSync (flag 1): the
// enterprise binding and, with test set, the test-account flow (empty
// instanceId and orderId, saas-v1-joint-login.md §B.7).
func bindSteps(test bool) []step {
	return []step{
		{
			iface:  protocol.KitTenantSync,
			before: func(e *Emulator, sub *Subscription) error { e.tenantForLocked(sub, test); return nil },
			build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
				return tenantSyncBody(e, sub, e.kitTenant(sub), protocol.KitFlagAdd)
			},
			apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
				e.kitTenant(sub).t.Status = TenantBound
				sub.TenantStatus = TenantBound
			},
		},
		{
			iface: protocol.KitApplicationSync,
			before: func(e *Emulator, sub *Subscription) error {
				if why := needsPublicKey(e.cfg); why != "" {
					return errors.New(why)
				}
				t := e.kitTenant(sub)
				sealed, err := sign.EncryptClientSecret(e.cfg.SellerPublicKey, t.secret)
				if err != nil {
					return fmt.Errorf("encrypt clientSecret to the seller's public key: %w", err)
				}
				t.sealed = sealed
				return nil
			},
			build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
				return applicationSyncBody(e, sub, e.kitTenant(sub), protocol.KitFlagAdd)
			},
			apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
				t := e.kitTenant(sub)
				t.t.Apps = []TenantApp{{AppID: e.appID, ClientID: t.t.ClientID}}
			},
		},
		{
			iface: protocol.KitAllOrgSync,
			build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
				return allOrgSyncBody(e, sub, e.kitTenant(sub), x.family)
			},
			apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
				e.kitTenant(sub).t.Orgs = orgTree()
				if test {
					sub.Status = StatusTestAccount
				}
			},
		},
	}
}

// The department tree bind sends: a root and three departments.
const (
	orgRoot     = "ORG-ROOT"
	orgRD       = "ORG-RD"
	orgSales    = "ORG-SALES"
	orgPlatform = "ORG-RD-PLATFORM"
)

func orgTree() []TenantOrg {
	return []TenantOrg{
		{OrgCode: orgRoot, Name: "Emulator Enterprise"},
		{OrgCode: orgRD, Name: "Research and Development", ParentCode: orgRoot},
		{OrgCode: orgSales, Name: "Sales", ParentCode: orgRoot},
		{OrgCode: orgPlatform, Name: "Platform", ParentCode: orgRD},
	}
}

// authorizeCount is how many users authorize-users authorises in one
// authSync: the most one call may carry (saas-v1-joint-login.md §B.4).
const authorizeCount = 500

// kitUsers are the users authorize-users authorises: user001…user500 in
// the four departments; user001 is an admin; every hundredth is
// disabled; some carry fields nested under extension, some flat, some a
// mobile number and an e-mail.
func kitUsers() []kitUserWire {
	orgs := []string{orgRoot, orgRD, orgSales, orgPlatform}
	users := make([]kitUserWire, authorizeCount)
	for i := range users {
		u := kitUserWire{
			UserName: fmt.Sprintf("user%03d", i+1),
			Name:     fmt.Sprintf("Emulator User %03d", i+1),
			OrgCode:  orgs[i%len(orgs)],
			Role:     protocol.KitRoleUser,
			enable:   i%100 != 99,
		}
		if i == 0 {
			u.Role = protocol.KitRoleAdmin
		}
		switch i % 5 {
		case 1:
			u.Extension = &kitUserExtension{EmployeeType: "1", WorkPlace: "Shenzhen", EntryDate: "2024-3-1"}
		case 2:
			u.Position, u.EmployeeCode, u.EmployeeType = "Engineer", fmt.Sprintf("E%05d", i+1), "2"
		}
		if i%10 == 3 {
			u.Mobile = fmt.Sprintf("1390000%04d", i+1)
			u.Email = fmt.Sprintf("user%03d@emulator.example.com", i+1)
		}
		users[i] = u
	}
	return users
}

// kitUserWire is one authSync user as sent. Enable is "true"/"false"
// text in V1 (saas-v1-joint-login.md §B.4) and a boolean in V2.
type kitUserWire struct {
	Email        string            `json:"email,omitempty"`
	EmployeeCode string            `json:"employeeCode,omitempty"`
	EmployeeType string            `json:"employeeType,omitempty"`
	Enable       any               `json:"enable"`
	Extension    *kitUserExtension `json:"extension,omitempty"`
	Mobile       string            `json:"mobile,omitempty"`
	Name         string            `json:"name"`
	OrgCode      string            `json:"orgCode"`
	Position     string            `json:"position,omitempty"`
	Role         string            `json:"role"`
	UserName     string            `json:"userName"`

	enable bool
}

// kitUserExtension holds the fields Huawei's example nests.
type kitUserExtension struct {
	EmployeeType string `json:"employeeType,omitempty"`
	EntryDate    string `json:"entryDate,omitempty"`
	WorkPlace    string `json:"workPlace,omitempty"`
}

// wireUsers renders users for family f.
func wireUsers(users []kitUserWire, f *Family) []kitUserWire {
	out := slices.Clone(users)
	for i := range out {
		if f == KitV1 {
			out[i].Enable = fmt.Sprint(out[i].enable)
		} else {
			out[i].Enable = out[i].enable
		}
	}
	return out
}

// userWire is the authSync rendering of a user the tenant holds.
func userWire(u TenantUser) kitUserWire {
	return kitUserWire{UserName: u.UserName, Name: u.Name, OrgCode: u.OrgCode, Role: u.Role, enable: u.Enable}
}

// authSyncWire is authSync as sent: userList is an array in V2 and JSON
// text in V1.
type authSyncWire struct {
	AppID           string           `json:"appId"`
	CurrentSyncTime string           `json:"currentSyncTime"`
	Flag            protocol.FlexInt `json:"flag"`
	InstanceID      string           `json:"instanceId"`
	TenantID        string           `json:"tenantId"`
	TestFlag        protocol.FlexInt `json:"testFlag"`
	TimeStamp       string           `json:"timeStamp"`
	UserList        any              `json:"userList"`
}

func authSyncBody(e *Emulator, sub *Subscription, t *tenant, f *Family, flag protocol.FlexInt, users []kitUserWire) any {
	ts := e.kitTime()
	var list any = wireUsers(users, f)
	if f == KitV1 {
		list = string(marshal(list))
	}
	return authSyncWire{
		AppID: e.appID, CurrentSyncTime: ts, Flag: flag, InstanceID: t.t.InstanceID,
		TenantID: t.t.TenantID, TestFlag: kitTestFlagOf(sub), TimeStamp: ts, UserList: list,
	}
}

func tenantSyncBody(e *Emulator, sub *Subscription, t *tenant, flag protocol.FlexInt) any {
	return protocol.TenantSyncRequest{
		DomainName: t.t.DomainName, Flag: flag, InstanceID: t.t.InstanceID, Name: t.t.Name,
		OrderID: t.t.OrderID, TenantCode: t.t.TenantCode, TenantID: t.t.TenantID,
		TestFlag: kitTestFlagOf(sub), TimeStamp: e.kitTime(),
	}
}

func applicationSyncBody(e *Emulator, sub *Subscription, t *tenant, flag protocol.FlexInt) any {
	return protocol.ApplicationSyncRequest{
		AppID: e.appID, ClientID: t.t.ClientID, ClientSecret: t.sealed, Flag: flag,
		InstanceID: t.t.InstanceID, TenantID: t.t.TenantID, TestFlag: kitTestFlagOf(sub), TimeStamp: e.kitTime(),
	}
}

// allOrgSyncBody sends the tree: orgInfoList, an array of {orgCode,
// orgName, parentCode}, in V2; orgInfo, JSON text of {orgCode, name,
// parentCode}, in V1 (saas-v1-joint-login.md §B.6, saas-v2.md §3.8).
func allOrgSyncBody(e *Emulator, sub *Subscription, t *tenant, f *Family) any {
	tree := orgTree()
	common := struct {
		InstanceID string           `json:"instanceId"`
		TenantID   string           `json:"tenantId"`
		TestFlag   protocol.FlexInt `json:"testFlag"`
		TimeStamp  string           `json:"timeStamp"`
	}{t.t.InstanceID, t.t.TenantID, kitTestFlagOf(sub), e.kitTime()}
	if f == KitV1 {
		// TenantOrg is V1's {orgCode, name, parentCode}.
		return struct {
			InstanceID string           `json:"instanceId"`
			OrgInfo    string           `json:"orgInfo"`
			TenantID   string           `json:"tenantId"`
			TestFlag   protocol.FlexInt `json:"testFlag"`
			TimeStamp  string           `json:"timeStamp"`
		}{common.InstanceID, string(marshal(tree)), common.TenantID, common.TestFlag, common.TimeStamp}
	}
	orgs := make([]protocol.KitOrg, len(tree))
	for i, o := range tree {
		orgs[i] = protocol.KitOrg{OrgCode: o.OrgCode, OrgName: o.Name, ParentCode: o.ParentCode}
	}
	return struct {
		InstanceID  string            `json:"instanceId"`
		OrgInfoList []protocol.KitOrg `json:"orgInfoList"`
		TenantID    string            `json:"tenantId"`
		TestFlag    protocol.FlexInt  `json:"testFlag"`
		TimeStamp   string            `json:"timeStamp"`
	}{common.InstanceID, orgs, common.TenantID, common.TestFlag, common.TimeStamp}
}

// singleOrgStep is one singleOrgSync of org-change on the department
// the scenario is changing: change gives its flag, name and parent.
func singleOrgStep(change func(t *tenant, code string) (flag protocol.FlexInt, name, parent string)) step {
	return step{
		iface: protocol.KitSingleOrgSync,
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			t := e.kitTenant(sub)
			flag, name, parent := change(t, t.changing)
			return protocol.SingleOrgSyncRequest{
				Flag: flag, InstanceID: t.t.InstanceID, OrgCode: t.changing, OrgName: name, ParentCode: parent,
				TenantID: t.t.TenantID, TestFlag: kitTestFlagOf(sub), TimeStamp: e.kitTime(),
			}
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
			t := e.kitTenant(sub)
			flag, name, parent := change(t, t.changing)
			i := slices.IndexFunc(t.t.Orgs, func(o TenantOrg) bool { return o.OrgCode == t.changing })
			switch {
			case flag == protocol.KitFlagDelete && i >= 0:
				t.t.Orgs = slices.Delete(t.t.Orgs, i, i+1)
			case flag == protocol.KitFlagDelete:
			case i >= 0:
				t.t.Orgs[i].Name, t.t.Orgs[i].ParentCode = name, parent
			default:
				t.t.Orgs = append(t.t.Orgs, TenantOrg{OrgCode: t.changing, Name: name, ParentCode: parent})
			}
		},
	}
}

// orgChangeName is the name org-change gives department code, renamed
// or not.
func orgChangeName(code string, renamed bool) string {
	if renamed {
		return "Department " + code + " (renamed)"
	}
	return "Department " + code
}

// revokeFlag is how revoke-user revokes: flag 3 (cancel authorisation) in
// V2; V1 has no flag 3 (saas-v1-joint-login.md §A.10), so it deletes the
// user's authorisation with flag 0.
func revokeFlag(f *Family) protocol.FlexInt {
	if f == KitV1 {
		return protocol.KitFlagDelete
	}
	return protocol.KitFlagRevoke
}

// boundOnly refuses a subscription whose tenant is not bound.
func boundOnly(sub *Subscription) string {
	if sub.TenantStatus != TenantBound {
		return "its tenant is not bound; play bind first"
	}
	return ""
}

const scenarioRevokeUser = "revoke-user"

var kitModes = allModes

// kitScenarios is the joint-operation Kit table (saas-v1-joint-login.md
// §B.7, saas-v2.md §3.8), played on joint products of either protocol:
// KitV1 for V1 products, KitV2 for V2 ones.
var kitScenarios = []*scenario{
	{
		name: "bind", title: "Bind to an enterprise: tenantSync, applicationSync, allOrgSync", spec: "saas-v1-joint-login.md §B.7, saas-v2.md §3.8",
		family: kitDisplay, familyOf: kitFamily, proto: protoAny, joint: true, needs: needsPublicKey,
		modes: kitModes, from: []string{StatusActive},
		check: func(sub *Subscription) string {
			if sub.TenantStatus == TenantBound {
				return "its tenant is already bound; play unbind first"
			}
			return ""
		},
		steps: bindSteps(false),
	},
	{
		name: "test-account", title: "Test account: tenantSync, applicationSync, allOrgSync without instance or order", spec: "saas-v1-joint-login.md §B.7, §C.1",
		family: kitDisplay, familyOf: kitFamily, proto: protoAny, joint: true, needs: needsPublicKey,
		modes: kitModes,
		steps: bindSteps(true),
	},
	{
		name: "authorize-users", title: "Authorise 500 users in one authSync", spec: "saas-v1-joint-login.md §B.4, saas-v2.md §3.8",
		family: kitDisplay, familyOf: kitFamily, proto: protoAny, joint: true,
		modes: kitModes, from: []string{StatusActive, StatusFrozen}, check: boundOnly,
		steps: []step{{
			iface: protocol.KitAuthSync,
			before: func(e *Emulator, sub *Subscription) error {
				// The tenant's directory holds every user authSync sent.
				e.kitTenant(sub).remember(kitUsers())
				return nil
			},
			build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
				return authSyncBody(e, sub, e.kitTenant(sub), x.family, protocol.KitFlagAdd, kitUsers())
			},
			apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
				t := e.kitTenant(sub)
				for _, u := range kitUsers() {
					nu := TenantUser{UserName: u.UserName, Name: u.Name, OrgCode: u.OrgCode, Role: u.Role, Enable: u.enable, Authorized: true}
					if i := slices.IndexFunc(t.t.Users, func(o TenantUser) bool { return o.UserName == u.UserName }); i >= 0 {
						t.t.Users[i] = nu
					} else {
						t.t.Users = append(t.t.Users, nu)
					}
				}
				sub.AuthorizedUsers = t.countAuthorized()
			},
		}},
	},
	{
		name: "org-change", title: "Department changes: add, rename, move, delete", spec: "saas-v1-joint-login.md §B.5, saas-v2.md §3.8",
		family: kitDisplay, familyOf: kitFamily, proto: protoAny, joint: true,
		modes: kitModes, from: []string{StatusActive, StatusFrozen}, check: boundOnly,
		steps: []step{
			withBefore(singleOrgStep(func(t *tenant, code string) (protocol.FlexInt, string, string) {
				return protocol.KitFlagAdd, orgChangeName(code, false), orgRoot
			}), func(e *Emulator, sub *Subscription) error {
				t := e.kitTenant(sub)
				t.orgSeq++
				t.changing = fmt.Sprintf("ORG-EMU-%03d", t.orgSeq)
				return nil
			}),
			singleOrgStep(func(t *tenant, code string) (protocol.FlexInt, string, string) {
				return protocol.KitFlagModify, orgChangeName(code, true), orgRoot
			}),
			singleOrgStep(func(t *tenant, code string) (protocol.FlexInt, string, string) {
				return protocol.KitFlagModify, orgChangeName(code, true), orgRD
			}),
			singleOrgStep(func(t *tenant, code string) (protocol.FlexInt, string, string) {
				return protocol.KitFlagDelete, orgChangeName(code, true), orgRD
			}),
		},
	},
	{
		name: scenarioRevokeUser, title: "Revoke one user's authorisation", spec: "saas-v2.md §3.8 (authSync flag 3)",
		family: kitDisplay, familyOf: kitFamily, proto: protoAny, joint: true,
		modes: kitModes, from: []string{StatusActive, StatusFrozen},
		check: func(sub *Subscription) string {
			if why := boundOnly(sub); why != "" {
				return why
			}
			if sub.AuthorizedUsers == 0 {
				return "its tenant has no authorised user; play authorize-users first"
			}
			return ""
		},
		steps: []step{{
			iface: protocol.KitAuthSync,
			before: func(e *Emulator, sub *Subscription) error {
				t := e.kitTenant(sub)
				name := sub.playOpts.UserName
				if name == "" {
					i := slices.IndexFunc(t.t.Users, func(u TenantUser) bool { return u.Authorized })
					if i < 0 {
						return errors.New("the tenant has no authorised user")
					}
					name = t.t.Users[i].UserName
				}
				if !t.authorized(name) {
					return fmt.Errorf("user %q is not an authorised user of the tenant", name)
				}
				t.revoking = name
				return nil
			},
			build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
				t := e.kitTenant(sub)
				i := slices.IndexFunc(t.t.Users, func(u TenantUser) bool { return u.UserName == t.revoking })
				return authSyncBody(e, sub, t, x.family, revokeFlag(x.family), []kitUserWire{userWire(t.t.Users[i])})
			},
			apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
				t := e.kitTenant(sub)
				if i := slices.IndexFunc(t.t.Users, func(u TenantUser) bool { return u.UserName == t.revoking }); i >= 0 {
					if revokeFlag(x.family) == protocol.KitFlagDelete {
						// V1 revokes by deleting: the seller keeps no trace of the user.
						t.t.Users = slices.Delete(t.t.Users, i, i+1)
					} else {
						t.t.Users[i].Authorized = false
					}
				}
				sub.AuthorizedUsers = t.countAuthorized()
			},
		}},
	},
	{
		name: "unbind", title: "Unbind: authSync, applicationSync and tenantSync with flag 0", spec: "saas-v1-joint-login.md §B.7",
		family: kitDisplay, familyOf: kitFamily, proto: protoAny, joint: true,
		modes: kitModes, from: []string{StatusActive, StatusFrozen, StatusReleased, StatusTestAccount}, check: boundOnly,
		steps: []step{
			{
				iface: protocol.KitAuthSync,
				skip: func(e *Emulator, sub *Subscription) bool {
					return len(e.kitTenant(sub).t.Users) == 0
				},
				build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
					t := e.kitTenant(sub)
					users := make([]kitUserWire, 0, len(t.t.Users))
					for _, u := range t.t.Users[:min(len(t.t.Users), authorizeCount)] {
						users = append(users, userWire(u))
					}
					return authSyncBody(e, sub, t, x.family, protocol.KitFlagDelete, users)
				},
				apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
					t := e.kitTenant(sub)
					t.t.Users = t.t.Users[min(len(t.t.Users), authorizeCount):]
					sub.AuthorizedUsers = t.countAuthorized()
				},
			},
			{
				iface: protocol.KitApplicationSync,
				skip: func(e *Emulator, sub *Subscription) bool {
					t := e.kitTenant(sub)
					return len(t.t.Apps) == 0 || t.sealed == ""
				},
				build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
					return applicationSyncBody(e, sub, e.kitTenant(sub), protocol.KitFlagDelete)
				},
				apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) { e.kitTenant(sub).t.Apps = nil },
			},
			{
				iface: protocol.KitTenantSync,
				build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
					return tenantSyncBody(e, sub, e.kitTenant(sub), protocol.KitFlagDelete)
				},
				apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
					t := e.kitTenant(sub)
					t.t.Status, t.t.Users, t.t.Orgs, t.t.Apps = TenantUnbound, nil, nil, nil
					sub.TenantStatus, sub.AuthorizedUsers = TenantUnbound, 0
				},
			},
		},
	},
}
