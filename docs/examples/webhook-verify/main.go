// Command webhook-verify is a minimal vendor endpoint for koobridge's
// webhook provisioner in Go: the standard library and koobridge's public
// package provision, whose VerifyWebhook makes the signature checks. It
// shows the checks every vendor must make:
//
//  1. recompute HMAC-SHA256(secret, "<t>.<raw body>") and compare it in
//     constant time with the v1 value of the Koobridge-Signature header
//     (provision.VerifyWebhook; verify.py beside this file does the same
//     in Python, for vendors in other languages);
//  2. reject a t more than 5 minutes away from the clock (replays; also
//     VerifyWebhook);
//  3. treat a second delivery with the same Koobridge-Delivery id as a
//     repeat: answer what was answered the first time, do nothing again.
//
// Serve (the secret from $WEBHOOK_SECRET):
//
//	WEBHOOK_SECRET=… go run ./docs/examples/webhook-verify -listen 127.0.0.1:9000
//
// Check one delivery (body on standard input; exit 0 valid, 1 invalid):
//
//	go run ./docs/examples/webhook-verify -check -secret … -header 't=…,v1=…' < body.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/koobridge/koobridge/provision"
)

func main() {
	check := flag.Bool("check", false, "verify one delivery whose body is on standard input; exit 0 if valid, 1 if not")
	secret := flag.String("secret", os.Getenv("WEBHOOK_SECRET"), "the shared secret (default $WEBHOOK_SECRET)")
	header := flag.String("header", "", "with -check: the Koobridge-Signature header value")
	now := flag.Int64("now", 0, "with -check: the current time in Unix seconds (default: the clock)")
	listen := flag.String("listen", "127.0.0.1:9000", "address to serve on")
	flag.Parse()
	if *secret == "" {
		fmt.Fprintln(os.Stderr, "webhook-verify: no secret: set -secret or WEBHOOK_SECRET")
		os.Exit(2)
	}

	if *check {
		body, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "webhook-verify:", err)
			os.Exit(2)
		}
		at := time.Now()
		if *now != 0 {
			at = time.Unix(*now, 0)
		}
		if err := provision.VerifyWebhook(*secret, *header, body, at); err != nil {
			fmt.Fprintln(os.Stderr, "webhook-verify: invalid:", err)
			os.Exit(1)
		}
		fmt.Println("valid")
		return
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s\n", ln.Addr())
	v := &vendor{secret: *secret, replies: map[string][]byte{}}
	srv := &http.Server{Handler: v, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// vendor is a pretend product. A real one keeps the replies in its
// database under a unique constraint on the delivery id, for as long as
// koobridge may retry (days, to be safe), not in memory.
type vendor struct {
	secret  string
	mu      sync.Mutex
	replies map[string][]byte // by Koobridge-Delivery
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := provision.VerifyWebhook(v.secret, r.Header.Get(provision.HeaderSignature), body, time.Now()); err != nil {
		// 4xx: koobridge stops retrying and dead-letters the job.
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(provision.HeaderDelivery)

	// Holding the lock across the work keeps two concurrent deliveries of
	// one event from both doing it; a real product would use its database.
	v.mu.Lock()
	defer v.mu.Unlock()
	reply, seen := v.replies[id]
	if !seen {
		var ev struct {
			Type     string `json:"type"`
			Instance struct {
				ID string `json:"id"`
			} `json:"instance"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		reply = v.handle(ev.Type, ev.Instance.ID)
		v.replies[id] = reply
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(reply)
}

// handle does the product's work for one event and returns the reply body.
func (v *vendor) handle(typ, instanceID string) []byte {
	var reply any = struct{}{}
	switch typ {
	case "instance.created":
		reply = map[string]any{"appInfo": map[string]string{
			"frontEndUrl": "https://app.example.com/t/" + instanceID,
			"adminUrl":    "https://app.example.com/admin/" + instanceID,
			"userName":    "admin",
			"password":    "change-me-" + instanceID[:min(8, len(instanceID))],
			"memo":        "Welcome",
		}}
	case "change.check":
		reply = map[string]any{"allowed": true}
	}
	b, _ := json.Marshal(reply)
	return b
}
