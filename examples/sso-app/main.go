// Command sso-app is a sample web app of a vendor selling a
// joint-operation product on KooGallery. It signs its users in with
// OpenID Connect against koobridge (an off-the-shelf client library:
// github.com/coreos/go-oidc/v3 and golang.org/x/oauth2, nothing of
// koobridge's), which federates each sign-in to the tenant's OneAccess.
// It shows who is signed in, renews the access token when it expires,
// signs out at both ends, and accepts third-party initiated login.
//
// Run it against "koobridge serve --public-url http://127.0.0.1:8080
// --sso-client-id sample-app --sso-client-secret … --sso-redirect-uri
// http://127.0.0.1:8070/callback …":
//
//	SSO_CLIENT_SECRET=… go run . -issuer http://127.0.0.1:8080 -client-id sample-app
//
// Every flag can be given in the environment instead (SSO_ISSUER,
// SSO_CLIENT_ID, SSO_CLIENT_SECRET, SSO_CLIENT_SECRET_FILE,
// SSO_APP_LISTEN, SSO_APP_URL, SSO_TENANT, SSO_REFRESH_EARLY); a flag
// wins. Prefer the environment or a file for the secret: a flag shows in
// the process list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"example.com/sso-app/ssoapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sso-app:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks bad flags or settings (exit status 2).
var errUsage = errors.New("usage")

// options are the app's settings from flags and the environment.
type options struct {
	listen, baseURL, issuer, clientID, clientSecret, secretFile, tenant string
	refreshEarly                                                        time.Duration
}

// parse reads the flags, the environment filling what they leave unset.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("sso-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8070", "address to serve on (SSO_APP_LISTEN)")
	fs.StringVar(&o.baseURL, "url", "", "the app's URL as the browser reaches it (SSO_APP_URL; default http://<listen>)")
	fs.StringVar(&o.issuer, "issuer", "", "the OpenID Connect provider: koobridge's --public-url (SSO_ISSUER)")
	fs.StringVar(&o.clientID, "client-id", "", "the app's client id at the provider (SSO_CLIENT_ID)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "the app's client secret (SSO_CLIENT_SECRET; prefer it or a file to this flag)")
	fs.StringVar(&o.secretFile, "client-secret-file", "", "a file holding the client secret (SSO_CLIENT_SECRET_FILE)")
	fs.StringVar(&o.tenant, "tenant", "", "the tenantId the sign-in form offers (SSO_TENANT)")
	fs.DurationVar(&o.refreshEarly, "refresh-early", 0, "renew the access token this long before it expires (SSO_REFRESH_EARLY)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, e := range []struct {
		flag, env string
		into      *string
	}{
		{"listen", "SSO_APP_LISTEN", &o.listen},
		{"url", "SSO_APP_URL", &o.baseURL},
		{"issuer", "SSO_ISSUER", &o.issuer},
		{"client-id", "SSO_CLIENT_ID", &o.clientID},
		{"client-secret", "SSO_CLIENT_SECRET", &o.clientSecret},
		{"client-secret-file", "SSO_CLIENT_SECRET_FILE", &o.secretFile},
		{"tenant", "SSO_TENANT", &o.tenant},
	} {
		if v := getenv(e.env); v != "" && !set[e.flag] {
			*e.into = v
		}
	}
	if v := getenv("SSO_REFRESH_EARLY"); v != "" && !set["refresh-early"] {
		d, err := time.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("%w: SSO_REFRESH_EARLY: %v", errUsage, err)
		}
		o.refreshEarly = d
	}
	switch {
	case o.issuer == "":
		return o, fmt.Errorf("%w: -issuer (or SSO_ISSUER) is required", errUsage)
	case o.clientID == "":
		return o, fmt.Errorf("%w: -client-id (or SSO_CLIENT_ID) is required", errUsage)
	case o.clientSecret != "" && o.secretFile != "":
		return o, fmt.Errorf("%w: give the client secret or its file, not both", errUsage)
	case o.clientSecret == "" && o.secretFile == "":
		return o, fmt.Errorf("%w: the client secret is required (SSO_CLIENT_SECRET, -client-secret-file or -client-secret)", errUsage)
	}
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return o, fmt.Errorf("%w: client secret file: %v", errUsage, err)
		}
		o.clientSecret = strings.TrimRight(string(b), "\r\n")
		if o.clientSecret == "" {
			return o, fmt.Errorf("%w: the client secret file %s is empty", errUsage, o.secretFile)
		}
	}
	return o, nil
}

// run serves the app until ctx is done. It prints the line
// "sso-app listening on <URL>" once it listens.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("%w: -listen %s: %v", errUsage, o.listen, err)
	}
	defer ln.Close()
	if o.baseURL == "" {
		o.baseURL = "http://" + ln.Addr().String()
	}
	app, err := ssoapp.New(ssoapp.Config{
		Issuer: o.issuer, ClientID: o.clientID, ClientSecret: o.clientSecret, BaseURL: o.baseURL,
		Tenant: o.tenant, RefreshEarly: o.refreshEarly,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "sso-app listening on %s/ (issuer %s; redirect URI %s, post-logout %s, initiate login %s)\n",
		o.baseURL, o.issuer, app.RedirectURI(), app.PostLogoutRedirectURI(), app.InitiateLoginURI())
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
