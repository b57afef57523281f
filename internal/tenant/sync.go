package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// SyncTenant applies tenantSync: flag 1 binds (or binds again after a
// deletion) and flag 2 modifies, both storing the enterprise as sent (an
// unknown tenant modified is bound: the tolerant reading); flag 0 unbinds,
// keeping a tombstone and removing the tenant's apps, users and
// departments, unless it names another instance than the tenant's current
// one (then it changes nothing). r must be valid.
func (s *Service) SyncTenant(ctx context.Context, r protocol.TenantSyncRequest) (Result, error) {
	changed, err := s.run(ctx, r.TenantID, r.IsTest(), func(ctx context.Context, c *change) error {
		cur, err := c.tx.Tenant(ctx, r.TenantID)
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := s.now().UTC()
		if r.Flag == protocol.KitFlagDelete {
			if !exists || cur.Status == store.TenantDeleted || otherInstance(r.InstanceID, cur.InstanceID) {
				return nil
			}
			cur.Status, cur.DeletedAt, cur.UpdatedAt, cur.Test = store.TenantDeleted, now, now, r.IsTest()
			if err := c.tx.ClearTenant(ctx, r.TenantID); err != nil {
				return err
			}
			if err := c.tx.UpsertTenant(ctx, cur); err != nil {
				return err
			}
			c.emit(provision.Event{Type: provision.EventTenantDeleted, Tenant: vendorTenant(cur)})
			return nil
		}
		next := store.Tenant{
			ID: r.TenantID, Code: r.TenantCode, Name: r.Name, DomainName: r.DomainName,
			InstanceID: r.InstanceID, OrderID: r.OrderID, Test: r.IsTest(), Status: store.TenantActive,
			CreatedAt: now, UpdatedAt: now,
		}
		active := exists && cur.Status == store.TenantActive
		if active && sameTenant(cur, next) {
			return nil
		}
		if err := c.tx.UpsertTenant(ctx, next); err != nil {
			return err
		}
		typ := provision.EventTenantCreated
		if active {
			typ = provision.EventTenantUpdated
		}
		c.emit(provision.Event{Type: typ, Tenant: vendorTenant(next)})
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return ok(changed), nil
}

// otherInstance reports whether a delete names an instance other than the
// one the tenant or app is bound to now: the spec keys these calls on
// instanceId + tenantId (+ appId), and a late unbinding of an instance the
// enterprise left must not undo its binding to the current one. An empty
// instanceId on either side (the test-account flow) matches any.
func otherInstance(sent, bound string) bool {
	return sent != "" && bound != "" && sent != bound
}

// sameTenant reports whether next would change nothing the vendor sees.
func sameTenant(a, b store.Tenant) bool {
	return a.Code == b.Code && a.Name == b.Name && a.DomainName == b.DomainName &&
		a.InstanceID == b.InstanceID && a.OrderID == b.OrderID
}

// SyncApp applies applicationSync: flag 1 or 2 stores the tenant's OAuth
// client, its secret decrypted with the seller's RSA private key and
// sealed; flag 0 deletes the app and its users (unless it names another
// instance than the app's current one). A secret that does not decrypt is
// refused with 000002 before anything is written; without a private key
// the call is answered 000005 (KooGallery does not retry Kit calls by
// itself: the buyer's retry in the console succeeds once the seller
// configured one). r must be valid.
func (s *Service) SyncApp(ctx context.Context, r protocol.ApplicationSyncRequest) (Result, error) {
	var secret string
	if r.Flag != protocol.KitFlagDelete {
		if s.priv == nil {
			return Result{Code: protocol.CodeInternal,
				Msg: "no RSA private key configured: the client secret cannot be decrypted (set --rsa-private-key-file)"}, nil
		}
		var err error
		if secret, err = sign.DecryptClientSecret(s.priv, r.ClientSecret); err != nil {
			// The error says nothing of the secret; the message names the field.
			return refuse("clientSecret", "cannot be decrypted with the seller's RSA private key (RSA-OAEP)"), nil
		}
	}
	changed, err := s.run(ctx, r.TenantID, r.IsTest(), func(ctx context.Context, c *change) error {
		cur, err := c.tx.TenantApp(ctx, r.TenantID, r.AppID)
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if r.Flag == protocol.KitFlagDelete {
			if !exists || otherInstance(r.InstanceID, cur.InstanceID) {
				return nil
			}
			users, err := appUsers(ctx, c.tx, r.TenantID, r.AppID)
			if err != nil {
				return err
			}
			if _, err := c.tx.DeleteTenantUsers(ctx, r.TenantID, r.AppID, userNames(users)); err != nil {
				return err
			}
			if _, err := c.tx.DeleteTenantApp(ctx, r.TenantID, r.AppID); err != nil {
				return err
			}
			t, err := c.tenantView(ctx)
			if err != nil {
				return err
			}
			vu, err := s.vendorUsers(users)
			if err != nil {
				return err
			}
			c.emit(provision.Event{Type: provision.EventAppDeleted, Tenant: t,
				App: &provision.App{AppID: cur.AppID, ClientID: cur.ClientID}, Users: vu})
			return nil
		}
		if exists && cur.ClientID == r.ClientID && cur.InstanceID == r.InstanceID {
			old, err := s.sealer.Open(cur.ClientSecretSealed)
			if err != nil {
				return fmt.Errorf("open client secret of %s/%s: %w", r.TenantID, r.AppID, err)
			}
			if old == secret {
				return nil
			}
		}
		sealed, err := s.sealer.Seal(secret)
		if err != nil {
			return fmt.Errorf("seal client secret: %w", err)
		}
		now := s.now().UTC()
		if err := c.tx.UpsertTenantApp(ctx, store.TenantApp{
			TenantID: r.TenantID, AppID: r.AppID, ClientID: r.ClientID, ClientSecretSealed: sealed,
			InstanceID: r.InstanceID, CreatedAt: now, UpdatedAt: now,
		}); err != nil {
			return err
		}
		t, err := c.tenantView(ctx)
		if err != nil {
			return err
		}
		typ := provision.EventAppCreated
		if exists {
			typ = provision.EventAppUpdated
		}
		c.emit(provision.Event{Type: typ, Tenant: t,
			App: &provision.App{AppID: r.AppID, ClientID: r.ClientID, ClientSecret: secret}})
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return ok(changed), nil
}

// appUsers lists the users of one app of a tenant.
func appUsers(ctx context.Context, tx store.TenantReader, tenantID, appID string) ([]store.TenantUser, error) {
	all, err := tx.TenantUsers(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var out []store.TenantUser
	for _, u := range all {
		if u.AppID == appID {
			out = append(out, u)
		}
	}
	return out, nil
}

func userNames(users []store.TenantUser) []string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.UserName
	}
	return names
}
