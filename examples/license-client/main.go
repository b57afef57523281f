package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// state is what the client keeps between runs: the last good token and the
// keys that verified it, so that a check works offline.
type state struct {
	Token string             `json:"token"`
	Keys  jose.JSONWebKeySet `json:"keys"`
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: exit 0 when the license may be used, 2 when it may
// not (frozen, released, expired, grace over), 1 on any other error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("license-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the vendor's koobridge")
	statePath := fs.String("state", "", "file keeping the last good token for offline use (none when empty)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() != 3 || (fs.Arg(0) != "activate" && fs.Arg(0) != "check") {
		fmt.Fprintln(stderr, "usage: license-client [-url URL] [-state FILE] activate|check LICENSE FINGERPRINT")
		return 1
	}
	op, code, fingerprint := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	c := &Client{BaseURL: *base, HTTP: &http.Client{Timeout: 10 * time.Second}}

	claims, offline, err := obtain(ctx, c, op, code, fingerprint, *statePath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		var se *ServiceError
		if errors.As(err, &se) && se.HTTPStatus < 500 {
			return 2
		}
		return 1
	}
	out, _ := json.Marshal(struct {
		Claims
		Offline bool `json:"offline"`
	}{claims, offline})
	fmt.Fprintln(stdout, string(out))
	if err := Usable(claims, time.Now()); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return 0
}

// obtain asks the service and verifies its token; when the service cannot
// be reached, a check falls back on the kept token (offline).
func obtain(ctx context.Context, c *Client, op, code, fingerprint, statePath string) (Claims, bool, error) {
	var ans Answer
	var err error
	if op == "activate" {
		ans, err = c.Activate(ctx, code, fingerprint)
	} else {
		ans, err = c.Check(ctx, code, fingerprint)
	}
	var se *ServiceError
	if err != nil && op == "check" && statePath != "" && !errors.As(err, &se) {
		return fromState(statePath, code, fingerprint, err)
	}
	if err != nil {
		return Claims{}, false, err
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return Claims{}, false, err
	}
	claims, err := Verify(ans.Token, keys, code, fingerprint)
	if err != nil {
		return Claims{}, false, err
	}
	if statePath != "" {
		data, _ := json.Marshal(state{Token: ans.Token, Keys: keys})
		if err := os.WriteFile(statePath, data, 0o600); err != nil {
			return Claims{}, false, fmt.Errorf("keep token: %w", err)
		}
	}
	return claims, false, nil
}

// fromState verifies the kept token after the service could not be reached.
func fromState(path, code, fingerprint string, cause error) (Claims, bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Claims{}, false, fmt.Errorf("%w (and no kept token: %v)", cause, err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return Claims{}, false, fmt.Errorf("%w (and the kept token is unreadable: %v)", cause, err)
	}
	claims, err := Verify(st.Token, st.Keys, code, fingerprint)
	if err != nil {
		return Claims{}, false, err
	}
	return claims, true, nil
}
