package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/koobridge/koobridge/isv"
)

// ssoOptions are the settings of koobridge's OpenID Connect provider
// (docs/sso.md): one app by flags, more under sso-clients: in the YAML
// file (a list of objects, which flags cannot express).
type ssoOptions struct {
	publicURL        string
	clientID         string
	clientSecret     string
	clientSecretFile string
	redirectURIs     []string
	postLogoutURIs   []string
	initiateLoginURI string
	appID            string
	casTenants       []string
}

// ssoClientsKey is the YAML-only setting that lists several apps.
const ssoClientsKey = "sso-clients"

// minSSOSecretLen is the shortest client secret accepted.
const minSSOSecretLen = 16

func (o *ssoOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.publicURL, "public-url", "", "koobridge's external base URL (e.g. https://isv.example.com): the OpenID Connect issuer of single sign-on; SSO is off without it")
	fs.StringVar(&o.clientID, "sso-client-id", "", "SSO: the client_id of the vendor's app")
	fs.StringVar(&o.clientSecret, "sso-client-secret", "", "SSO: the app's client secret (at least 16 characters)")
	fs.StringVar(&o.clientSecretFile, "sso-client-secret-file", "", "SSO: read --sso-client-secret from this file")
	fs.StringArrayVar(&o.redirectURIs, "sso-redirect-uri", nil, "SSO: a redirect URI of the app (repeatable)")
	fs.StringArrayVar(&o.postLogoutURIs, "sso-post-logout-redirect-uri", nil, "SSO: a post_logout_redirect_uri of the app (repeatable)")
	fs.StringVar(&o.initiateLoginURI, "sso-initiate-login-uri", "", "SSO: the app's initiate_login_uri (third-party initiated login), for /sso/{tenantId}/login and KooGallery's unified login page")
	fs.StringVar(&o.appID, "sso-app-id", "", "SSO: the Kit appId the app signs in through (default: each tenant's only application)")
	fs.StringArrayVar(&o.casTenants, "sso-cas-tenant", nil, "SSO: a tenantId whose users sign in at its OneAccess over CAS 3.0 instead of OAuth 2.0, * for every tenant (repeatable)")
}

// maxTenantIDLen is the longest tenantId (S64).
const maxTenantIDLen = 64

// checkCASTenants checks --sso-cas-tenant: tenantIds or *.
func checkCASTenants(tenants []string) error {
	for _, t := range tenants {
		if t == "" || len(t) > maxTenantIDLen || strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return usageErrorf("--sso-cas-tenant %q: want a tenantId (at most %d characters, no spaces) or *", t, maxTenantIDLen)
		}
	}
	return nil
}

// ssoClientYAML is one entry of sso-clients: in the YAML file.
type ssoClientYAML struct {
	ID                     string   `yaml:"id"`
	Secret                 string   `yaml:"secret"`
	SecretFile             string   `yaml:"secret-file"`
	RedirectURIs           []string `yaml:"redirect-uris"`
	PostLogoutRedirectURIs []string `yaml:"post-logout-redirect-uris"`
	InitiateLoginURI       string   `yaml:"initiate-login-uri"`
	AppID                  string   `yaml:"app-id"`
}

