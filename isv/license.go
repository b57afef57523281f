package isv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licenseapi"
	"github.com/koobridge/koobridge/internal/openapi"
)

// Defaults of LicenseConfig and Config.LicensePath.
const (
	// DefaultLicensePath is where license products' calls arrive.
	DefaultLicensePath = "/license"
	// DefaultLicenseGrace is the offline grace of the license service.
	DefaultLicenseGrace = license.DefaultGrace
	// DefaultLicenseCheckInterval is how often at most a code is queried
	// at KooGallery.
	DefaultLicenseCheckInterval = license.DefaultCheckInterval
	// DefaultLicenseUsageInterval is the period of the software usage
	// statistics push.
	DefaultLicenseUsageInterval = license.DefaultUsageInterval
	// DefaultLicenseKeyRetention is how long a rotated-out token key stays
	// published.
	DefaultLicenseKeyRetention = 720 * time.Hour
	// DefaultLicenseRatePerCode and DefaultLicenseRatePerAddress are the
	// license service's requests per minute per code and per address.
	DefaultLicenseRatePerCode    = licenseapi.DefaultRatePerCode
	DefaultLicenseRatePerAddress = licenseapi.DefaultRatePerAddress
)

// LicensePathPrefix is where LicenseHandler answers: the license service
// for the vendor's client software.
const LicensePathPrefix = licenseapi.PathPrefix

// KeyType names a Seller Center interface type, for the settings that
// choose which type's keys sign a family's calls.
type KeyType string

// Key types a setting may name.
const (
	KeyTypeBasic   KeyType = KeyType(inbound.KeyBasic)
	KeyTypeLicense KeyType = KeyType(inbound.KeyLicense)
)

// LicenseConfig configures license products: the license codes KooGallery
// issues and the license service the vendor's client software asks
// (docs/license.md). Zero fields take their defaults.
type LicenseConfig struct {
	// Grace is the offline grace: how long after KooGallery last
	// confirmed a code the service answers from its cache while KooGallery
	// cannot be reached, and how long a token lets the client work
	// offline. Default DefaultLicenseGrace.
	Grace time.Duration
	// CheckInterval is how often at most a code is queried at KooGallery.
	// Default DefaultLicenseCheckInterval.
	CheckInterval time.Duration
	// UsageInterval is the period of the software usage statistics push.
	// Default DefaultLicenseUsageInterval.
	UsageInterval time.Duration
	// UnlimitedDevices lets one code serve any number of devices; by
	// default a code serves at most its amount (the quantity bought), once
	// KooGallery has said it (devices are not counted before).
	UnlimitedDevices bool
	// KeyRetention is how long a rotated-out token key stays published;
	// at least Grace. Default DefaultLicenseKeyRetention.
	KeyRetention time.Duration
	// RatePerCode and RatePerAddress are the requests per minute one code
	// and one client address may make. Defaults
	// DefaultLicenseRatePerCode and DefaultLicenseRatePerAddress.
	RatePerCode, RatePerAddress int
	// OnlineKeys is the key type that signs online-license calls (which
	// one KooGallery uses is UNCONFIRMED): KeyTypeLicense (the default)
	// or KeyTypeBasic.
	OnlineKeys KeyType
	// RequireFingerprint answers getLicenseAsync without a device
	// fingerprint 000903, for node-locked online licenses.
	RequireFingerprint bool
}

// withDefaults checks c and fills in its defaults.
func (c LicenseConfig) withDefaults() (LicenseConfig, error) {
	if c.Grace < 0 || c.CheckInterval < 0 || c.UsageInterval < 0 || c.KeyRetention < 0 || c.RatePerCode < 0 || c.RatePerAddress < 0 {
		return c, errors.New("isv: negative license setting")
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&c.Grace, DefaultLicenseGrace)
	set(&c.CheckInterval, DefaultLicenseCheckInterval)
	set(&c.UsageInterval, DefaultLicenseUsageInterval)
	set(&c.KeyRetention, DefaultLicenseKeyRetention)
	if c.RatePerCode == 0 {
		c.RatePerCode = DefaultLicenseRatePerCode
	}
	if c.RatePerAddress == 0 {
		c.RatePerAddress = DefaultLicenseRatePerAddress
	}
	if c.KeyRetention < c.Grace {
		return c, fmt.Errorf("isv: license key retention %v is shorter than the offline grace %v: tokens clients keep offline would stop verifying after a rotation", c.KeyRetention, c.Grace)
	}
	switch c.OnlineKeys {
	case "":
		c.OnlineKeys = KeyTypeLicense
	case KeyTypeLicense, KeyTypeBasic:
	default:
		return c, fmt.Errorf("isv: online-license key type %q: want %q or %q", c.OnlineKeys, KeyTypeLicense, KeyTypeBasic)
	}
	return c, nil
}

// LicenseHandler returns the license service for the vendor's client
// software (docs/license.md): POST activate and check, GET keys, under
// LicensePathPrefix. Mount it there without stripping the prefix.
func (s *Server) LicenseHandler() http.Handler { return s.licenseAPI }

// noUploader stands in for the Open API client when koobridge has no AK/SK
// (serve --dev): an upload is retried later, as for an outage, so that the
// license goes out once the credentials are configured.
type noUploader struct{}

func (noUploader) UploadLicense(context.Context, string, openapi.LicenseUpload) error {
	return fmt.Errorf("%w (%w): no Open API credentials (AK/SK) to upload the license with", openapi.ErrUnavailable, grant.ErrNotSent)
}
