package mockapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Usage push paths (saas-v2.md §7.2).
const (
	UsagePath    = "/api/mkp-openapi-public/global/v1/isv/usage-data" // new push: signature/ts/nonce headers
	OldUsagePath = "/rest/marketplace/v1/isv/usage-data"              // old push: APIG AK/SK only
)

// Usage push limits the imitation enforces.
const (
	// UsageMaxSkew is how far the ts header of a new push may be from the
	// handler's clock, either way.
	UsageMaxSkew = 5 * time.Minute
	// UsageMaxAge is how old a begin_time may be (MKT.9004 beyond).
	UsageMaxAge = 21 * 24 * time.Hour
	// maxPushRecords is the most records one push may carry (MKT.9003).
	maxPushRecords = 1000
	// MaxUsageRecords is how many records UsageRecords remembers; older
	// ones are forgotten there, but not what they billed (Billed) nor
	// their duplicate keys: a record that repeats a forgotten one is
	// still a duplicate.
	MaxUsageRecords = 10000
	// UsageHoldMax is how long a held usage push (SetUsageFailRate) waits
	// for the client to give up before the connection is cut.
	UsageHoldMax = 60 * time.Second
)

// Usage push failures SetUsageFailRate injects, as recorded in
// Request.Fault.
const (
	// FaultUsageError: answered HTTP 500 MKT.0999; nothing kept.
	FaultUsageError = "usage-error"
	// FaultUsageHold: held without an answer until the client gives up
	// (at most UsageHoldMax); nothing kept.
	FaultUsageHold = "usage-hold"
	// FaultUsageKeptHold: the records are checked and kept as usual, then
	// the push is held like FaultUsageHold: the answer is lost but the
	// records count, so a retry must be recognised as a duplicate.
	FaultUsageKeptHold = "usage-kept-hold"
)

// usageFaults are the kinds SetUsageFailRate picks from, equally likely.
var usageFaults = []string{FaultUsageError, FaultUsageHold, FaultUsageKeptHold}

// Which push a UsageRecord came from.
const (
	UsageAPINew = "new"
	UsageAPIOld = "old"
)

// UsageRecord is one usage record the handler accepted, in the order
// received. Duplicates are kept too, flagged, so a UI can show them.
type UsageRecord struct {
	Received           time.Time // by the handler's clock (SetClock)
	API                string    // UsageAPINew or UsageAPIOld
	InstanceID         string
	ProductID          string // old push only
	MeteringSN         string // new push only
	BeginTime          string // yyyyMMdd'T'HHmmss'Z', as sent
	EndTime            string
	RecordTime         string
	UsageValue         string
	RelatedPkgInstance string // relate_pkg_instance
	// Duplicate reports a record ignored because one with the same
	// metering_sn, or the same instance and period, was kept before it
	// (first one wins, saas-v2.md §7.2).
	Duplicate bool
}

// UsageInstance is what the usage push checks know of an instance.
type UsageInstance struct {
	// Start is when the instance started: a record whose begin_time is
	// earlier is refused (MKT.9002). Zero skips the check.
	Start time.Time
	// Released is when the instance was released, zero while it is not:
	// a record whose end_time is later is refused (MKT.9002).
	Released time.Time
}

// SetUsageKey sets the key the new usage push must be signed with: the
// key bound to the seller's basic interfaces. Until it is set every new
// push is answered MKT.0102.
func (h *Handler) SetUsageKey(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.usageKey = key
}

// SetRequireAPIGOnUsage makes APIG AK/SK signing mandatory on the new
// usage push. Whether KooGallery requires it on top of the signature
// header is UNCONFIRMED (saas-v2.md §7.2), so by default the imitation
// verifies an Authorization header when one is sent and accepts a push
// without one.
func (h *Handler) SetRequireAPIGOnUsage(require bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requireAPIGOnUsage = require
}

// SetInstanceCheck sets how usage pushes learn whether an instance
// exists: a push with a record for which known(instance_id) is false is
// answered MKT.9001. With nil (the default) every instance is known.
// known is called without the handler's lock held, so it may call the
// handler. SetInstanceLookup also checks the instance's start and
// release; the last of the two set is used.
func (h *Handler) SetInstanceCheck(known func(instanceID string) bool) {
	if known == nil {
		h.SetInstanceLookup(nil)
		return
	}
	h.SetInstanceLookup(func(id string) (UsageInstance, bool) { return UsageInstance{}, known(id) })
}

// SetInstanceLookup sets how usage pushes learn about an instance: a push
// with a record whose instance_id (or relate_pkg_instance) lookup does
// not know is answered MKT.9001, one with a begin_time before the
// instance's Start or an end_time after its Released MKT.9002, naming the
// record. With nil (the default) every instance is known and has no
// bounds. lookup is called without the handler's lock held, so it may
// call the handler.
func (h *Handler) SetInstanceLookup(lookup func(instanceID string) (UsageInstance, bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.instanceLookup = lookup
}

// SetUsageFailRate makes that fraction (0 to 1) of the usage pushes, new
// and old, fail, each at random one of three ways: FaultUsageError,
// FaultUsageHold or FaultUsageKeptHold. 0 (the default) switches it off.
// A rate outside 0 to 1 is taken as the nearer end. The other faults
// (SetFault) come first: a push they affect is not also failed here.
func (h *Handler) SetUsageFailRate(rate float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !(rate > 0): // NaN too
		rate = 0
	case rate > 1:
		rate = 1
	}
	h.usageFailRate = rate
}

