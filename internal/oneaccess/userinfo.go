package oneaccess

import (
	"context"
	"errors"
	"net/http"
)

// userJSON is the user info endpoint's answer (Part C.3 step 4): the
// documented fields, the OpenID Connect claims read as fallbacks, and the
// error body. Other fields are ignored.
type userJSON struct {
	ID               string `json:"id"`
	UserName         string `json:"userName"`
	Name             string `json:"name"`
	Email            string `json:"email"`
	Mobile           string `json:"mobile"`
	Role             string `json:"role"`
	OrganizationCode string `json:"organizationCode"`
	Tenant           string `json:"tenant"`

	// OpenID Connect (an OIDC server in the interoperability tests).
	Sub               string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	PhoneNumber       string `json:"phone_number"`

	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// UserInfo reads the signed-in user with the access token (Part C.3
// step 4: Authorization: Bearer, Accept: application/json). UserName is
// userName, else preferred_username, else sub (an OpenID Connect server);
// Mobile is mobile, else phone_number; an answer without any user name
// is an error. A 401 is an *Error with Status 401 and Code
// "unauthorized" (the documented body's code; another server's code,
// such as invalid_token, goes in front of the description); another
// answer with an OAuth error body is an *Error with its code.
func (c *Client) UserInfo(ctx context.Context, accessToken string) (User, error) {
	if accessToken == "" {
		return User{}, errors.New("oneaccess: UserInfo: empty access token")
	}
	req, err := newRequest(ctx, "GET", c.userInfo.String(), nil, "")
	if err != nil {
		return User{}, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	a, err := c.send(req, userInfoEndpoint)
	if err != nil {
		return User{}, err
	}
	var uj userJSON
	jsonErr := decodeJSON(a.body, &uj)
	if a.status == http.StatusUnauthorized {
		e := &Error{Status: a.status, Code: "unauthorized"}
		if jsonErr == nil {
			e.Description = clean(uj.ErrorDescription, c.cfg.ClientSecret, accessToken)
			if code := clean(uj.Error, c.cfg.ClientSecret, accessToken); code != "" && code != "unauthorized" {
				e.Description = clean(code+": "+e.Description, c.cfg.ClientSecret, accessToken)
			}
		}
		return User{}, e
	}
	if jsonErr != nil {
		return User{}, c.endpointError(c.userInfo, userInfoEndpoint, "HTTP %d: %v", a.status, jsonErr)
	}
	if uj.Error != "" {
		return User{}, &Error{
			Status:      a.status,
			Code:        clean(uj.Error, c.cfg.ClientSecret, accessToken),
			Description: clean(uj.ErrorDescription, c.cfg.ClientSecret, accessToken),
		}
	}
	if a.status != http.StatusOK {
		return User{}, c.endpointError(c.userInfo, userInfoEndpoint, "HTTP %d without an OAuth error", a.status)
	}
	u := User{
		ID:               uj.ID,
		UserName:         firstNonEmpty(uj.UserName, uj.PreferredUsername, uj.Sub),
		Name:             uj.Name,
		Email:            uj.Email,
		Mobile:           firstNonEmpty(uj.Mobile, uj.PhoneNumber),
		Role:             uj.Role,
		OrganizationCode: uj.OrganizationCode,
		Tenant:           uj.Tenant,
	}
	if u.UserName == "" {
		return User{}, c.endpointError(c.userInfo, userInfoEndpoint, "answer has no userName (nor preferred_username, sub)")
	}
	return u, nil
}

// firstNonEmpty is the first of ss that is not empty, or "".
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
