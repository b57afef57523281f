package tenant

import (
	"context"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// SyncUsers applies authSync to the users of one app of a tenant:
//   - flag 1 (add) and 2 (modify) store the users as sent, authorised;
//     a modify of an unknown user adds it (the tolerant reading);
//   - flag 3 revokes the authorisation of known users, keeping them;
//   - flag 0 deletes known users.
//
// Unknown users of a revoke or delete are skipped. A userName given twice
// in one call is refused (000002), before anything is written: which of
// the two to keep would be a guess. The vendor hears one event per kind of
// change: users.authorized (new or authorised again), users.changed,
// users.enabled, users.disabled, users.revoked, users.deleted. r must be
// valid.
func (s *Service) SyncUsers(ctx context.Context, r protocol.AuthSyncRequest) (Result, error) {
	seen := make(map[string]bool, len(r.UserList))
	for i, u := range r.UserList {
		if seen[u.UserName] {
			return refuse(fmt.Sprintf("userList[%d].userName", i), "the same userName is given twice in one call"), nil
		}
		seen[u.UserName] = true
	}
	changed, err := s.run(ctx, r.TenantID, r.IsTest(), func(ctx context.Context, c *change) error {
		users, err := appUsers(ctx, c.tx, r.TenantID, r.AppID)
		if err != nil {
			return err
		}
		cur := make(map[string]store.TenantUser, len(users))
		for _, u := range users {
			cur[u.UserName] = u
		}
		var d userDiff
		switch r.Flag {
		case protocol.KitFlagAdd, protocol.KitFlagModify:
			err = s.putUsers(ctx, c, r, cur, &d)
		case protocol.KitFlagRevoke:
			err = s.revokeUsers(ctx, c, r, cur, &d)
		case protocol.KitFlagDelete:
			err = s.deleteUsers(ctx, c, r, cur, &d)
		default:
			err = fmt.Errorf("authSync flag %d", r.Flag)
		}
		if err != nil {
			return err
		}
		return s.emitUsers(ctx, c, d)
	})
	if err != nil {
		return Result{}, err
	}
	return ok(changed), nil
}

// userDiff is what one authSync changed, by kind.
type userDiff struct {
	authorized, changed, enabled, disabled, revoked, deleted []store.TenantUser
}

// putUsers stores added or modified users that differ from what is kept.
func (s *Service) putUsers(ctx context.Context, c *change, r protocol.AuthSyncRequest, cur map[string]store.TenantUser, d *userDiff) error {
	now := s.now().UTC()
	var write []store.TenantUser
	for _, ku := range r.UserList {
		next := store.TenantUser{
			TenantID: r.TenantID, AppID: r.AppID, UserName: ku.UserName, Name: ku.Name, OrgCode: ku.OrgCode,
			Role: ku.Role, Enable: ku.Enabled(), Position: ku.Position, EmployeeCode: ku.EmployeeCode,
			EmployeeType: int(ku.EmployeeType), WorkPlace: ku.WorkPlace, EntryDate: ku.EntryDate,
			SyncTime: r.CurrentSyncTime, CreatedAt: now, UpdatedAt: now,
		}
		old, known := cur[ku.UserName]
		kept := known && !old.Revoked
		detailsSame := false
		if kept {
			var err error
			if detailsSame, err = s.sameDetails(old, next, ku); err != nil {
				return err
			}
			if detailsSame && old.Enable == next.Enable {
				continue
			}
		}
		var err error
		if next.MobileSealed, err = s.sealOptional(ku.Mobile); err != nil {
			return err
		}
		if next.EmailSealed, err = s.sealOptional(ku.Email); err != nil {
			return err
		}
		write = append(write, next)
		switch {
		case !kept:
			d.authorized = append(d.authorized, next)
		case !detailsSame:
			d.changed = append(d.changed, next)
		}
		if kept && old.Enable != next.Enable {
			if next.Enable {
				d.enabled = append(d.enabled, next)
			} else {
				d.disabled = append(d.disabled, next)
			}
		}
	}
	if len(write) == 0 {
		return nil
	}
	return c.tx.UpsertTenantUsers(ctx, write)
}

// sameDetails reports whether next, from ku, changes none of old's
// details (enable aside: it has events of its own).
func (s *Service) sameDetails(old, next store.TenantUser, ku protocol.KitUser) (bool, error) {
	if !samePlain(old, next) {
		return false, nil
	}
	mobile, err := s.openOptional(old.MobileSealed)
	if err != nil {
		return false, err
	}
	email, err := s.openOptional(old.EmailSealed)
	if err != nil {
		return false, err
	}
	return mobile == ku.Mobile && email == ku.Email, nil
}

// samePlain compares the fields kept in clear, enable aside.
func samePlain(a, b store.TenantUser) bool {
	return a.Name == b.Name && a.OrgCode == b.OrgCode && a.Role == b.Role && a.Position == b.Position &&
		a.EmployeeCode == b.EmployeeCode && a.EmployeeType == b.EmployeeType &&
		a.WorkPlace == b.WorkPlace && a.EntryDate == b.EntryDate
}

// revokeUsers marks known, authorised users revoked.
func (s *Service) revokeUsers(ctx context.Context, c *change, r protocol.AuthSyncRequest, cur map[string]store.TenantUser, d *userDiff) error {
	now := s.now().UTC()
	var write []store.TenantUser
	for _, ku := range r.UserList {
		old, known := cur[ku.UserName]
		if !known || old.Revoked {
			continue
		}
		old.Revoked, old.UpdatedAt, old.SyncTime = true, now, r.CurrentSyncTime
		write = append(write, old)
		d.revoked = append(d.revoked, old)
	}
	if len(write) == 0 {
		return nil
	}
	return c.tx.UpsertTenantUsers(ctx, write)
}

// deleteUsers deletes known users.
func (s *Service) deleteUsers(ctx context.Context, c *change, r protocol.AuthSyncRequest, cur map[string]store.TenantUser, d *userDiff) error {
	var names []string
	for _, ku := range r.UserList {
		if old, known := cur[ku.UserName]; known {
			names = append(names, ku.UserName)
			d.deleted = append(d.deleted, old)
		}
	}
	if len(names) == 0 {
		return nil
	}
	_, err := c.tx.DeleteTenantUsers(ctx, r.TenantID, r.AppID, names)
	return err
}

// emitUsers emits one event per non-empty kind of change, in a fixed order.
func (s *Service) emitUsers(ctx context.Context, c *change, d userDiff) error {
	kinds := []struct {
		typ   provision.EventType
		users []store.TenantUser
	}{
		{provision.EventUsersAuthorized, d.authorized},
		{provision.EventUsersChanged, d.changed},
		{provision.EventUsersEnabled, d.enabled},
		{provision.EventUsersDisabled, d.disabled},
		{provision.EventUsersRevoked, d.revoked},
		{provision.EventUsersDeleted, d.deleted},
	}
	for _, k := range kinds {
		if len(k.users) == 0 {
			continue
		}
		t, err := c.tenantView(ctx)
		if err != nil {
			return err
		}
		vu, err := s.vendorUsers(k.users)
		if err != nil {
			return err
		}
		c.emit(provision.Event{Type: k.typ, Tenant: t, Users: vu})
	}
	return nil
}

// vendorUsers is the vendor's view of stored users, contact data opened.
func (s *Service) vendorUsers(users []store.TenantUser) ([]provision.User, error) {
	out := make([]provision.User, len(users))
	for i, u := range users {
		mobile, err := s.openOptional(u.MobileSealed)
		if err != nil {
			return nil, err
		}
		email, err := s.openOptional(u.EmailSealed)
		if err != nil {
			return nil, err
		}
		out[i] = provision.User{
			AppID: u.AppID, UserName: u.UserName, Name: u.Name, OrgCode: u.OrgCode, Role: u.Role,
			Enable: u.Enable, Authorized: !u.Revoked, Position: u.Position, EmployeeCode: u.EmployeeCode,
			EmployeeType: u.EmployeeType, Mobile: mobile, Email: email, WorkPlace: u.WorkPlace, EntryDate: u.EntryDate,
		}
	}
	return out, nil
}

// sealOptional seals v, keeping "" as "".
func (s *Service) sealOptional(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	out, err := s.sealer.Seal(v)
	if err != nil {
		return "", fmt.Errorf("seal user contact: %w", err)
	}
	return out, nil
}

// openOptional opens a value sealOptional sealed.
func (s *Service) openOptional(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	out, err := s.sealer.Open(v)
	if err != nil {
		return "", fmt.Errorf("open user contact: %w", err)
	}
	return out, nil
}
