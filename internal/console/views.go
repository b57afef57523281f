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
	return instanceView{
		ID: i.ID, OrderID: i.OrderID, OrderLineID: i.OrderLineID, BusinessID: i.BusinessID, Test: i.Test,
		Status: string(i.Status), FrozenBy: i.FrozenBy, OrderState: string(i.OrderState),
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
	Test        bool            `json:"test"`
	Remote      string          `json:"remote,omitempty"`
	Request     json.RawMessage `json:"request,omitempty"`
	Response    json.RawMessage `json:"response,omitempty"`
	ResultCode  string          `json:"resultCode"`
	ResultMsg   string          `json:"resultMsg,omitempty"`
	HTTPStatus  int             `json:"httpStatus"`
	LatencyMS   float64         `json:"latencyMs"`
	Repeat      bool            `json:"repeat"`
	CreatedAt   time.Time       `json:"createdAt"`
}

func viewCalls(calls []store.Call) []callView {
	out := make([]callView, 0, len(calls))
	for _, c := range calls {
		out = append(out, callView{
			ID: c.ID, RequestID: c.RequestID, Interface: c.Interface, Activity: c.Activity, IdemKey: c.IdemKey,
			InstanceID: c.InstanceID, OrderID: c.OrderID, OrderLineID: c.OrderLineID, Test: c.Test,
			Remote: c.Remote, Request: rawOrString(c.Request), Response: rawOrString(c.Response),
			ResultCode: c.ResultCode, ResultMsg: c.ResultMsg, HTTPStatus: c.HTTPStatus,
			LatencyMS: float64(c.Latency.Microseconds()) / 1000, Repeat: c.Repeat, CreatedAt: c.CreatedAt.UTC(),
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
