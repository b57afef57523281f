package provision_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/koobridge/koobridge/provision"
)

// seats is a vendor's product with a limited number of tenants.
type seats struct{ left int }

// Provision creates a tenant, or refuses the purchase when none is left.
func (s *seats) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	if ev.Type != provision.EventCreated {
		return provision.Result{}, nil // renewals, freezes, …: nothing to do here
	}
	if s.left == 0 {
		return provision.Result{}, provision.Refuse(provision.CodeSoldOut, "no seats left this month")
	}
	s.left--
	return provision.Result{AppInfo: &provision.AppInfo{FrontEndURL: "https://app.example.com/t/" + ev.Instance.ID}}, nil
}

// Example shows a Go Provisioner: a purchase is either created (the reply
// carries the app info) or refused with a business code that KooGallery
// shows the buyer.
func Example() {
	p := &seats{left: 1}
	for _, id := range []string{"inst-1", "inst-2"} {
		res, err := p.Provision(context.Background(), provision.Event{ID: "instance.created:" + id, Type: provision.EventCreated, Instance: provision.Instance{ID: id}})
		var refused *provision.Refusal
		switch {
		case errors.As(err, &refused):
			fmt.Println(id, "refused:", refused.Code, refused.Message)
		case err != nil:
			fmt.Println(id, "failed:", err)
		default:
			fmt.Println(id, "created:", res.AppInfo.FrontEndURL)
		}
	}
	// Output:
	// inst-1 created: https://app.example.com/t/inst-1
	// inst-2 refused: 000106 no seats left this month
}

// ExampleVerifyWebhook is the check a vendor's HTTP endpoint makes on each
// delivery of the webhook provisioner, before it acts on the event.
func ExampleVerifyWebhook() {
	const secret = "the-shared-webhook-secret"
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the raw bytes: the signature covers them
		if err := provision.VerifyWebhook(secret, r.Header.Get(provision.HeaderSignature), body, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("event", r.Header.Get(provision.HeaderEvent), "id", r.Header.Get(provision.HeaderDelivery))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"appInfo":{"frontEndUrl":"https://app.example.com/t/inst-1"}}`)
	}))
	defer vendor.Close()

	hook, err := provision.NewWebhook(provision.WebhookConfig{URL: vendor.URL, Secret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := hook.Provision(context.Background(), provision.Event{ID: "instance.created:inst-1", Type: provision.EventCreated, Instance: provision.Instance{ID: "inst-1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("app:", res.AppInfo.FrontEndURL)
	// Output:
	// event instance.created id instance.created:inst-1
	// app: https://app.example.com/t/inst-1
}