// resolveSSO returns the provider's configuration, nil when SSO is off.
func resolveSSO(o *ssoOptions, configFile string) (*isv.SSOConfig, error) {
	var clients []isv.SSOClient
	if o.clientID != "" || o.clientSecret != "" || o.clientSecretFile != "" || len(o.redirectURIs) > 0 ||
		len(o.postLogoutURIs) > 0 || o.initiateLoginURI != "" || o.appID != "" {
		secret, err := secretValue(o.clientSecret, "sso-client-secret", o.clientSecretFile)
		if err != nil {
			return nil, err
		}
		c, err := checkSSOClient("--sso-client-*", isv.SSOClient{ID: o.clientID, Secret: secret, RedirectURIs: o.redirectURIs,
			PostLogoutRedirectURIs: o.postLogoutURIs, InitiateLoginURI: o.initiateLoginURI, AppID: o.appID})
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	more, err := readSSOClients(configFile)
	if err != nil {
		return nil, err
	}
	clients = append(clients, more...)
	seen := map[string]bool{}
	for _, c := range clients {
		if seen[c.ID] {
			return nil, usageErrorf("SSO client %q is registered twice", c.ID)
		}
		seen[c.ID] = true
	}
	if err := checkCASTenants(o.casTenants); err != nil {
		return nil, err
	}
	if len(o.casTenants) > 0 && len(clients) == 0 {
		return nil, usageErrorf("--sso-cas-tenant needs an SSO client (--sso-client-id or %s: in the YAML file)", ssoClientsKey)
	}
	if o.publicURL == "" {
		if len(clients) > 0 {
			return nil, usageErrorf("SSO clients need --public-url (the issuer the apps discover)")
		}
		return nil, nil
	}
	u, err := url.Parse(o.publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, usageErrorf("--public-url %q: want an http or https URL without query, fragment or user info", o.publicURL)
	}
	if len(clients) == 0 {
		return nil, nil
	}
	return &isv.SSOConfig{PublicURL: strings.TrimRight(o.publicURL, "/"), Clients: clients, CASTenants: o.casTenants}, nil
}

func checkSSOClient(where string, c isv.SSOClient) (isv.SSOClient, error) {
	switch {
	case c.ID == "":
		return c, usageErrorf("%s: the client id is required", where)
	case len(c.Secret) < minSSOSecretLen:
		return c, usageErrorf("%s: client %q: the secret is required, at least %d characters", where, c.ID, minSSOSecretLen)
	case len(c.RedirectURIs) == 0:
		return c, usageErrorf("%s: client %q: at least one redirect URI is required", where, c.ID)
	}
	uris := append(append([]string(nil), c.RedirectURIs...), c.PostLogoutRedirectURIs...)
	if c.InitiateLoginURI != "" {
		uris = append(uris, c.InitiateLoginURI)
	}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
			return c, usageErrorf("%s: client %q: %q: want an http or https URL without fragment or user info", where, c.ID, raw)
		}
	}
	return c, nil
}

// readSSOClients reads sso-clients: from the YAML file, strictly.
func readSSOClients(path string) ([]isv.SSOClient, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("--config: %v", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, usageErrorf("--config %s: %v", path, err)
	}
	node, ok := doc[ssoClientsKey]
	if !ok {
		return nil, nil
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(&node); err != nil {
		return nil, usageErrorf("--config %s: %s: %v", path, ssoClientsKey, err)
	}
	dec := yaml.NewDecoder(&b)
	dec.KnownFields(true)
	var list []ssoClientYAML
	if err := dec.Decode(&list); err != nil {
		return nil, usageErrorf("--config %s: %s: want a list of clients (id, secret or secret-file, redirect-uris, post-logout-redirect-uris, initiate-login-uri, app-id): %v", path, ssoClientsKey, err)
	}
	out := make([]isv.SSOClient, 0, len(list))
	for i, y := range list {
		where := fmt.Sprintf("--config %s: %s[%d]", path, ssoClientsKey, i)
		secret := y.Secret
		if y.SecretFile != "" {
			if y.Secret != "" {
				return nil, usageErrorf("%s: give either secret or secret-file, not both", where)
			}
			b, err := os.ReadFile(y.SecretFile)
			if err != nil {
				return nil, usageErrorf("%s: secret-file: %v", where, err)
			}
			secret = strings.TrimRight(string(b), " \t\r\n")
		}
		c, err := checkSSOClient(where, isv.SSOClient{ID: y.ID, Secret: secret, RedirectURIs: y.RedirectURIs,
			PostLogoutRedirectURIs: y.PostLogoutRedirectURIs, InitiateLoginURI: y.InitiateLoginURI, AppID: y.AppID})
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// mountSSO serves the provider beside handler at its paths.
func mountSSO(handler http.Handler, srv *isv.Server, cfg *isv.SSOConfig) (http.Handler, error) {
	h, paths, err := srv.SSOHandler(*cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	for _, p := range paths {
		mux.Handle(p, h)
	}
	return mux, nil
}
