package testseller

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// orderLine is the newInstance idempotency key (saas-v2.md §6.1).
type orderLine struct{ orderID, orderLineID string }

// instance is one instance as the seller keeps it.
type instance struct {
	id       string
	line     orderLine
	password string
	onDemand bool      // reports usageInfo
	expiry   time.Time // set absolutely by refreshInstance; zero until then
	frozen   bool
	released bool
	queries  int                    // queryInstance calls that named it (Async)
	upgrades map[orderLine]struct{} // upgrade orders applied
	v1App    *protocol.AppInfo      // app info with encrypted credentials, as V1 answers carry it
}

// successMsg is the resultMsg of every 000000 reply.
const successMsg = "success"

// memo is the appInfo memo; its Chinese text checks the \u escaping.
const memo = "欢迎使用 testseller (welcome)"

func (s *Seller) newInstance(r protocol.NewInstanceRequest) protocol.NewInstanceResponse {
	code, msg := protocol.CodeSuccess, successMsg
	if s.faults.Async {
		code, msg = protocol.CodeProcessing, "provisioning"
	}
	line := orderLine{r.OrderID, r.OrderLineID}
	s.mu.Lock()
	if id, ok := s.lines[line]; ok && !s.faults.NewInstanceEveryCall {
		if s.pending[line] {
			code, msg = protocol.CodeProcessing, "still processing the first call"
		}
		s.mu.Unlock()
		return protocol.NewInstanceResponse{Response: protocol.NewResponse(code, msg), InstanceID: id}
	}
	in := &instance{
		id:       "ts-" + rand.Text(),
		line:     line,
		password: "Pw-" + rand.Text()[:16],
		onDemand: strings.Contains(r.OrderID, "ONDEMAND"), // MOCKONDEMAND, MOCKONDEMANDPKG, ...
	}
	s.instances[in.id] = in
	s.lines[line] = in.id
	s.created++
	s.mu.Unlock()
	s.process(line)
	return protocol.NewInstanceResponse{Response: protocol.NewResponse(code, msg), InstanceID: in.id}
}

// process takes ConcurrentProcessing's time over the first call for an
// order line, during which calls for the same line answer 000004.
func (s *Seller) process(line orderLine) {
	if s.faults.ConcurrentProcessing <= 0 {
		return
	}
	s.mu.Lock()
	s.pending[line] = true
	s.mu.Unlock()
	time.Sleep(s.faults.ConcurrentProcessing)
	s.mu.Lock()
	delete(s.pending, line)
	s.mu.Unlock()
}

// orderNotify records a paid order line (license-openapi.md §F),
// idempotently: a repeat answers 000000 again. Every field is mandatory,
// testFlag included ("0" or "1", license-openapi.md Addenda). The order's
// details would come from Query Order, which this seller never calls.
func (s *Seller) orderNotify(r protocol.OrderNotifyRequest) protocol.Response {
	if s.faults.OrderNotifyOptionalTestFlag && r.TestFlag == "" {
		r.TestFlag = "0"
	}
	if !s.faults.SkipValidation {
		if err := r.Validate(); err != nil {
			return protocol.ErrorResponse(err)
		}
		if r.TestFlag != "0" && r.TestFlag != "1" {
			return protocol.NewResponse(protocol.CodeInvalidParam, `testFlag is mandatory: "0" or "1"`)
		}
	}
	line := orderLine{r.OrderID, r.OrderLineID}
	s.mu.Lock()
	if _, ok := s.notified[line]; ok {
		defer s.mu.Unlock()
		switch {
		case s.pending[line]:
			return protocol.NewResponse(protocol.CodeProcessing, "still processing the first notification")
		case s.faults.OrderNotifyRepeatDiffers:
			return protocol.NewResponse(protocol.CodeInternal, "order line already notified")
		}
		return protocol.NewResponse(protocol.CodeSuccess, successMsg)
	}
	s.notified[line] = struct{}{}
	s.mu.Unlock()
	s.process(line)
	return protocol.NewResponse(protocol.CodeSuccess, successMsg)
}

// queryInstance reports the known instances among the IDs and leaves
// unknown ones out; none known is 000003. Released instances are still
// reported. Under Async an instance still provisioning has no appInfo and
// makes the whole answer 000004.
func (s *Seller) queryInstance(r protocol.QueryInstanceRequest) protocol.QueryInstanceResponse {
	return s.query(r.InstanceIDs(), s.faults.Async, appInfo)
}

