package emulator

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/koobridge/koobridge/protocol"
)

// DirectoryUser is a user of a tenant's enterprise directory that the
// seller's application was never granted: authSync never sent it, yet
// the tenant's identity center signs it in like any other user (with
// Config.UserPassword). Refusing it is the seller's job.
type DirectoryUser struct {
	// UserName is the sign-in name; required, unique in the tenant's
	// directory, at most 128 bytes of UTF-8 (saas-v1-joint-login.md
	// §B.4's userName).
	UserName string `json:"userName"`
	// Name, OrgCode and Role are what userinfo and CAS answer for it;
	// Role empty means "user".
	Name    string `json:"name"`
	OrgCode string `json:"orgCode"`
	Role    string `json:"role"`
}

// maxDirectoryUserName bounds DirectoryUser.UserName, as authSync's
// userName is bounded.
const maxDirectoryUserName = 128

// AddDirectoryUser adds u to the directory of tenant tenantID's identity
// center (OneAccess) without telling the seller: the user signs in at
// the tenant's OneAccess, but no authSync ever authorised it for the
// seller's application, so the seller must refuse it. It is refused for
// an unknown tenant (ErrNotFound), an empty, overlong or non-UTF-8
// userName, or one the directory already holds (every user authSync ever
// sent is there).
func (e *Emulator) AddDirectoryUser(tenantID string, u DirectoryUser) error {
	switch {
	case u.UserName == "":
		return errors.New("emulator: add directory user: userName is required")
	case len(u.UserName) > maxDirectoryUserName || !utf8.ValidString(u.UserName):
		return fmt.Errorf("emulator: add directory user: userName must be at most %d bytes of UTF-8", maxDirectoryUserName)
	}
	if u.Role == "" {
		u.Role = protocol.KitRoleUser
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var t *tenant
	for _, c := range e.tenants {
		if c.t.TenantID == tenantID {
			t = c
			break
		}
	}
	if t == nil {
		return fmt.Errorf("emulator: add directory user: tenant %q: %w", tenantID, ErrNotFound)
	}
	if t.oa.users[u.UserName] != nil {
		return fmt.Errorf("emulator: add directory user: tenant %q already has user %q in its directory", tenantID, u.UserName)
	}
	t.remember([]kitUserWire{{UserName: u.UserName, Name: u.Name, OrgCode: u.OrgCode, Role: u.Role}})
	return nil
}
