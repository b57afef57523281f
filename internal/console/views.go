package console

import (
	"encoding/json"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// instanceView is an instance as the admin API shows it. The sealed
// password is never part of it: only whether one is stored.
type instanceView struct {
	ID           string     `json:"id"`
	OrderID      string     `json:"orderId"`
	OrderLineID  string     `json:"orderLineId"`
	BusinessID   string     `json:"businessId,omitempty"`
	Test         bool       `json:"test"`
	Status       string     `json:"status"`
	FrozenBy     string     `json:"frozenBy,omitempty"`
	OrderState   string     `json:"orderState"`
	ProductID    string     `json:"productId,omitempty"`
	SKUCode      string     `json:"skuCode,omitempty"`
	ChargingMode string     `json:"chargingMode,omitempty"`
	PeriodType   string     `json:"periodType,omitempty"`
	PeriodNumber int        `json:"periodNumber,omitempty"`
	LinearValue  string     `json:"linearValue,omitempty"`
	CustomerID   string     `json:"customerId,omitempty"`
	CustomerName string     `json:"customerName,omitempty"`
	ExpireTime   *time.Time `json:"expireTime,omitempty"`
	AppInfo      appView    `json:"appInfo"`
	UsageValue   string     `json:"usageValue,omitempty"`
	UsageTime    *time.Time `json:"usageTime,omitempty"`
	LastError    string     `json:"lastError,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	ReleasedAt   *time.Time `json:"releasedAt,omitempty"`
	Version      int64      `json:"version"`
}

type appView struct {
	FrontEndURL string `json:"frontEndUrl,omitempty"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	PasswordSet bool   `json:"passwordSet"`
	Memo        string `json:"memo,omitempty"`
}

func viewInstance(i store.Instance) instanceView {
	// Why it is frozen, only while it is: an instance released while
	// frozen kept the reason until releasing cleared it.
	frozenBy := ""
	if i.Status == store.StatusFrozen {
		frozenBy = i.FrozenBy
	}
	return instanceView{
		ID: i.ID, OrderID: i.OrderID, OrderLineID: i.OrderLineID, BusinessID: i.BusinessID, Test: i.Test,
		Status: string(i.Status), FrozenBy: frozenBy, OrderState: string(i.OrderState),
		ProductID: i.ProductID, SKUCode: i.SKUCode, ChargingMode: i.ChargingMode,
		PeriodType: i.PeriodType, PeriodNumber: i.PeriodNumber, LinearValue: i.LinearValue,
		CustomerID: i.CustomerID, CustomerName: i.CustomerName, ExpireTime: timePtr(i.ExpireTime),
		AppInfo: appView{
			FrontEndURL: i.AppInfo.FrontEndURL, AdminURL: i.AppInfo.AdminURL, UserName: i.AppInfo.UserName,
			PasswordSet: i.AppInfo.PasswordSealed != "", Memo: i.AppInfo.Memo,
		},
		UsageValue: i.UsageValue, UsageTime: timePtr(i.UsageTime), LastError: i.LastError,
		CreatedAt: i.CreatedAt.UTC(), UpdatedAt: i.UpdatedAt.UTC(), ReleasedAt: timePtr(i.ReleasedAt),
		Version: i.Version,
	}
}

// callView is one ledger row. Request and response are the masked bodies
// the ledger holds; they are embedded as JSON when they are JSON.
type callView struct {
	ID          int64           `json:"id"`
	RequestID   string          `json:"requestId,omitempty"`
	Interface   string          `json:"interface"`
	Activity    string          `json:"activity"`
	IdemKey     string          `json:"idemKey,omitempty"`
	InstanceID  string          `json:"instanceId,omitempty"`
	OrderID     string          `json:"orderId,omitempty"`
	OrderLineID string          `json:"orderLineId,omitempty"`
	TenantID    string          `json:"tenantId,omitempty"`
	Test        bool            `json:"test"`
	Remote      string          `json:"remote,omitempty"`
	Request     json.RawMessage `json:"request,omitempty"`
	Response    json.RawMessage `json:"response,omitempty"`
	ResultCode  string          `json:"resultCode"`
	ResultMsg   string          `json:"resultMsg,omitempty"`
	HTTPStatus  int             `json:"httpStatus"`
	LatencyMS   float64         `json:"latencyMs"` // Latency in milliseconds, to the microsecond
	Repeat      bool            `json:"repeat"`
	CreatedAt   time.Time       `json:"createdAt"`
	// Latency is the server's handling of the call, for the pages.
	Latency time.Duration `json:"-"`
}

func viewCalls(calls []store.Call) []callView {
	out := make([]callView, 0, len(calls))
	for _, c := range calls {
		out = append(out, callView{
			ID: c.ID, RequestID: c.RequestID, Interface: c.Interface, Activity: c.Activity, IdemKey: c.IdemKey,
			InstanceID: c.InstanceID, OrderID: c.OrderID, OrderLineID: c.OrderLineID, TenantID: c.TenantID, Test: c.Test,
			Remote: c.Remote, Request: rawOrString(c.Request), Response: rawOrString(c.Response),
			ResultCode: c.ResultCode, ResultMsg: c.ResultMsg, HTTPStatus: c.HTTPStatus,
			LatencyMS: millis(c.Latency), Repeat: c.Repeat, CreatedAt: c.CreatedAt.UTC(), Latency: c.Latency,
		})
	}
	return out
}

// jobView is one background job.
type jobView struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	UniqueKey   string          `json:"uniqueKey,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	State       string          `json:"state"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"maxAttempts"`
	RunAt       time.Time       `json:"runAt"`
	LockedBy    string          `json:"lockedBy,omitempty"`
	LockedUntil *time.Time      `json:"lockedUntil,omitempty"`
	LastError   string          `json:"lastError,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
}

