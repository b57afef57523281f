// Package ordernotify is the family of KooGallery's order notification
// (orderNotify, license-openapi.md §F): after a buyer pays for any product
// type, KooGallery POSTs the order line to the seller, signed in the URL
// with the key bound to the general interface type (通用接口), and retries
// for three hours until it gets 000000.
//
// A notification is taken durably and answered at once: one transaction
// stores the answer (the idempotency record, keyed on orderId and
// orderLineId, with a fingerprint of testFlag), the notification row and
// the job that does the rest. The job asks Query Order for the order's
// details (retried with backoff while the Open API is unavailable, as a
// purchase's is) and delivers an order.notified event to the vendor's
// product with the order's product, SKU, period and buyer: the buyer's
// mobile number and e-mail decrypted for the vendor, masked in what
// koobridge stores and logs. A repeat gets the first answer byte for byte;
// the same order line notified as a debug order after a real one (or the
// reverse) is refused (000002).
package ordernotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// Name labels the family in the ledger, the log and metrics.
const Name = "order"

// KindNotify is the job kind that fetches a notified order and tells the
// vendor.
const KindNotify = "order-notify"

// Store is what the family keeps.
type Store interface {
	store.OrderNotifications
	store.OperationReader
	store.Txer
}

// Config configures a Service.
type Config struct {
	Store  Store
	Orders instance.OrderQuerier
	// Provisioner receives order.notified for real orders,
	// TestProvisioner for debug ones (testFlag "1", MOCK* orders); nil
	// means Provisioner.
	Provisioner     provision.Provisioner
	TestProvisioner provision.Provisioner
	// BuyerCipher decrypts the buyer's mobile number and e-mail when Query
	// Order sends them encrypted; nil keeps them as they come.
	BuyerCipher *sign.CredentialCipher
	// Jobs runs the notification jobs (Kick); register Jobs() with it
	// before it starts, through the Family.
	Jobs   *jobs.Runner
	Logger *slog.Logger
	Now    func() time.Time
}

// Service answers order notifications and delivers them to the vendor.
type Service struct {
	cfg Config
}

// New returns a Service; Store, Orders, Provisioner and Jobs are required.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil, cfg.Orders == nil, cfg.Provisioner == nil, cfg.Jobs == nil:
		return nil, errors.New("ordernotify: Store, Orders, Provisioner and Jobs are required")
	}
	if cfg.TestProvisioner == nil {
		cfg.TestProvisioner = cfg.Provisioner
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}, nil
}

// Family returns the order-notification family at path (the production
// path by default, beside the V2 activities: there the activity picks this
// family and so the general key).
func (s *Service) Family(path string) *inbound.Family {
	return &inbound.Family{
		Name:       Name,
		Method:     http.MethodPost,
		Path:       path,
		Keys:       inbound.KeyGeneral,
		Scheme:     inbound.URLSignature,
		Activities: []string{protocol.ActivityOrderNotify},
		Decode:     decode,
		Serve:      s.serve,
		Jobs:       map[string]jobs.HandlerFunc{KindNotify: s.handleNotify},
	}
}

// decode decodes an orderNotify body strictly. Other activities decode too
// (the pipeline then answers that this family does not serve them).
func decode(c *inbound.Call) (inbound.Request, error) {
	return protocol.DecodeV2(c.Body)
}

// key is the idempotency key of a notification.
func key(orderID, lineID string) string {
	return instance.Key(protocol.ActivityOrderNotify, orderID, lineID)
}

// payload is the JSON payload of a notification job.
type payload struct {
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
}

// serve takes one notification durably and answers it.
func (s *Service) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r, ok := req.(protocol.OrderNotifyRequest)
	if !ok {
		return inbound.Outcome{}, fmt.Errorf("ordernotify: unexpected request %T", req)
	}
	test := protocol.IsTestOrder(r.IsTest(), r.OrderID)
	k := key(r.OrderID, r.OrderLineID)
	// Debug or real is what matters: testFlag "0" and "1" on a MOCK* order
	// are the same request.
	fp := instance.Fingerprint(strconv.FormatBool(test))
	out := inbound.Outcome{IdemKey: k, OrderID: r.OrderID, OrderLineID: r.OrderLineID, Test: test}

	body, err := protocol.Marshal(protocol.NewResponse(protocol.CodeSuccess, "success"))
	if err != nil {
		return out, err
	}
	p, err := json.Marshal(payload{OrderID: r.OrderID, OrderLineID: r.OrderLineID})
	if err != nil {
		return out, fmt.Errorf("ordernotify: encode job: %w", err)
	}
	now := s.cfg.Now().UTC()
	var earlier *store.Operation
	err = s.cfg.Store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		earlier = nil
		inserted, err := tx.InsertOperation(ctx, store.Operation{
			Key: k, Activity: r.Activity(), Fingerprint: fp, State: store.OperationDone,
			ResultCode: string(protocol.CodeSuccess), Response: body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !inserted {
			op, err := tx.Operation(ctx, k)
			if err != nil {
				return err
			}
			earlier = &op
			return nil
		}
		if _, err := tx.InsertOrderNotification(ctx, store.OrderNotification{
			OrderID: r.OrderID, OrderLineID: r.OrderLineID, Test: test,
			Status: store.NotificationPending, CreatedAt: now, UpdatedAt: now,
		}); err != nil {
			return err
		}
		_, _, err = tx.EnqueueJob(ctx, store.Job{
			Kind: KindNotify, UniqueKey: instance.Key(KindNotify, r.OrderID, r.OrderLineID),
			Payload: p, MaxAttempts: jobs.DefaultMaxAttempts, RunAt: now,
		})
		return err
	})
	if err != nil {
		return out, fmt.Errorf("ordernotify: take notification: %w", err)
	}
	if earlier != nil {
		out.Repeat = true
		if earlier.Fingerprint != "" && earlier.Fingerprint != fp {
			msg := "invalid parameter testFlag: this order line was already notified with the other testFlag (debug or real); not a repeat"
			out.Response, out.Code, out.Msg = protocol.NewResponse(protocol.CodeInvalidParam, msg), protocol.CodeInvalidParam, msg
			out.IdemKey, out.Repeat = "", false
			return out, nil
		}
		out.Response, out.Code, out.Msg = json.RawMessage(earlier.Response), protocol.ResultCode(earlier.ResultCode), "success"
		return out, nil
	}
	s.cfg.Jobs.Kick()
	out.Response, out.Code, out.Msg = json.RawMessage(body), protocol.CodeSuccess, "success"
	return out, nil
}
