package instance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Encrypter encrypts the app-info credentials (userName, password) of a
// reply. A family that must encrypt them whatever Config.Credentials says
// (SaaS V1) brings its own.
type Encrypter interface {
	// Encrypt returns the encrypted form of value, the field ("userName"
	// or "password") of instance instanceID's app info.
	Encrypt(instanceID, field, value string) (string, error)
	// Type is the encryptType the reply names.
	Type() sign.EncryptType
}

// randomIV is Config.Credentials as an Encrypter: a fresh random IV for
// every value.
type randomIV struct{ c *sign.CredentialCipher }

// Encrypt implements Encrypter.
func (r randomIV) Encrypt(_, _, value string) (string, error) { return r.c.Encrypt(value) }

// Type implements Encrypter.
func (r randomIV) Type() sign.EncryptType { return r.c.Type() }

// credentials is the Encrypter of Config.Credentials; nil (plain) when
// none is configured.
func (s *Service) credentials() Encrypter {
	if s.cipher == nil {
		return nil
	}
	return randomIV{s.cipher}
}

// Query reports the instances KooGallery asks about, as the queryInstance
// reply (the same in V1 and V2). Unknown ids are left out; none known is
// 000003. App info is given for instances that were provisioned (active,
// frozen, released), with the credentials plain or encrypted as
// configured. The code tells the truth about the slowest instance: any
// still provisioning → 000004, else any failed → its refusal code or
// 000005, else 000000.
func (s *Service) Query(ctx context.Context, ids []string) (protocol.QueryInstanceResponse, error) {
	return s.QueryWith(ctx, ids, s.credentials())
}

// QueryWith is Query with the credentials encrypted by enc (nil: plain),
// whatever Config.Credentials says.
func (s *Service) QueryWith(ctx context.Context, ids []string, enc Encrypter) (protocol.QueryInstanceResponse, error) {
	resp := protocol.QueryInstanceResponse{}
	var pending, failed *store.Instance
	var insts []store.Instance
	if len(ids) == 1 {
		inst, err := s.store.Instance(ctx, ids[0])
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return resp, fmt.Errorf("instance: query: %w", err)
		default:
			insts = append(insts, inst)
		}
	} else if len(ids) > 1 {
		// One read for all: a queryInstance may name 100.
		found, err := s.store.InstancesByID(ctx, ids)
		if err != nil {
			return resp, fmt.Errorf("instance: query: %w", err)
		}
		byID := make(map[string]store.Instance, len(found))
		for _, inst := range found {
			byID[inst.ID] = inst
		}
		for _, id := range ids { // in the order asked, as before
			if inst, ok := byID[id]; ok {
				insts = append(insts, inst)
			}
		}
	}
	var usage map[string][]protocol.UsageInfo
	if s.usageSource != nil && len(insts) > 0 {
		var err error
		if usage, err = s.usageSource.UsageInfo(ctx, insts); err != nil {
			return resp, fmt.Errorf("instance: query: %w", err)
		}
	}
	for _, inst := range insts {
		info, err := s.instanceInfo(inst, enc, usage[inst.ID])
		if err != nil {
			return resp, fmt.Errorf("instance: query %s: %w", inst.ID, err)
		}
		if info.AppInfo != nil && enc != nil {
			resp.EncryptType = enc.Type().String()
		}
		resp.Info = append(resp.Info, info)
		switch inst.Status {
		case store.StatusProvisioning:
			if pending == nil {
				pending = &inst
			}
		case store.StatusFailed:
			if failed == nil {
				failed = &inst
			}
		}
	}
	code, msg := protocol.CodeSuccess, "success"
	switch {
	case len(resp.Info) == 0:
		code, msg = protocol.CodeInstanceNotFound, "instance does not exist"
		resp.EncryptType = ""
	case pending != nil:
		code, msg = stateCode(*pending)
	case failed != nil:
		code, msg = stateCode(*failed)
	}
	resp.Response = protocol.Response{ResultCode: code, ResultMsg: Clip(msg)}
	return resp, nil
}

// instanceInfo builds one queryInstance entry; usage is its usageInfo from
// the metering service, nil for none (the instance's own usage value then).
func (s *Service) instanceInfo(inst store.Instance, enc Encrypter, usage []protocol.UsageInfo) (protocol.InstanceInfo, error) {
	app, err := s.App(inst, enc)
	if err != nil {
		return protocol.InstanceInfo{}, err
	}
	info := protocol.InstanceInfo{InstanceID: inst.ID, AppInfo: app}
	switch inst.ChargingMode {
	case protocol.ChargingOnDemand, protocol.ChargingOnDemandPkg:
		if len(usage) > 0 {
			info.UsageInfo = usage
			break
		}
		u, err := s.usage(inst)
		if err != nil {
			return info, err
		}
		info.UsageInfo = []protocol.UsageInfo{u}
	}
	return info, nil
}

// App is an instance's app info as a reply gives it: nil unless the
// instance was provisioned (active, frozen, released) with app info; the
// stored password unsealed and the credentials encrypted by enc (nil:
// plain). The memo is kept as is: protocol.Marshal writes its non-ASCII
// runes as \u escapes.
func (s *Service) App(inst store.Instance, enc Encrypter) (*protocol.AppInfo, error) {
	switch inst.Status {
	case store.StatusActive, store.StatusFrozen, store.StatusReleased:
	default:
		return nil, nil
	}
	a := inst.AppInfo
	if a.FrontEndURL == "" {
		return nil, nil
	}
	out := &protocol.AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName, Memo: a.Memo}
	if a.PasswordSealed != "" {
		p, err := s.sealer.Open(a.PasswordSealed)
		if err != nil {
			return nil, fmt.Errorf("unseal password: %w", err)
		}
		out.Password = p
	}
	if enc == nil {
		return out, nil
	}
	for _, f := range []struct {
		name  string
		value *string
	}{{"userName", &out.UserName}, {"password", &out.Password}} {
		if *f.value == "" {
			continue
		}
		v, err := enc.Encrypt(inst.ID, f.name, *f.value)
		if err != nil {
			return nil, fmt.Errorf("encrypt credentials: %w", err)
		}
		*f.value = v
	}
	return out, nil
}

// usage is the usageInfo entry of a pay-per-use instance: the cumulative
// value koobridge holds (0 before any report) and when it was measured
// (now when never).
func (s *Service) usage(inst store.Instance) (protocol.UsageInfo, error) {
	v := inst.UsageValue
	if v == "" {
		v = "0"
	}
	d, err := protocol.ParseDecimal(v)
	if err != nil {
		return protocol.UsageInfo{}, fmt.Errorf("usage value %q: %w", v, err)
	}
	t := inst.UsageTime
	if t.IsZero() {
		t = s.now()
	}
	return protocol.UsageInfo{UsageValue: d, StatisticalTime: protocol.FormatTime17(t.In(time.UTC))}, nil
}
