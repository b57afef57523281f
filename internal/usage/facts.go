package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// factsTTL is how long the facts of an instance that is not released are
// trusted: a release is seen by ingestion at most this late. A released
// instance's facts never change.
const factsTTL = 2 * time.Second

// maxCached bounds the cache; beyond it, it is emptied.
const maxCached = 100000

// facts is what metering needs to know of an instance.
type facts struct {
	inst  store.Instance
	start time.Time // when the resource started: no usage before
	api   string    // store.UsageAPINew or store.UsageAPIOld
	// pkg is the relate_pkg_instance of the instance's records: the
	// ON_DEMAND_PKG instance of its order ("" for none), or itself when
	// it is the package.
	pkg string
}

type cached struct {
	f  facts
	at time.Time
}

// meta returns the facts of instance id; store.ErrNotFound when it does not
// exist.
func (s *Service) meta(ctx context.Context, id string) (facts, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok && (c.f.inst.Status == store.StatusReleased || now.Sub(c.at) < factsTTL) {
		return c.f, nil
	}
	inst, err := s.store.Instance(ctx, id)
	if err != nil {
		return facts{}, err
	}
	f := facts{inst: inst, start: startOf(inst), api: store.UsageAPINew}
	if instance.Carried(inst) {
		f.api = store.UsageAPIOld
	}
	switch inst.ChargingMode {
	case protocol.ChargingOnDemandPkg:
		f.pkg = inst.ID
	case protocol.ChargingOnDemand:
		if ok && c.f.pkg != "" && c.f.inst.OrderID == inst.OrderID {
			f.pkg = c.f.pkg // an order's package does not change once it is there
		} else if f.pkg, err = s.packageOf(ctx, inst); err != nil {
			return facts{}, err
		}
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	s.cache[id] = cached{f: f, at: now}
	s.mu.Unlock()
	return f, nil
}

// packageOf returns the ID of the ON_DEMAND_PKG instance bought in the
// same order as inst, "" when there is none.
func (s *Service) packageOf(ctx context.Context, inst store.Instance) (string, error) {
	pkgs, err := s.sameOrder(ctx, inst, protocol.ChargingOnDemandPkg)
	if err != nil || len(pkgs) == 0 {
		return "", err
	}
	return pkgs[0].ID, nil
}

// itemsOf returns the ON_DEMAND instances bought in the same order as the
// package pkg.
func (s *Service) itemsOf(ctx context.Context, pkg store.Instance) ([]store.Instance, error) {
	return s.sameOrder(ctx, pkg, protocol.ChargingOnDemand)
}

// sameOrder lists the other instances of inst's order with charging mode
// mode.
func (s *Service) sameOrder(ctx context.Context, inst store.Instance, mode string) ([]store.Instance, error) {
	if inst.OrderID == "" {
		return nil, nil
	}
	list, err := s.store.Instances(ctx, store.InstanceFilter{OrderID: inst.OrderID, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("usage: instances of order %s: %w", inst.OrderID, err)
	}
	var out []store.Instance
	for _, o := range list {
		if o.ID != inst.ID && o.ChargingMode == mode {
			out = append(out, o)
		}
	}
	return out, nil
}

// startOf is when an instance's resource started: the order's createTime
// when Query Order told it and it is earlier (an order placed before the
// purchase call reached koobridge), else when the instance was created.
func startOf(inst store.Instance) time.Time {
	start := inst.CreatedAt
	if inst.OrderJSON == "" {
		return start
	}
	var o struct {
		CreateTime protocol.FlexString `json:"createTime"`
	}
	if json.Unmarshal([]byte(inst.OrderJSON), &o) != nil || o.CreateTime == "" {
		return start
	}
	t, err := protocol.ParseTime14(string(o.CreateTime))
	if err != nil {
		if t, err = protocol.ParseTime17(string(o.CreateTime)); err != nil {
			return start
		}
	}
	if t.Before(start) {
		return t
	}
	return start
}

// errNotMetered reports an instance whose usage is not taken.
var errNotMetered = errors.New("usage: not a metered instance")

// metered checks that f's instance takes usage: a pay-per-use instance
// (ON_DEMAND, or an ON_DEMAND_PKG package) whose order is known and whose
// purchase did not fail.
func (f facts) metered() error {
	in := f.inst
	switch {
	case in.ChargingMode == "" && in.OrderState == store.OrderPending:
		return fmt.Errorf("%w: the order of instance %s is not known yet (Query Order pending): try again later", errNotMetered, in.ID)
	case in.ChargingMode != protocol.ChargingOnDemand && in.ChargingMode != protocol.ChargingOnDemandPkg:
		return fmt.Errorf("%w: instance %s is not pay-per-use (chargingMode %s)", errNotMetered, in.ID, in.ChargingMode)
	case in.Status == store.StatusFailed:
		return fmt.Errorf("%w: the purchase of instance %s failed", errNotMetered, in.ID)
	}
	return nil
}