func viewJob(j store.Job) jobView {
	return jobView{
		ID: j.ID, Kind: j.Kind, UniqueKey: j.UniqueKey, Payload: rawOrString(string(j.Payload)),
		State: string(j.State), Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, RunAt: j.RunAt.UTC(),
		LockedBy: j.LockedBy, LockedUntil: timePtr(j.LockedUntil), LastError: j.LastError,
		CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(),
	}
}

// orderView is an order notification as the API and the console show it:
// the order as Query Order answered it, buyer data masked.
type orderView struct {
	ID          int64           `json:"id"`
	OrderID     string          `json:"orderId"`
	OrderLineID string          `json:"orderLineId"`
	Test        bool            `json:"test"`
	Status      string          `json:"status"`
	Order       json.RawMessage `json:"order,omitempty"`
	LastError   string          `json:"lastError,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
}

func viewOrder(n store.OrderNotification) orderView {
	v := orderView{
		ID: n.ID, OrderID: n.OrderID, OrderLineID: n.OrderLineID, Test: n.Test, Status: string(n.Status),
		LastError: n.LastError, CreatedAt: n.CreatedAt.UTC(), UpdatedAt: n.UpdatedAt.UTC(),
	}
	if n.OrderJSON != "" {
		v.Order = rawOrString(n.OrderJSON)
	}
	return v
}

// rawOrString embeds s as JSON when it is JSON, else as a JSON string.
func rawOrString(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// tenantView is a joint-operation tenant as the admin API shows it.
type tenantView struct {
	TenantID   string     `json:"tenantId"`
	TenantCode string     `json:"tenantCode"`
	Name       string     `json:"name"`
	DomainName string     `json:"domainName,omitempty"`
	InstanceID string     `json:"instanceId,omitempty"`
	OrderID    string     `json:"orderId,omitempty"`
	Status     string     `json:"status"`
	Test       bool       `json:"test"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	DeletedAt  *time.Time `json:"deletedAt,omitempty"`
	Version    int64      `json:"version"`
}

func viewTenant(t store.Tenant) tenantView {
	return tenantView{
		TenantID: t.ID, TenantCode: t.Code, Name: t.Name, DomainName: t.DomainName, InstanceID: t.InstanceID,
		OrderID: t.OrderID, Status: string(t.Status), Test: t.Test, CreatedAt: t.CreatedAt.UTC(),
		UpdatedAt: t.UpdatedAt.UTC(), DeletedAt: timePtr(t.DeletedAt), Version: t.Version,
	}
}

