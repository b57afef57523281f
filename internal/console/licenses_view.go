package console

import (
	"encoding/json"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// licenseView is a license code as the admin API shows it.
type licenseView struct {
	LicenseCode string     `json:"licenseCode"`
	Test        bool       `json:"test"`
	Status      string     `json:"status"`
	ExpireTime  *time.Time `json:"expireTime,omitempty"`
	// ExpireEstimated says ExpireTime is only activate's estimate
	// (license-openapi.md §A.8.1), not yet told by a renewal or a query.
	ExpireEstimated bool       `json:"expireEstimated"`
	OrderID         string     `json:"orderId,omitempty"`
	OrderLineID     string     `json:"orderLineId,omitempty"`
	ProductID       string     `json:"productId,omitempty"`
	Amount          int        `json:"amount"` // 0: not known yet
	ActivatedAt     *time.Time `json:"activatedAt,omitempty"`
	CheckedAt       *time.Time `json:"checkedAt,omitempty"`
	// ConfirmedAt is the last production call that confirmed the code
	// alive (a renewal into the future, an UNFREEZE): the offline grace
	// runs from the latest of it, activatedAt and checkedAt.
	ConfirmedAt  *time.Time `json:"confirmedAt,omitempty"`
	RemoteStatus string     `json:"remoteStatus,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	Version      int64      `json:"version"`
}

func viewLicense(c store.LicenseCode) licenseView {
	return licenseView{
		LicenseCode: c.Code, Test: c.Test, Status: string(c.Status), ExpireTime: timePtr(c.ExpireTime), ExpireEstimated: c.ExpireEstimated,
		OrderID: c.OrderID, OrderLineID: c.OrderLineID, ProductID: c.ProductID, Amount: c.Amount,
		ActivatedAt: timePtr(c.ActivatedAt), CheckedAt: timePtr(c.CheckedAt), ConfirmedAt: timePtr(c.ConfirmedAt), RemoteStatus: c.RemoteStatus,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(), Version: c.Version,
	}
}

// licenseDeviceView is one device of a license code: the keyed hash of its
// fingerprint, which is all koobridge keeps of it.
type licenseDeviceView struct {
	DeviceHash string     `json:"deviceHash"`
	FirstSeen  time.Time  `json:"firstSeen"`
	LastSeen   time.Time  `json:"lastSeen"`
	ReportedAt *time.Time `json:"reportedAt,omitempty"` // last usage-statistics push that included it
}

// licenseEventView is one entry of a license code's history.
type licenseEventView struct {
	ID     int64           `json:"id"`
	Kind   string          `json:"kind"`
	Source string          `json:"source"`
	Detail json.RawMessage `json:"detail,omitempty"`
	At     time.Time       `json:"at"`
}

// licenseDetailView is a license code with its devices and newest
// history, as GET /admin/api/licenses/{code} answers it.
type licenseDetailView struct {
	licenseView
	Devices []licenseDeviceView `json:"devices"`
	History []licenseEventView  `json:"history"`
}

func viewLicenseDetail(d licenseData) licenseDetailView {
	v := licenseDetailView{
		licenseView: viewLicense(d.code),
		Devices:     make([]licenseDeviceView, 0, len(d.devices)),
		History:     make([]licenseEventView, 0, len(d.events)),
	}
	for _, dev := range d.devices {
		v.Devices = append(v.Devices, licenseDeviceView{
			DeviceHash: dev.Device, FirstSeen: dev.FirstSeen.UTC(), LastSeen: dev.LastSeen.UTC(), ReportedAt: timePtr(dev.ReportedAt),
		})
	}
	for _, e := range d.events {
		v.History = append(v.History, licenseEventView{
			ID: e.ID, Kind: e.Kind, Source: e.Source, Detail: rawOrString(e.Detail), At: e.At.UTC(),
		})
	}
	return v
}

// grantView is a license koobridge had the vendor generate. The license
// content is never part of it, not even sealed: only its SHA-256. Neither
// is the grant's idempotency key, which is derived from the device
// fingerprint for an online license.
type grantView struct {
	ID         int64           `json:"id"`
	Kind       string          `json:"kind"`
	InstanceID string          `json:"instanceId,omitempty"`
	EventID    string          `json:"eventId,omitempty"`
	OrderID    string          `json:"orderId,omitempty"`
	ProductID  string          `json:"productId,omitempty"`
	Test       bool            `json:"test"`
	State      string          `json:"state"`
	Status     string          `json:"status"`
	ExpireTime *time.Time      `json:"expireTime,omitempty"`
	Request    json.RawMessage `json:"request,omitempty"`
	Type       string          `json:"type,omitempty"`
	FileName   string          `json:"fileName,omitempty"`
	SHA256     string          `json:"sha256,omitempty"`
	Attempts   int             `json:"attempts"` // upload attempts so far
	LastError  string          `json:"lastError,omitempty"`
	UploadedAt *time.Time      `json:"uploadedAt,omitempty"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
	Version    int64           `json:"version"`
}

func viewGrant(g store.LicenseGrant) grantView {
	return grantView{
		ID: g.ID, Kind: string(g.Kind), InstanceID: g.InstanceID, EventID: g.EventID, OrderID: g.OrderID,
		ProductID: g.ProductID, Test: g.Test, State: string(g.State), Status: string(g.Status),
		ExpireTime: timePtr(g.ExpireTime), Request: rawOrString(g.Request), Type: g.Type, FileName: g.FileName,
		SHA256: g.SHA256, Attempts: g.Attempts, LastError: g.LastError, UploadedAt: timePtr(g.UploadedAt),
		CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC(), Version: g.Version,
	}
}

// uploadView is one attempt at uploading a grant to KooGallery.
type uploadView struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"`
	HTTPStatus int       `json:"httpStatus"` // 0: no answer came
	Code       string    `json:"code,omitempty"`
	Message    string    `json:"message,omitempty"`
}

// grantDetailView is a grant with its upload attempts, oldest first, as
// GET /admin/api/license-grants/{id} answers it.
type grantDetailView struct {
	grantView
	Uploads []uploadView `json:"uploads"`
}

func viewGrantDetail(g store.LicenseGrant, ups []store.LicenseUpload) grantDetailView {
	v := grantDetailView{grantView: viewGrant(g), Uploads: make([]uploadView, 0, len(ups))}
	for _, u := range ups {
		v.Uploads = append(v.Uploads, uploadView{
			ID: u.ID, At: u.At.UTC(), Outcome: u.Outcome, HTTPStatus: u.HTTPStatus, Code: u.Code, Message: u.Message,
		})
	}
	return v
}
