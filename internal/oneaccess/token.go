package oneaccess

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// tokenJSON is the token endpoint's answer (Part C.3 step 2): the 200
// body or the error body.
type tokenJSON struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Scope            string          `json:"scope"`
	RefreshToken     string          `json:"refresh_token"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// Exchange trades an authorization code for tokens at the token endpoint
// (Part C.3 step 2): a form post of grant_type=authorization_code, code,
// redirect_uri and the client's credentials (client_id and client_secret
// in the form, or HTTP Basic with Config.AuthStyleBasic). A refusal in
// the documented error body is an *Error (invalid_grant, …).
func (c *Client) Exchange(ctx context.Context, code, redirectURI string) (Token, error) {
	if code == "" {
		return Token{}, errors.New("oneaccess: Exchange: empty authorization code")
	}
	if redirectURI == "" {
		return Token{}, errors.New("oneaccess: Exchange: empty redirect_uri")
	}
	return c.tokenRequest(ctx, url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {redirectURI},
	}, code)
}

// Refresh renews the tokens with a refresh token (Part C.3 step 3,
// grant_type=refresh_token). When the answer carries no new refresh
// token, the returned Token keeps the one given (RFC 6749 §6; whether
// OneAccess rotates it is unconfirmed). A refusal in the documented error
// body is an *Error (invalid_grant, …).
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	if refreshToken == "" {
		return Token{}, errors.New("oneaccess: Refresh: empty refresh token")
	}
	t, err := c.tokenRequest(ctx, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}, refreshToken)
	if err != nil {
		return Token{}, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// tokenRequest posts form, with the client's credentials added, to the
// token endpoint and reads the answer. grant is the code or refresh
// token, kept out of errors like the secret.
func (c *Client) tokenRequest(ctx context.Context, form url.Values, grant string) (Token, error) {
	if !c.cfg.AuthStyleBasic {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	req, err := newRequest(ctx, "POST", c.token.String(), strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if err != nil {
		return Token{}, err
	}
	if c.cfg.AuthStyleBasic {
		// RFC 6749 §2.3.1: each form-urlencoded, then base64.
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(c.cfg.ClientID)+":"+url.QueryEscape(c.cfg.ClientSecret))))
	}
	a, err := c.send(req, tokenEndpoint)
	if err != nil {
		return Token{}, err
	}
	var tj tokenJSON
	if err := decodeJSON(a.body, &tj); err != nil {
		return Token{}, c.endpointError(c.token, tokenEndpoint, "HTTP %d: %v", a.status, err)
	}
	if tj.Error != "" {
		return Token{}, &Error{
			Status:      a.status,
			Code:        clean(tj.Error, c.cfg.ClientSecret, grant),
			Description: clean(tj.ErrorDescription, c.cfg.ClientSecret, grant),
		}
	}
	if a.status != 200 {
		return Token{}, c.endpointError(c.token, tokenEndpoint, "HTTP %d without an OAuth error", a.status)
	}
	if tj.AccessToken == "" {
		return Token{}, c.endpointError(c.token, tokenEndpoint, "answer has no access_token")
	}
	switch {
	case tj.TokenType == "":
		tj.TokenType = "Bearer" // OneAccess documents Bearer
	case strings.EqualFold(tj.TokenType, "bearer"):
		tj.TokenType = "Bearer"
	default:
		return Token{}, c.endpointError(c.token, tokenEndpoint, "token_type %q is not Bearer", clean(tj.TokenType))
	}
	expiresIn, err := parseExpiresIn(tj.ExpiresIn)
	if err != nil {
		return Token{}, c.endpointError(c.token, tokenEndpoint, "%v", err)
	}
	t := Token{
		AccessToken:  tj.AccessToken,
		RefreshToken: tj.RefreshToken,
		TokenType:    tj.TokenType,
		Scope:        tj.Scope,
	}
	if expiresIn > 0 {
		t.Expiry = c.cfg.Now().Add(time.Duration(expiresIn) * time.Second)
	}
	return t, nil
}

// maxExpiresIn bounds expires_in (ten years), so the expiry cannot
// overflow.
const maxExpiresIn = 10 * 365 * 24 * 3600

// parseExpiresIn reads expires_in: absent or null is 0 (no lifetime
// given); otherwise a whole number of seconds, as a JSON number or a
// string of digits, 0 to ten years.
func parseExpiresIn(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxExpiresIn {
		return 0, errors.New("expires_in is not a number of seconds")
	}
	return n, nil
}