// tenantAppView is a tenant's OAuth client. The client secret is never
// part of it, not even sealed.
type tenantAppView struct {
	AppID      string    `json:"appId"`
	ClientID   string    `json:"clientId"`
	InstanceID string    `json:"instanceId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// tenantUserView is one authorised user. Mobile and e-mail are never part
// of it; Authorized is false once the tenant revoked the user (flag 3).
type tenantUserView struct {
	AppID      string    `json:"appId"`
	UserName   string    `json:"userName"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Enable     bool      `json:"enable"`
	Authorized bool      `json:"authorized"`
	OrgCode    string    `json:"orgCode"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// tenantOrgView is one department; ParentCode is "" at the top.
type tenantOrgView struct {
	OrgCode    string    `json:"orgCode"`
	Name       string    `json:"name"`
	ParentCode string    `json:"parentCode"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// tenantEventView is one outbox event for the vendor, without its payload
// (which carries users' contact data).
type tenantEventView struct {
	Seq       int64     `json:"seq"`
	EventID   string    `json:"eventId"`
	Type      string    `json:"type"`
	State     string    `json:"state"`
	LastError string    `json:"lastError,omitempty"`
	Attempts  int       `json:"attempts"` // failed deliveries so far
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// tenantDetailView is a tenant with its Kit data and newest events, as
// GET /admin/api/tenants/{tenantId} answers it.
type tenantDetailView struct {
	tenantView
	Apps   []tenantAppView   `json:"apps"`
	Users  []tenantUserView  `json:"users"`
	Orgs   []tenantOrgView   `json:"orgs"`
	Events []tenantEventView `json:"events"`
}

func viewTenantDetail(d tenantData) tenantDetailView {
	v := tenantDetailView{
		tenantView: viewTenant(d.tenant),
		Apps:       make([]tenantAppView, 0, len(d.apps)),
		Users:      make([]tenantUserView, 0, len(d.users)),
		Orgs:       make([]tenantOrgView, 0, len(d.orgs)),
		Events:     make([]tenantEventView, 0, len(d.events)),
	}
	for _, a := range d.apps {
		v.Apps = append(v.Apps, tenantAppView{
			AppID: a.AppID, ClientID: a.ClientID, InstanceID: a.InstanceID,
			CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
		})
	}
	for _, u := range d.users {
		v.Users = append(v.Users, tenantUserView{
			AppID: u.AppID, UserName: u.UserName, Name: u.Name, Role: u.Role, Enable: u.Enable,
			Authorized: !u.Revoked, OrgCode: u.OrgCode, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
		})
	}
	for _, o := range d.orgs {
		v.Orgs = append(v.Orgs, tenantOrgView{
			OrgCode: o.OrgCode, Name: o.Name, ParentCode: o.ParentCode,
			CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(),
		})
	}
	for _, e := range d.events {
		v.Events = append(v.Events, viewTenantEvent(e))
	}
	return v
}

func viewTenantEvent(e store.TenantEvent) tenantEventView {
	return tenantEventView{
		Seq: e.Seq, EventID: e.EventID, Type: e.Type, State: string(e.State), LastError: e.LastError,
		Attempts: e.Attempts, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
}

// orgNode is one department in the tree the console draws. Detached is
// why it hangs at the root although it has a parent: "" for a top-level
// department, "unknown parent" when ParentCode names no department of the
// tenant, "cycle" when following parents never reaches the top.
type orgNode struct {
	Org      tenantOrgView
	Detached string
	Children []*orgNode
}

// orgTree arranges departments by ParentCode, keeping the given order
// among siblings. Every department appears exactly once: one whose parent
// is unknown, or that sits in a cycle of parents, is put at the root and
// marked.
func orgTree(orgs []tenantOrgView) []*orgNode {
	nodes := make(map[string]*orgNode, len(orgs))
	for _, o := range orgs {
		nodes[o.OrgCode] = &orgNode{Org: o}
	}
	var roots []*orgNode
	for _, o := range orgs {
		n := nodes[o.OrgCode]
		switch parent, known := nodes[o.ParentCode]; {
		case o.ParentCode == "":
			roots = append(roots, n)
		case !known:
			n.Detached = "unknown parent"
			roots = append(roots, n)
		default:
			parent.Children = append(parent.Children, n)
		}
	}
	// Departments not reachable from a root sit in cycles: detach the
	// first of each cycle (in the given order) so its members show.
	seen := make(map[*orgNode]bool, len(orgs))
	var mark func(n *orgNode)
	mark = func(n *orgNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, c := range n.Children {
			mark(c)
		}
	}
	for _, r := range roots {
		mark(r)
	}
	for _, o := range orgs {
		n := nodes[o.OrgCode]
		if seen[n] {
			continue
		}
		parent := nodes[o.ParentCode]
		for i, c := range parent.Children {
			if c == n {
				parent.Children = append(parent.Children[:i:i], parent.Children[i+1:]...)
				break
			}
		}
		n.Detached = "cycle"
		roots = append(roots, n)
		mark(n)
	}
	return roots
}
