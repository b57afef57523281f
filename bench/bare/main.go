// Command bare is the ceiling for koobridge's load measurements: a
// production interface that only verifies the V2 signature (with an
// in-memory replay guard), decodes the request, and writes a signed reply.
// It stores nothing and provisions nothing, so the gap between it and
// koobridge serve under the same load is the price of durability.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	key := flag.String("key", "", "the KooGallery key")
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "bare: -key is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	// The load script reads this line to find the port.
	fmt.Printf("listening %s\n", ln.Addr())
	v := &sign.Verifier{Keys: []string{*key}, Nonces: sign.NewMemoryNonces()}
	err = http.Serve(ln, handler(v, *key))
	slog.Error("bare: serve", "err", err)
	os.Exit(1)
}

func handler(v *sign.Verifier, key string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			reply(w, key, protocol.NewResponse(protocol.CodeInvalidParam, "unreadable body"))
			return
		}
		q := r.URL.Query()
		if _, err := v.VerifyV2(r.Context(), q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body); err != nil {
			reply(w, key, protocol.NewResponse(protocol.CodeAuthFailed, err.Error()))
			return
		}
		req, err := protocol.DecodeV2(body)
		if err == nil {
			err = req.Validate()
		}
		if err != nil {
			reply(w, key, protocol.ErrorResponse(err))
			return
		}
		switch req := req.(type) {
		case protocol.NewInstanceRequest:
			reply(w, key, protocol.NewInstanceResponse{Response: protocol.NewResponse(protocol.CodeSuccess, "success"), InstanceID: randomID()})
		case protocol.QueryInstanceRequest:
			resp := protocol.QueryInstanceResponse{Response: protocol.NewResponse(protocol.CodeSuccess, "success")}
			for _, id := range req.InstanceIDs() {
				resp.Info = append(resp.Info, protocol.InstanceInfo{InstanceID: id, AppInfo: &protocol.AppInfo{FrontEndURL: "https://example.com/" + id}})
			}
			reply(w, key, resp)
		default:
			reply(w, key, protocol.NewResponse(protocol.CodeSuccess, "success"))
		}
	})
}

func reply(w http.ResponseWriter, key string, v any) {
	body, err := protocol.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set(sign.BodySignHeader, sign.BodySign(key, body))
	_, _ = w.Write(body)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