// query is queryInstance for V1 and V2: app carries an instance's app
// info as the version sends it; async is the Async fault. It is called
// without s.mu held and calls app with it held.
func (s *Seller) query(ids []string, async bool, app func(in *instance) *protocol.AppInfo) protocol.QueryInstanceResponse {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var resp protocol.QueryInstanceResponse
	pending := false
	for _, id := range ids {
		in, ok := s.instances[id]
		if !ok {
			continue
		}
		in.queries++
		info := protocol.InstanceInfo{InstanceID: in.id}
		if async && in.queries <= 2 {
			pending = true
		} else {
			info.AppInfo = app(in)
		}
		if in.onDemand {
			info.UsageInfo = []protocol.UsageInfo{{UsageValue: s.usage, StatisticalTime: protocol.FormatTime17(now)}}
		}
		resp.Info = append(resp.Info, info)
	}
	switch {
	case len(resp.Info) == 0:
		resp.Response = protocol.NewResponse(protocol.CodeInstanceNotFound, "")
	case pending:
		resp.Response = protocol.NewResponse(protocol.CodeProcessing, "provisioning")
	default:
		resp.Response = protocol.NewResponse(protocol.CodeSuccess, successMsg)
	}
	return resp
}

// appInfo is an instance's app info with the credentials in clear, as V2
// answers carry them.
func appInfo(in *instance) *protocol.AppInfo {
	return &protocol.AppInfo{
		FrontEndURL: "https://testseller.example/app/" + in.id,
		AdminURL:    "https://testseller.example/admin/" + in.id,
		UserName:    "admin",
		Password:    in.password,
		Memo:        memo,
	}
}

// lookup finds a live instance for a change: unknown or released is
// 000003, except that acceptUnknown (a fault: UnknownInstanceOK for the
// activities subject to it) answers an unknown ID 000000. ok is false
// when reply is the answer. Guarded by s.mu.
func (s *Seller) lookup(id string, acceptUnknown bool) (in *instance, reply protocol.Response, ok bool) {
	in, found := s.instances[id]
	switch {
	case !found && acceptUnknown:
		return nil, protocol.NewResponse(protocol.CodeSuccess, successMsg), false
	case !found:
		return nil, protocol.NewResponse(protocol.CodeInstanceNotFound, ""), false
	case in.released:
		return nil, protocol.NewResponse(protocol.CodeInstanceNotFound, "instance is released"), false
	}
	return in, protocol.Response{}, true
}

// refreshInstance sets the expiry to expireTime, never adding to it, so a
// repeat is a no-op and UNSUBSCRIBE_RENEWAL_PERIOD moves it back.
func (s *Seller) refreshInstance(r protocol.RefreshInstanceRequest) protocol.Response {
	return s.change(r.InstanceID, s.faults.UnknownInstanceOK, func(in *instance) {
		if t, err := r.Expiry(); err == nil { // checked by Validate unless SkipValidation
			in.expiry = t
		}
	})
}

// updateInstanceStatus freezes or unfreezes; the target state already
// holding is success.
func (s *Seller) updateInstanceStatus(r protocol.UpdateInstanceStatusRequest) protocol.Response {
	return s.change(r.InstanceID, s.faults.UnknownInstanceOK, func(in *instance) {
		in.frozen = r.Status == protocol.StatusFreeze
	})
}

// releaseInstance is idempotent: a released instance answers 000000 again;
// only IDs that never existed get 000003.
func (s *Seller) releaseInstance(r protocol.ReleaseInstanceRequest) protocol.Response {
	return s.release(r.InstanceID, s.faults.UnknownInstanceOK, s.faults.ReleaseTwiceFails)
}

// release releases an instance (V1 and V2). acceptUnknown and failTwice
// are faults: an unknown ID answered 000000, a released one 000003.
func (s *Seller) release(id string, acceptUnknown, failTwice bool) protocol.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, found := s.instances[id]
	switch {
	case !found && acceptUnknown:
		return protocol.NewResponse(protocol.CodeSuccess, successMsg)
	case !found:
		return protocol.NewResponse(protocol.CodeInstanceNotFound, "")
	case in.released && failTwice:
		return protocol.NewResponse(protocol.CodeInstanceNotFound, "instance is released")
	}
	in.released = true
	return protocol.NewResponse(protocol.CodeSuccess, successMsg)
}

// upgradeInstance records the upgrade order; a repeat is a no-op. The
// target spec would come from Query Order, which this seller never calls.
func (s *Seller) upgradeInstance(r protocol.UpgradeInstanceRequest) protocol.Response {
	return s.change(r.InstanceID, false, func(in *instance) { in.upgrade(orderLine{r.OrderID, r.OrderLineID}) })
}

// upgrade records an upgrade order as applied.
func (in *instance) upgrade(order orderLine) {
	if in.upgrades == nil {
		in.upgrades = make(map[orderLine]struct{})
	}
	in.upgrades[order] = struct{}{}
}

// changeInstanceCheck allows every change of a live instance.
func (s *Seller) changeInstanceCheck(r protocol.ChangeInstanceCheckRequest) protocol.Response {
	return s.change(r.InstanceID, false, func(*instance) {})
}

// change applies do to a live instance: unknown or released is 000003,
// except that acceptUnknown (a fault) answers an unknown ID 000000.
func (s *Seller) change(id string, acceptUnknown bool, do func(in *instance)) protocol.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, reply, ok := s.lookup(id, acceptUnknown)
	if !ok {
		return reply
	}
	do(in)
	return protocol.NewResponse(protocol.CodeSuccess, successMsg)
}
