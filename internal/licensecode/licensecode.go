// Package licensecode is the family of the license-code 2.0 production
// interface (license-openapi.md §A.2–§A.6): KooGallery POSTs
// refreshLicenseCode, updateLicenseCodeStatus and releaseLicenseCode to
// the seller's license path, signed in the URL (signature, timestamp,
// nonce) with the key bound to the License interface type, and retries
// every 2 minutes, 60 times, until it gets 000000.
//
// The family decodes the three activities strictly (protocol.DecodeLicense)
// and hands each to the license-code domain (package license), which
// keeps the codes, their history and the vendor's events; its replies are
// {"resultCode", "resultMsg"}, a repeat's byte for byte the first's.
package licensecode

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/protocol"
)

// Name labels the family in the ledger, the log and metrics.
const Name = "license"

// Family returns the license-code family at path (koobridge serve
// --license-path, default /license). Its Jobs are the license service's
// (vendor events, usage statistics): register them with the job runner
// through the family, once.
func Family(svc *license.Service, path string) *inbound.Family {
	return &inbound.Family{
		Name:   Name,
		Method: http.MethodPost,
		Path:   path,
		Keys:   inbound.KeyLicense,
		Scheme: inbound.URLSignature,
		Activities: []string{
			protocol.ActivityRefreshLicenseCode,
			protocol.ActivityUpdateLicenseCodeStatus,
			protocol.ActivityReleaseLicenseCode,
		},
		Decode: decode,
		Serve:  func(ctx context.Context, req inbound.Request) (inbound.Outcome, error) { return serve(ctx, svc, req) },
		Jobs:   svc.Jobs(),
	}
}

// decode decodes a license-code body strictly.
func decode(c *inbound.Call) (inbound.Request, error) {
	req, err := protocol.DecodeLicense(c.Body)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// serve runs one call on the service and renders its outcome.
func serve(ctx context.Context, svc *license.Service, req inbound.Request) (inbound.Outcome, error) {
	var (
		a   license.Answer
		err error
		out inbound.Outcome
	)
	switch r := req.(type) {
	case protocol.RefreshLicenseCodeRequest:
		out = inbound.Outcome{OrderID: r.OrderID, OrderLineID: r.OrderLineID, Test: r.IsTest()}
		a, err = svc.Refresh(ctx, r)
	case protocol.UpdateLicenseCodeStatusRequest:
		out = inbound.Outcome{Test: r.IsTest()}
		a, err = svc.SetStatus(ctx, r)
	case protocol.ReleaseLicenseCodeRequest:
		out = inbound.Outcome{OrderID: r.OrderID, OrderLineID: r.OrderLineID, Test: r.IsTest()}
		a, err = svc.Release(ctx, r)
	default:
		return inbound.Outcome{}, fmt.Errorf("licensecode: unexpected request %T", req)
	}
	if err != nil {
		return inbound.Outcome{}, err
	}
	out.Response, out.Code, out.Msg = json.RawMessage(a.Body), a.Code, a.Msg
	out.IdemKey, out.Repeat = a.Key, a.Repeat
	return out, nil
}
