package oneaccess

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// casJSON is the JSON answer of p3/serviceValidate (Part C.4).
type casJSON struct {
	ServiceResponse *struct {
		AuthenticationSuccess *struct {
			User       string                     `json:"user"`
			Attributes map[string]json.RawMessage `json:"attributes"`
		} `json:"authenticationSuccess"`
		AuthenticationFailure *struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"authenticationFailure"`
	} `json:"serviceResponse"`
}

// casXML is the XML answer of p3/serviceValidate (Part C.4, CAS 3.0
// protocol §2.5): cas:serviceResponse with cas:authenticationSuccess
// (cas:user, cas:attributes) or cas:authenticationFailure. Elements are
// matched by local name, whatever their namespace prefix.
type casXML struct {
	XMLName xml.Name `xml:"serviceResponse"`
	Success *struct {
		User       string `xml:"user"`
		Attributes struct {
			Items []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"attributes"`
	} `xml:"authenticationSuccess"`
	Failure *struct {
		Code        string `xml:"code,attr"`
		Description string `xml:",chardata"`
	} `xml:"authenticationFailure"`
}

// casResult is either answer, reduced: a user with attributes (the first
// value of each) or a failure.
type casResult struct {
	success     bool
	user        string
	attrs       map[string]string
	failure     bool
	code, descr string
}

// ValidateTicket validates a CAS service ticket at p3/serviceValidate
// (Part C.4; asking format=JSON, reading an XML answer too) and returns
// the user from its attributes: UserName is the userName attribute, else
// cas:user; ID is the id attribute, else cas:user (Part C.4 does not say
// what cas:user holds); Name, Email, Mobile, Role, OrganizationCode and
// Tenant are the attributes name, email, mobile, role, organizationCode
// and tenant (a multi-valued attribute gives its first value). A
// cas:authenticationFailure is an *Error with the CAS code
// (INVALID_TICKET, …) and the HTTP status.
func (c *Client) ValidateTicket(ctx context.Context, service, ticket string) (User, error) {
	if service == "" {
		return User{}, errors.New("oneaccess: ValidateTicket: empty service")
	}
	if ticket == "" {
		return User{}, errors.New("oneaccess: ValidateTicket: empty ticket")
	}
	u := withQuery(c.casValidate, url.Values{
		"service": {service},
		"ticket":  {ticket},
		"format":  {"JSON"},
	})
	req, err := newRequest(ctx, "GET", u, nil, "")
	if err != nil {
		return User{}, err
	}
	req.Header.Set("Accept", "application/json, application/xml;q=0.9, text/xml;q=0.8")
	a, err := c.send(req, casValidateEndpoint)
	if err != nil {
		return User{}, err
	}
	r, perr := parseCAS(a.body)
	switch {
	case perr == nil && r.failure:
		return User{}, &Error{
			Status:      a.status,
			Code:        clean(r.code, c.cfg.ClientSecret, ticket),
			Description: clean(r.descr, c.cfg.ClientSecret, ticket),
		}
	case a.status != http.StatusOK:
		return User{}, c.endpointError(c.casValidate, casValidateEndpoint, "HTTP %d without a CAS answer", a.status)
	case perr != nil:
		return User{}, c.endpointError(c.casValidate, casValidateEndpoint, "%v", perr)
	}
	user := User{
		ID:               firstNonEmpty(r.attrs["id"], strings.TrimSpace(r.user)),
		UserName:         firstNonEmpty(r.attrs["userName"], strings.TrimSpace(r.user)),
		Name:             r.attrs["name"],
		Email:            r.attrs["email"],
		Mobile:           r.attrs["mobile"],
		Role:             r.attrs["role"],
		OrganizationCode: r.attrs["organizationCode"],
		Tenant:           r.attrs["tenant"],
	}
	if user.UserName == "" {
		return User{}, c.endpointError(c.casValidate, casValidateEndpoint, "authenticationSuccess without a user")
	}
	return user, nil
}

// casAttributes are the attributes ValidateTicket reads; others are
// ignored whatever their type.
var casAttributes = []string{"id", "userName", "name", "email", "mobile", "role", "organizationCode", "tenant"}

// parseCAS reads a serviceValidate answer, JSON or XML, told apart by its
// first character. It is an error unless the answer is a serviceResponse
// with exactly one of authenticationSuccess and authenticationFailure.
func parseCAS(body []byte) (casResult, error) {
	b := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if len(b) == 0 {
		return casResult{}, errors.New("empty answer")
	}
	switch b[0] {
	case '{':
		return parseCASJSON(b)
	case '<':
		return parseCASXML(b)
	}
	return casResult{}, errors.New("answer is neither JSON nor XML")
}

func parseCASJSON(b []byte) (casResult, error) {
	var cj casJSON
	if err := decodeJSON(b, &cj); err != nil {
		return casResult{}, err
	}
	sr := cj.ServiceResponse
	if sr == nil {
		return casResult{}, errors.New("JSON answer without serviceResponse")
	}
	switch {
	case sr.AuthenticationSuccess != nil && sr.AuthenticationFailure != nil:
		return casResult{}, errors.New("JSON answer with both authenticationSuccess and authenticationFailure")
	case sr.AuthenticationFailure != nil:
		f := sr.AuthenticationFailure
		if f.Code == "" {
			return casResult{}, errors.New("JSON authenticationFailure without a code")
		}
		return casResult{failure: true, code: f.Code, descr: f.Description}, nil
	case sr.AuthenticationSuccess != nil:
		s := sr.AuthenticationSuccess
		r := casResult{success: true, user: s.User, attrs: map[string]string{}}
		for _, name := range casAttributes {
			raw, ok := s.Attributes[name]
			if !ok {
				continue
			}
			v, err := jsonAttribute(raw)
			if err != nil {
				return casResult{}, fmt.Errorf("JSON attribute %s: %w", name, err)
			}
			r.attrs[name] = v
		}
		return r, nil
	}
	return casResult{}, errors.New("JSON serviceResponse with neither authenticationSuccess nor authenticationFailure")
}

// jsonAttribute reads a CAS attribute value: a string, an array whose
// first element is a string (an empty array is ""), or null.
func jsonAttribute(raw json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == nil {
			return "", nil
		}
		return *s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		if len(list) == 0 {
			return "", nil
		}
		return list[0], nil
	}
	return "", errors.New("is neither a string nor a list of strings")
}

func parseCASXML(b []byte) (casResult, error) {
	var cx casXML
	if err := xml.Unmarshal(b, &cx); err != nil {
		// The decoder's text names elements and lines, not values.
		return casResult{}, fmt.Errorf("answer is not a CAS serviceResponse: %v", err)
	}
	switch {
	case cx.Success != nil && cx.Failure != nil:
		return casResult{}, errors.New("XML answer with both authenticationSuccess and authenticationFailure")
	case cx.Failure != nil:
		code := strings.TrimSpace(cx.Failure.Code)
		if code == "" {
			return casResult{}, errors.New("XML authenticationFailure without a code")
		}
		return casResult{failure: true, code: code, descr: strings.TrimSpace(cx.Failure.Description)}, nil
	case cx.Success != nil:
		r := casResult{success: true, user: cx.Success.User, attrs: map[string]string{}}
		for _, it := range cx.Success.Attributes.Items {
			name := it.XMLName.Local
			if _, seen := r.attrs[name]; seen {
				continue // a multi-valued attribute: the first value
			}
			r.attrs[name] = strings.TrimSpace(it.Value)
		}
		return r, nil
	}
	return casResult{}, errors.New("XML serviceResponse with neither authenticationSuccess nor authenticationFailure")
}
