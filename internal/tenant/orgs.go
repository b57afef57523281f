package tenant

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// SyncOrg applies singleOrgSync: flag 1 adds and flag 2 modifies
// (renames or moves) a department, a modify of an unknown one adding it
// and an add of a known one modifying it; flag 0 deletes it. A move that
// would put a department under itself or its own descendants is refused
// (000002) before anything is written. Children of a deleted department
// keep their parentCode and users their orgCode (docs/joint.md). r must be
// valid.
func (s *Service) SyncOrg(ctx context.Context, r protocol.SingleOrgSyncRequest) (Result, error) {
	var res Result
	changed, err := s.run(ctx, r.TenantID, r.IsTest(), func(ctx context.Context, c *change) error {
		res = Result{}
		orgs, err := c.tx.TenantOrgs(ctx, r.TenantID)
		if err != nil {
			return err
		}
		tree := make(map[string]store.TenantOrg, len(orgs))
		for _, o := range orgs {
			tree[o.OrgCode] = o
		}
		old, known := tree[r.OrgCode]
		if r.Flag == protocol.KitFlagDelete {
			if !known {
				return nil
			}
			if _, err := c.tx.DeleteTenantOrg(ctx, r.TenantID, r.OrgCode); err != nil {
				return err
			}
			return c.emitOrg(ctx, provision.EventOrgDeleted, &provision.Org{OrgCode: old.OrgCode, Name: old.Name, ParentCode: old.ParentCode})
		}
		if known && old.Name == r.OrgName && old.ParentCode == r.ParentCode {
			return nil
		}
		if under(tree, r.ParentCode, r.OrgCode) {
			res = refuse("parentCode", fmt.Sprintf("moving department %s under %s would make a cycle", r.OrgCode, r.ParentCode))
			return nil
		}
		now := s.now().UTC()
		if err := c.tx.UpsertTenantOrg(ctx, store.TenantOrg{
			TenantID: r.TenantID, OrgCode: r.OrgCode, Name: r.OrgName, ParentCode: r.ParentCode,
			CreatedAt: now, UpdatedAt: now,
		}); err != nil {
			return err
		}
		ev := &provision.Org{OrgCode: r.OrgCode, Name: r.OrgName, ParentCode: r.ParentCode}
		if !known {
			return c.emitOrg(ctx, provision.EventOrgCreated, ev)
		}
		if old.ParentCode != r.ParentCode {
			ev.Moved, ev.OldParentCode = true, old.ParentCode
		}
		return c.emitOrg(ctx, provision.EventOrgUpdated, ev)
	})
	if err != nil {
		return Result{}, err
	}
	if res.Code != "" {
		return res, nil
	}
	return ok(changed), nil
}

// under reports whether code is parent or one of its ancestors in tree:
// putting code under parent would close a cycle. A parent chain that
// leaves the tree (an unknown parent) ends the walk.
func under(tree map[string]store.TenantOrg, parent, code string) bool {
	for steps := 0; parent != "" && steps <= len(tree); steps++ {
		if parent == code {
			return true
		}
		p, ok := tree[parent]
		if !ok {
			return false
		}
		parent = p.ParentCode
	}
	return parent != ""
}

func (c *change) emitOrg(ctx context.Context, typ provision.EventType, o *provision.Org) error {
	t, err := c.tenantView(ctx)
	if err != nil {
		return err
	}
	c.emit(provision.Event{Type: typ, Tenant: t, Org: o})
	return nil
}

// ReplaceOrgs applies allOrgSync: the tenant's whole tree is replaced by
// the list, in one transaction, and the vendor hears one orgs.replaced
// event with the new tree (none when it is the tree already kept). A list
// that names a department twice or whose parents form a cycle is refused
// (000002) before anything is written. r must be valid.
func (s *Service) ReplaceOrgs(ctx context.Context, r protocol.AllOrgSyncRequest) (Result, error) {
	list := r.Orgs()
	tree := make(map[string]store.TenantOrg, len(list))
	for i, o := range list {
		if _, dup := tree[o.OrgCode]; dup {
			return refuse(fmt.Sprintf("orgInfoList[%d].orgCode", i), "the same orgCode is given twice"), nil
		}
		tree[o.OrgCode] = store.TenantOrg{OrgCode: o.OrgCode, Name: o.OrgName, ParentCode: o.ParentCode}
	}
	for i, o := range list {
		if o.ParentCode != "" && under(tree, o.ParentCode, o.OrgCode) {
			return refuse(fmt.Sprintf("orgInfoList[%d].parentCode", i), fmt.Sprintf("department %s is its own ancestor", o.OrgCode)), nil
		}
	}
	changed, err := s.run(ctx, r.TenantID, r.IsTest(), func(ctx context.Context, c *change) error {
		cur, err := c.tx.TenantOrgs(ctx, r.TenantID)
		if err != nil {
			return err
		}
		if sameTree(cur, tree) {
			return nil
		}
		now := s.now().UTC()
		orgs := make([]store.TenantOrg, 0, len(list))
		view := make([]provision.Org, 0, len(list))
		for _, o := range list {
			orgs = append(orgs, store.TenantOrg{TenantID: r.TenantID, OrgCode: o.OrgCode, Name: o.OrgName,
				ParentCode: o.ParentCode, CreatedAt: now, UpdatedAt: now})
			view = append(view, provision.Org{OrgCode: o.OrgCode, Name: o.OrgName, ParentCode: o.ParentCode})
		}
		slices.SortFunc(view, func(a, b provision.Org) int { return strings.Compare(a.OrgCode, b.OrgCode) })
		if err := c.tx.ReplaceTenantOrgs(ctx, r.TenantID, orgs); err != nil {
			return err
		}
		t, err := c.tenantView(ctx)
		if err != nil {
			return err
		}
		c.emit(provision.Event{Type: provision.EventOrgsReplaced, Tenant: t, Orgs: view})
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return ok(changed), nil
}

// sameTree reports whether the stored departments are exactly tree.
func sameTree(cur []store.TenantOrg, tree map[string]store.TenantOrg) bool {
	if len(cur) != len(tree) {
		return false
	}
	for _, o := range cur {
		n, ok := tree[o.OrgCode]
		if !ok || n.Name != o.Name || n.ParentCode != o.ParentCode {
			return false
		}
	}
	return true
}