// takeUsageFaultLocked picks the usage failure of one push, or "".
func (h *Handler) takeUsageFaultLocked(path string) string {
	if h.usageFailRate <= 0 || path != UsagePath && path != OldUsagePath {
		return ""
	}
	if rand.Float64() >= h.usageFailRate {
		return ""
	}
	return usageFaults[rand.IntN(len(usageFaults))]
}

// UsageRecords returns the last MaxUsageRecords records accepted,
// duplicates included, oldest first.
func (h *Handler) UsageRecords() []UsageRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usage.list()
}

// usageReply is the usage push answer.
type usageReply struct {
	code, msg string
}

func usageFail(code, format string, args ...any) *usageReply {
	return &usageReply{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeUsage answers a usage push with code, at the HTTP status the code
// table gives it.
func writeUsage(w http.ResponseWriter, code, msg string) {
	status := http.StatusInternalServerError
	if info, ok := protocol.LookupOpenAPICode(code); ok && info.HTTPStatus != 0 {
		status = info.HTTPStatus
	}
	writeJSON(w, status, gatewayError{code, msg})
}

// checkUsageSignature checks the signature, ts and nonce headers of a new
// push against the usage key and the clock.
func (h *Handler) checkUsageSignature(r *http.Request, body []byte, now time.Time) *usageReply {
	h.mu.Lock()
	key := h.usageKey
	h.mu.Unlock()
	if key == "" {
		return usageFail(protocol.MKTInvalidBodySignature, "invalid body signature: the emulator has no usage key set")
	}
	ts, nonce := r.Header.Get("ts"), r.Header.Get("nonce")
	err := sign.VerifyUsageSignature(key, ts, nonce, r.Header.Get("signature"), body)
	switch {
	case errors.Is(err, sign.ErrMissing):
		return usageFail(protocol.MKTInvalidBodySignature, "invalid body signature: signature, ts and nonce headers are required")
	case err != nil:
		return usageFail(protocol.MKTInvalidBodySignature, "invalid body signature: signature does not match")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return usageFail(protocol.MKTInvalidBodySignature, "invalid body signature: ts is not Unix milliseconds")
	}
	if d := now.Sub(time.UnixMilli(ms)); d > UsageMaxSkew || d < -UsageMaxSkew {
		return usageFail(protocol.MKTInvalidBodySignature, "invalid body signature: stale ts")
	}
	return nil
}

// decodeStrict decodes one JSON value from body into v, with nothing after
// it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// decodeUsageBody checks a push body (checkUsageBody: no key twice, no
// unknown field, keys in natural order) and decodes it into v.
func decodeUsageBody(body []byte, shape *bodyShape, v any) *usageReply {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // tolerated, as by protocol's decoders
	if err := checkUsageBody(body, shape); err != nil {
		var de *protocol.DecodeError
		if errors.As(err, &de) {
			return usageFail(protocol.MKTInvalidParam, "invalid parameter: malformed JSON body: %v", de.Err)
		}
		return usageFail(protocol.MKTInvalidParam, "%v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return usageFail(protocol.MKTInvalidParam, "invalid parameter: malformed JSON body: %v", err)
	}
	return nil
}

// validator is what both push bodies have in common.
type validator interface{ Validate() error }

// usageRecords decodes and checks a push body of either API, returning
// its records unflagged and their values in ten-thousandths.
func (h *Handler) usageRecords(api string, body []byte, now time.Time) ([]UsageRecord, []int64, *usageReply) {
	var (
		req  validator
		recs []UsageRecord
		n    int
	)
	if api == UsageAPINew {
		var b protocol.UsagePushRequest
		if fail := decodeUsageBody(body, newPushShape, &b); fail != nil {
			return nil, nil, fail
		}
		req, n = b, len(b.UsageRecords)
		for _, r := range b.UsageRecords {
			recs = append(recs, UsageRecord{API: api, InstanceID: r.InstanceID, MeteringSN: r.MeteringSN,
				BeginTime: r.BeginTime, EndTime: r.EndTime, RecordTime: r.RecordTime, UsageValue: r.UsageValue,
				RelatedPkgInstance: r.RelatePkgInstance})
		}
	} else {
		var b protocol.OldUsagePushRequest
		if fail := decodeUsageBody(body, oldPushShape, &b); fail != nil {
			return nil, nil, fail
		}
		req, n = b, len(b.UsageRecords)
		for _, r := range b.UsageRecords {
			recs = append(recs, UsageRecord{API: api, InstanceID: r.InstanceID, ProductID: r.ProductID,
				BeginTime: r.BeginTime, EndTime: r.EndTime, RecordTime: r.RecordTime, UsageValue: r.UsageValue,
				RelatedPkgInstance: r.RelatePkgInstance})
		}
	}
	// Checked before Validate, which would call it an invalid parameter.
	if n > maxPushRecords {
		return nil, nil, usageFail(protocol.MKTTooManyRecords, "more than 1000 records: %d", n)
	}
	if err := req.Validate(); err != nil {
		return nil, nil, usageFail(protocol.MKTInvalidParam, "%v", err)
	}
	values := make([]int64, len(recs))
	for i, r := range recs {
		v, ok := parseUnits(r.UsageValue)
		if !ok {
			return nil, nil, usageFail(protocol.MKTInvalidParam, "invalid parameter: usage_records[%d].usage_value: more than 99999999.9999 (Double(12,4))", i)
		}
		values[i] = v
	}
	if fail := h.checkInstances(recs, now); fail != nil {
		return nil, nil, fail
	}
	return recs, values, nil
}

// checkInstances checks the records against what is known of their
// instances: that they exist (MKT.9001), the 21-day rule (MKT.9004) and
// the instance's start and release (MKT.9002).
func (h *Handler) checkInstances(recs []UsageRecord, now time.Time) *usageReply {
	h.mu.Lock()
	lookup := h.instanceLookup
	h.mu.Unlock()
	type found struct {
		in UsageInstance
		ok bool
	}
	seen := map[string]found{} // one lookup per instance and push
	get := func(id string) found {
		f, ok := seen[id]
		if !ok {
			f.ok = true
			if lookup != nil {
				f.in, f.ok = lookup(id)
			}
			seen[id] = f
		}
		return f
	}
	oldest := now.Add(-UsageMaxAge)
	for i, r := range recs {
		in := get(r.InstanceID)
		if !in.ok {
			return usageFail(protocol.MKTInstanceNotFound, "instance not found: usage_records[%d].instance_id %s", i, r.InstanceID)
		}
		if r.RelatedPkgInstance != "" && !get(r.RelatedPkgInstance).ok {
			return usageFail(protocol.MKTInstanceNotFound, "instance not found: usage_records[%d].relate_pkg_instance %s", i, r.RelatedPkgInstance)
		}
		// Validate has checked the format.
		begin, _ := protocol.ParseUsageTime(r.BeginTime)
		end, _ := protocol.ParseUsageTime(r.EndTime)
		if begin.Before(oldest) {
			return usageFail(protocol.MKTBeginTimeTooOld, "begin_time older than 21 days: usage_records[%d].begin_time %s", i, r.BeginTime)
		}
		if s := in.in.Start; !s.IsZero() && begin.Before(s) {
			return usageFail(protocol.MKTInvalidUsageEntities, "invalid usage entities: usage_records[%d].begin_time %s is before instance %s started (%s)",
				i, r.BeginTime, r.InstanceID, protocol.FormatUsageTime(s))
		}
		if rel := in.in.Released; !rel.IsZero() && end.After(rel) {
			return usageFail(protocol.MKTInvalidUsageEntities, "invalid usage entities: usage_records[%d].end_time %s is after instance %s was released (%s)",
				i, r.EndTime, r.InstanceID, protocol.FormatUsageTime(rel))
		}
	}
	return nil
}

// keepUsage bills the checked records, flagging the duplicates of records
// billed before (first one wins), and logs them all.
func (h *Handler) keepUsage(recs []UsageRecord, values []int64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, r := range recs {
		r.Received = now
		r.Duplicate = h.billed.add(r, values[i])
		h.usage.add(r)
	}
}

// usagePush answers a usage push whose gateway checks have passed; fault
// is the failure SetUsageFailRate picked for it, if any.
func (h *Handler) usagePush(w http.ResponseWriter, r *http.Request, api string, body []byte, now time.Time, fault string) {
	switch fault {
	case FaultUsageError:
		writeUsage(w, protocol.MKTInternalError, "internal error")
		return
	case FaultUsageHold:
		hold(w, r)
		return
	}
	if api == UsageAPINew {
		if fail := h.checkUsageSignature(r, body, now); fail != nil {
			h.answerUsage(w, r, fault, fail.code, fail.msg)
			return
		}
	}
	recs, values, fail := h.usageRecords(api, body, now)
	if fail != nil {
		h.answerUsage(w, r, fault, fail.code, fail.msg)
		return
	}
	h.keepUsage(recs, values, now)
	h.answerUsage(w, r, fault, protocol.MKTSuccess, "success")
}

// answerUsage writes the answer, or with FaultUsageKeptHold holds the push
// instead: what was kept stays kept, the answer is lost.
func (h *Handler) answerUsage(w http.ResponseWriter, r *http.Request, fault, code, msg string) {
	if fault == FaultUsageKeptHold {
		hold(w, r)
		return
	}
	writeUsage(w, code, msg)
}

// hold answers nothing until the client gives up, then returns; after
// UsageHoldMax it cuts the connection.
func hold(w http.ResponseWriter, r *http.Request) {
	t := time.NewTimer(UsageHoldMax)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
		dropConnection(w)
	}
}
