package mockapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// ones are forgotten, and so are their duplicate keys: a record that
	// repeats only a forgotten one is not flagged.
	MaxUsageRecords = 10000
)

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

// usagePeriod identifies a metering period of an instance for the
// duplicate rule.
type usagePeriod struct{ instance, begin, end string }

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
// handler.
func (h *Handler) SetInstanceCheck(known func(instanceID string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.instanceKnown = known
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

// validator is what both push bodies have in common.
type validator interface{ Validate() error }

// usageRecords decodes and checks a push body of either API, returning
// its records unflagged.
func (h *Handler) usageRecords(api string, body []byte, now time.Time) ([]UsageRecord, *usageReply) {
	var (
		req  validator
		recs []UsageRecord
		n    int
	)
	if api == UsageAPINew {
		var b protocol.UsagePushRequest
		if err := decodeStrict(body, &b); err != nil {
			return nil, usageFail(protocol.MKTInvalidParam, "invalid parameter: malformed JSON body: %v", err)
		}
		req, n = b, len(b.UsageRecords)
		for _, r := range b.UsageRecords {
			recs = append(recs, UsageRecord{API: api, InstanceID: r.InstanceID, MeteringSN: r.MeteringSN,
				BeginTime: r.BeginTime, EndTime: r.EndTime, RecordTime: r.RecordTime, UsageValue: r.UsageValue,
				RelatedPkgInstance: r.RelatePkgInstance})
		}
	} else {
		var b protocol.OldUsagePushRequest
		if err := decodeStrict(body, &b); err != nil {
			return nil, usageFail(protocol.MKTInvalidParam, "invalid parameter: malformed JSON body: %v", err)
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
		return nil, usageFail(protocol.MKTTooManyRecords, "more than 1000 records: %d", n)
	}
	if err := req.Validate(); err != nil {
		return nil, usageFail(protocol.MKTInvalidParam, "%v", err)
	}
	h.mu.Lock()
	known := h.instanceKnown
	h.mu.Unlock()
	oldest := now.Add(-UsageMaxAge)
	for i, r := range recs {
		if known != nil && !known(r.InstanceID) {
			return nil, usageFail(protocol.MKTInstanceNotFound, "instance not found: usage_records[%d].instance_id %s", i, r.InstanceID)
		}
		// Validate has checked the format.
		if begin, _ := protocol.ParseUsageTime(r.BeginTime); begin.Before(oldest) {
			return nil, usageFail(protocol.MKTBeginTimeTooOld, "begin_time older than 21 days: usage_records[%d].begin_time %s", i, r.BeginTime)
		}
	}
	return recs, nil
}

// keepUsage stores accepted records, flagging duplicates of the records
// kept, and forgets the oldest beyond MaxUsageRecords.
func (h *Handler) keepUsage(recs []UsageRecord, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range recs {
		p := usagePeriod{r.InstanceID, r.BeginTime, r.EndTime}
		r.Received = now
		r.Duplicate = h.seenPeriod[p] || r.MeteringSN != "" && h.seenSN[r.MeteringSN]
		if !r.Duplicate {
			h.seenPeriod[p] = true
			if r.MeteringSN != "" {
				h.seenSN[r.MeteringSN] = true
			}
		}
		// A record that was no duplicate is the only one holding its
		// keys: any later one with either key was flagged.
		if old, dropped := h.usage.add(r); dropped && !old.Duplicate {
			delete(h.seenPeriod, usagePeriod{old.InstanceID, old.BeginTime, old.EndTime})
			if old.MeteringSN != "" {
				delete(h.seenSN, old.MeteringSN)
			}
		}
	}
}

// usagePush answers a usage push whose gateway checks have passed.
func (h *Handler) usagePush(w http.ResponseWriter, r *http.Request, api string, body []byte, now time.Time) {
	if api == UsageAPINew {
		if fail := h.checkUsageSignature(r, body, now); fail != nil {
			writeUsage(w, fail.code, fail.msg)
			return
		}
	}
	recs, fail := h.usageRecords(api, body, now)
	if fail != nil {
		writeUsage(w, fail.code, fail.msg)
		return
	}
	h.keepUsage(recs, now)
	writeUsage(w, protocol.MKTSuccess, "success")
}
