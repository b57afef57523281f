package instance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// Query reports the instances KooGallery asks about, as the queryInstance
// reply (the same in V1 and V2). Unknown ids are left out; none known is
// 000003. App info is given for instances that were provisioned (active,
// frozen, released), with the credentials plain or encrypted as
// configured. The code tells the truth about the slowest instance: any
// still provisioning → 000004, else any failed → its refusal code or
// 000005, else 000000.
func (s *Service) Query(ctx context.Context, ids []string) (protocol.QueryInstanceResponse, error) {
	resp := protocol.QueryInstanceResponse{}
	var pending, failed *store.Instance
	for _, id := range ids {
		inst, err := s.store.Instance(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return resp, fmt.Errorf("instance: query: %w", err)
		}
		info, err := s.instanceInfo(inst)
		if err != nil {
			return resp, fmt.Errorf("instance: query %s: %w", id, err)
		}
		if info.AppInfo != nil && s.cipher != nil {
			resp.EncryptType = s.cipher.Type().String()
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

// instanceInfo builds one queryInstance entry.
func (s *Service) instanceInfo(inst store.Instance) (protocol.InstanceInfo, error) {
	info := protocol.InstanceInfo{InstanceID: inst.ID}
	switch inst.Status {
	case store.StatusActive, store.StatusFrozen, store.StatusReleased:
		if inst.AppInfo.FrontEndURL != "" {
			app, err := s.wireApp(inst.AppInfo)
			if err != nil {
				return info, err
			}
			info.AppInfo = app
		}
	}
	switch inst.ChargingMode {
	case protocol.ChargingOnDemand, protocol.ChargingOnDemandPkg:
		u, err := s.usage(inst)
		if err != nil {
			return info, err
		}
		info.UsageInfo = []protocol.UsageInfo{u}
	}
	return info, nil
}

// wireApp unseals the stored password and writes the credentials plain or
// encrypted with the credential cipher, as configured. The memo is kept as
// is: protocol.Marshal writes its non-ASCII runes as \u escapes.
func (s *Service) wireApp(a store.AppInfo) (*protocol.AppInfo, error) {
	out := &protocol.AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName, Memo: a.Memo}
	if a.PasswordSealed != "" {
		p, err := s.sealer.Open(a.PasswordSealed)
		if err != nil {
			return nil, fmt.Errorf("unseal password: %w", err)
		}
		out.Password = p
	}
	if s.cipher == nil {
		return out, nil
	}
	for _, f := range []*string{&out.UserName, &out.Password} {
		if *f == "" {
			continue
		}
		enc, err := s.cipher.Encrypt(*f)
		if err != nil {
			return nil, fmt.Errorf("encrypt credentials: %w", err)
		}
		*f = enc
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
