package testseller

import (
	"errors"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Kit request headers (saas-v1-joint-login.md §B.1, saas-v2.md §2.3).
const (
	headerAuthToken = "authToken"
	headerSign      = "x-sign"
	headerTimestamp = "x-timestamp"
	headerNonce     = "x-nonce"
)

// maxKitUsers is the most users one authSync may carry
// (saas-v1-joint-login.md §B.4).
const maxKitUsers = 500

// kitState is the seller's own copy of its joint-operation tenants.
// Guarded by Seller.mu.
type kitState struct {
	tenants map[string]*tenant // by tenantId
}

func newKitState() kitState { return kitState{tenants: make(map[string]*tenant)} }

// tenant is one enterprise with its apps, authorised users and
// departments.
type tenant struct {
	code, name, domain  string
	instanceID, orderID string
	synced              bool // tenantSync added it (not only made by a later call)
	apps                map[string]app
	users               map[userKey]user
	orgs                map[string]org // by orgCode
}

// app is an OAuth client of a tenant; secret is decrypted.
type app struct{ clientID, secret string }

// userKey identifies an authorised user: appId and userName
// (saas-v1-joint-login.md §B.4).
type userKey struct{ appID, userName string }

// user is an authorised (or revoked) user.
type user struct {
	name, orgCode, role string
	enable, revoked     bool
}

// org is a department.
type org struct{ name, parentCode string }

// view returns the tenant with id, or an empty one not held (whose nil
// maps read as empty), for checks and deletes.
func (k *kitState) view(id string) *tenant {
	if t, ok := k.tenants[id]; ok {
		return t
	}
	return &tenant{}
}

// tenant returns the tenant with id, made empty when it is not held:
// calls about a tenant tenantSync has not added yet are kept, not refused.
// Only a call that writes makes it.
func (k *kitState) tenant(id string) *tenant {
	t, ok := k.tenants[id]
	if !ok {
		t = &tenant{apps: make(map[string]app), users: make(map[userKey]user), orgs: make(map[string]org)}
		k.tenants[id] = t
	}
	return t
}

// kitAnswer answers one Kit call of operation name, V1 (authToken header)
// or V2 (x-sign, x-timestamp, x-nonce): authenticated with the Kit key,
// then decoded, validated and carried out.
func (s *Seller) kitAnswer(w http.ResponseWriter, r *http.Request, name string, version int) any {
	if r.Method != http.MethodPost {
		return protocol.NewResponse(protocol.CodeInvalidParam, "method "+r.Method+" not allowed: Kit interfaces take POST")
	}
	body, refused := readBody(w, r)
	if refused != nil {
		return *refused
	}
	if reply, ok := s.kitVerify(r.Header, version, body); !ok {
		return reply
	}
	req, err := protocol.DecodeKit(name, body)
	if err != nil {
		return protocol.ErrorResponse(err)
	}
	if err := s.kitValidate(req); err != nil {
		return protocol.ErrorResponse(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req := req.(type) {
	case protocol.TenantSyncRequest:
		return s.tenantSync(req)
	case protocol.ApplicationSyncRequest:
		return s.applicationSync(req)
	case protocol.AuthSyncRequest:
		return s.authSync(req)
	case protocol.SingleOrgSyncRequest:
		return s.singleOrgSync(req)
	case protocol.AllOrgSyncRequest:
		return s.allOrgSync(req)
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "operation "+name+" is not served here")
}

// kitVerify authenticates a Kit call with the Kit key; ok is false when
// reply is the answer. V1: the authToken header over the body fields
// (saas-v1-joint-login.md §B.1, §A.2), no timeStamp window (none is
// documented). V2: x-sign in either canonical form, x-timestamp within 60
// s, x-nonce not seen before (saas-v2.md §2.3).
func (s *Seller) kitVerify(h http.Header, version int, body []byte) (reply protocol.Response, ok bool) {
	if version == 1 {
		if s.faults.KitSkipAuthToken {
			return protocol.Response{}, true
		}
		want, err := sign.AuthTokenJSON(s.kitKey, body)
		switch {
		case errors.Is(err, sign.ErrMalformedParams):
			return protocol.NewResponse(protocol.CodeInvalidParam, "the body is not one JSON object"), false
		case err != nil:
			return protocol.NewResponse(protocol.CodeAuthFailed, "authentication failed: timeStamp is required"), false
		}
		if err := checkAuthToken(h.Get(headerAuthToken), want); err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, err.Error()), false
		}
		return protocol.Response{}, true
	}
	skip := lax{signature: s.faults.KitSkipSign, window: s.faults.KitStaleTimestampOK, nonce: s.faults.KitReplayOK}
	if err := s.verify([]string{s.kitKey}, kitForms, h.Get(headerSign), h.Get(headerTimestamp), h.Get(headerNonce), body, time.Now(), skip); err != nil {
		return protocol.NewResponse(protocol.CodeAuthFailed, err.Error()), false
	}
	return protocol.Response{}, true
}

// kitValidate validates a Kit request; KitNoUserLimit lets an authSync
// with more than 500 users through (its first 500 are validated).
func (s *Seller) kitValidate(req protocol.KitRequest) error {
	if a, ok := req.(protocol.AuthSyncRequest); ok && s.faults.KitNoUserLimit && len(a.UserList) > maxKitUsers {
		a.UserList = a.UserList[:maxKitUsers]
		return a.Validate()
	}
	return req.Validate()
}

// kitOK is the answer to a Kit call carried out.
var kitOK = protocol.NewResponse(protocol.CodeSuccess, successMsg)

// kitExists is KitRepeatAddFails's answer to adding what is held.
func kitExists(what string) protocol.Response {
	return protocol.NewResponse(protocol.CodeInternal, what+" already exists")
}

// kitUnknown is KitDeleteUnknownFails's answer to deleting what is not held.
func kitUnknown(what string) protocol.Response {
	return protocol.NewResponse(protocol.CodeInstanceNotFound, what+" does not exist")
}

// tenantSync adds, modifies or deletes a tenant. Adding an existing one
// and deleting an unknown one succeed (saas-v2.md §3.8). Guarded by s.mu.
func (s *Seller) tenantSync(r protocol.TenantSyncRequest) protocol.Response {
	old, held := s.kit.tenants[r.TenantID]
	held = held && old.synced
	switch r.Flag {
	case protocol.KitFlagDelete:
		if !held && s.faults.KitDeleteUnknownFails {
			return kitUnknown("tenant " + r.TenantID)
		}
		delete(s.kit.tenants, r.TenantID)
		return kitOK
	case protocol.KitFlagAdd:
		if held && s.faults.KitRepeatAddFails {
			return kitExists("tenant " + r.TenantID)
		}
	}
	t := s.kit.tenant(r.TenantID)
	t.code, t.name, t.domain = r.TenantCode, r.Name, r.DomainName
	t.instanceID, t.orderID, t.synced = r.InstanceID, r.OrderID, true
	return kitOK
}

// applicationSync adds, modifies or deletes a tenant's OAuth client. The
// clientSecret of an add or modify must decrypt with the seller's private
// key (RSA-OAEP); it is kept decrypted and never shown. Guarded by s.mu.
func (s *Seller) applicationSync(r protocol.ApplicationSyncRequest) protocol.Response {
	t := s.kit.view(r.TenantID)
	_, held := t.apps[r.AppID]
	if r.Flag == protocol.KitFlagDelete {
		if !held && s.faults.KitDeleteUnknownFails {
			return kitUnknown("app " + r.AppID)
		}
		delete(t.apps, r.AppID)
		return kitOK
	}
	secret, err := sign.DecryptClientSecret(s.privateKey(), r.ClientSecret)
	if err != nil && !s.faults.KitAcceptBadSecret {
		return protocol.NewResponse(protocol.CodeInvalidParam, "clientSecret: cannot be decrypted with the seller's RSA private key (RSA-OAEP, base64)")
	}
	if held && r.Flag == protocol.KitFlagAdd && s.faults.KitRepeatAddFails {
		return kitExists("app " + r.AppID)
	}
	s.kit.tenant(r.TenantID).apps[r.AppID] = app{clientID: r.ClientID, secret: secret}
	return kitOK
}

// authSync adds, modifies, revokes or deletes users of a tenant's app, all
// or none: every user is checked before any changes. Guarded by s.mu.
func (s *Seller) authSync(r protocol.AuthSyncRequest) protocol.Response {
	t := s.kit.view(r.TenantID)
	for _, u := range r.UserList {
		k := userKey{r.AppID, u.UserName}
		old, held := t.users[k]
		switch {
		case r.Flag == protocol.KitFlagAdd && held && !old.revoked && s.faults.KitRepeatAddFails:
			return kitExists("user " + u.UserName)
		case (r.Flag == protocol.KitFlagDelete || r.Flag == protocol.KitFlagRevoke) && !held && s.faults.KitDeleteUnknownFails:
			return kitUnknown("user " + u.UserName)
		}
	}
	if r.Flag == protocol.KitFlagAdd || r.Flag == protocol.KitFlagModify {
		t = s.kit.tenant(r.TenantID)
	}
	for _, u := range r.UserList {
		k := userKey{r.AppID, u.UserName}
		switch r.Flag {
		case protocol.KitFlagDelete:
			delete(t.users, k)
		case protocol.KitFlagRevoke:
			if old, held := t.users[k]; held {
				old.revoked = true
				t.users[k] = old
			}
		default: // add, modify
			t.users[k] = user{name: u.Name, orgCode: u.OrgCode, role: u.Role, enable: u.Enabled()}
		}
	}
	return kitOK
}

// singleOrgSync adds, modifies or deletes one department. Guarded by s.mu.
func (s *Seller) singleOrgSync(r protocol.SingleOrgSyncRequest) protocol.Response {
	t := s.kit.view(r.TenantID)
	_, held := t.orgs[r.OrgCode]
	switch r.Flag {
	case protocol.KitFlagDelete:
		if !held && s.faults.KitDeleteUnknownFails {
			return kitUnknown("department " + r.OrgCode)
		}
		delete(t.orgs, r.OrgCode)
		return kitOK
	case protocol.KitFlagAdd:
		if held && s.faults.KitRepeatAddFails {
			return kitExists("department " + r.OrgCode)
		}
	}
	s.kit.tenant(r.TenantID).orgs[r.OrgCode] = org{name: r.OrgName, parentCode: r.ParentCode}
	return kitOK
}

// allOrgSync replaces a tenant's department tree. Guarded by s.mu.
func (s *Seller) allOrgSync(r protocol.AllOrgSyncRequest) protocol.Response {
	t := s.kit.tenant(r.TenantID)
	orgs := make(map[string]org, len(r.Orgs()))
	for _, o := range r.Orgs() {
		orgs[o.OrgCode] = org{name: o.OrgName, parentCode: o.ParentCode}
	}
	t.orgs = orgs
	return kitOK
}
