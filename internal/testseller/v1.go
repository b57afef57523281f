package testseller

import (
	"crypto/rand"
	"errors"
	"net/http"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// v1EncryptType is the encryptType of the V1 answers' credentials and of
// the buyer's mobilePhone and email: AES-256 (saas-v1-joint-login.md §A.7).
const v1EncryptType = "1"

// v1Answer answers one SaaS V1 GET call (saas-v1-joint-login.md Part A):
// the authToken over the URL-decoded query checked with the basic key (no
// timeStamp window: none is documented), then the activity decoded,
// validated and carried out.
func (s *Seller) v1Answer(r *http.Request) any {
	q, err := protocol.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return protocol.ErrorResponse(err)
	}
	if !s.faults.V1SkipAuthToken {
		want, err := sign.AuthTokenQuery(s.key, q)
		if err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, "authentication failed: authToken and timeStamp are required")
		}
		if err := checkAuthToken(q.Get(sign.AuthTokenParam), want); err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, err.Error())
		}
	}
	req, err := protocol.DecodeV1(q)
	if err != nil {
		var fe *protocol.FieldError // unknown or missing activity, bad saasExtendParams
		if s.faults.V1SkipValidation && errors.As(err, &fe) {
			return protocol.NewResponse(protocol.CodeSuccess, successMsg)
		}
		return protocol.ErrorResponse(err)
	}
	if err := req.Validate(); err != nil {
		if !s.faults.V1SkipValidation {
			return protocol.ErrorResponse(err)
		}
		if req.Activity() != protocol.ActivityNewInstance {
			return protocol.NewResponse(protocol.CodeSuccess, successMsg)
		}
	}
	unknownOK := s.faults.V1UnknownInstanceOK
	switch req := req.(type) {
	case protocol.V1NewInstanceRequest:
		return s.v1NewInstance(req)
	case protocol.V1QueryInstanceRequest:
		reply := s.query(req.InstanceIDs(), false, s.v1AppInfo)
		reply.EncryptType = v1EncryptType
		return reply
	case protocol.V1RefreshInstanceRequest:
		return s.change(req.InstanceID, unknownOK, func(in *instance) {
			if t, err := req.Expiry(); err == nil { // checked by Validate unless V1SkipValidation
				in.expiry = t
			}
		})
	case protocol.V1ExpireInstanceRequest:
		return s.change(req.InstanceID, unknownOK, func(in *instance) { in.frozen = true })
	case protocol.V1InstanceStatusRequest:
		return s.change(req.InstanceID, unknownOK, func(in *instance) {
			in.frozen = req.InstanceStatus == protocol.InstanceStatusFreeze
		})
	case protocol.V1UpgradeRequest:
		return s.change(req.InstanceID, unknownOK, func(in *instance) { in.upgrade(orderLine{orderID: req.OrderID}) })
	case protocol.V1ReleaseInstanceRequest:
		return s.release(req.InstanceID, unknownOK, false)
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
}

// v1NewInstance creates the instance of a V1 order, idempotently: the key
// is orderId, with productId for pay-per-use orders, whose charge items
// share one orderId (saas-v1-joint-login.md §A.5.1, §A.6). A repeat
// answers exactly the first answer. The buyer's mobilePhone and email
// must decrypt with the basic key (§A.7); they are not kept.
func (s *Seller) v1NewInstance(r protocol.V1NewInstanceRequest) protocol.V1NewInstanceResponse {
	for _, f := range []struct{ name, value string }{{"mobilePhone", r.MobilePhone}, {"email", r.Email}} {
		if f.value == "" || s.faults.V1SkipValidation {
			continue
		}
		if s.v1Cipher == nil {
			return protocol.V1NewInstanceResponse{Response: protocol.NewResponse(protocol.CodeInternal, "no basic key to decrypt "+f.name)}
		}
		if _, err := s.v1Cipher.Decrypt(f.value); err != nil {
			return protocol.V1NewInstanceResponse{Response: protocol.NewResponse(protocol.CodeInvalidParam,
				f.name+": cannot be decrypted with the key (encryptType "+v1EncryptType+")")}
		}
	}
	onDemand := r.ChargingMode == protocol.V1ChargingOnDemand || r.ChargingMode == protocol.V1ChargingOnDemandPkg
	key := orderLine{orderID: r.OrderID}
	if onDemand {
		key.orderLineID = r.ProductID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.v1Orders[key]; ok && !s.faults.V1NewInstanceEveryCall {
		in := s.instances[id]
		return protocol.V1NewInstanceResponse{Response: protocol.NewResponse(protocol.CodeSuccess, successMsg),
			EncryptType: v1EncryptType, InstanceID: in.id, AppInfo: s.v1AppInfo(in)}
	}
	in := &instance{
		id:       "ts1-" + rand.Text(),
		line:     key,
		password: "Pw-" + rand.Text()[:16],
		onDemand: onDemand,
	}
	if t, err := protocol.ParseExpireTime(r.ExpireTime); err == nil {
		in.expiry = t
	}
	s.instances[in.id] = in
	s.v1Orders[key] = in.id
	s.created++
	return protocol.V1NewInstanceResponse{Response: protocol.NewResponse(protocol.CodeSuccess, successMsg),
		EncryptType: v1EncryptType, InstanceID: in.id, AppInfo: s.v1AppInfo(in)}
}

// v1AppInfo is an instance's app info as V1 answers carry it: userName
// and password AES-encrypted with the basic key. It is encrypted once and
// kept, so that repeated answers are the same bytes. Guarded by s.mu.
func (s *Seller) v1AppInfo(in *instance) *protocol.AppInfo {
	if in.v1App != nil {
		return in.v1App
	}
	app := appInfo(in)
	if s.v1Cipher != nil {
		user, errU := s.v1Cipher.Encrypt(app.UserName)
		pass, errP := s.v1Cipher.Encrypt(app.Password)
		if errU != nil || errP != nil {
			return nil // crypto/rand failed; the answer has no credentials rather than clear ones
		}
		app.UserName, app.Password = user, pass
	} else {
		app.UserName, app.Password = "", ""
	}
	in.v1App = app
	return app
}
