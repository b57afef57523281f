package main

import (
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/isv"
)

// licenseOptions are serve's settings of license products and of the
// license service for the vendor's client software (docs/license.md).
type licenseOptions struct {
	path              string
	grace             time.Duration
	checkInterval     time.Duration
	usageInterval     time.Duration
	devices           string
	keyRetention      time.Duration
	ratePerCode       int
	ratePerAddress    int
	onlineKeyType     string
	onlineFingerprint string
}

func (o *licenseOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.path, "license-path", isv.DefaultLicensePath, "URL path of license products' calls: license codes 2.0 and online license (POST), license 1.0 (GET, also at --produce-path)")
	fs.DurationVar(&o.grace, "license-grace", isv.DefaultLicenseGrace, "license service: the offline grace, how long after KooGallery last confirmed a code its cached answer stands while KooGallery cannot be reached")
	fs.DurationVar(&o.checkInterval, "license-check-interval", isv.DefaultLicenseCheckInterval, "license service: how often at most a code is queried at KooGallery")
	fs.DurationVar(&o.usageInterval, "license-usage-interval", isv.DefaultLicenseUsageInterval, "license service: the period of the software usage statistics push")
	fs.StringVar(&o.devices, "license-devices", "amount", "license service: devices one code serves: amount (the quantity bought, once KooGallery has said it; not counted before) or unlimited")
	fs.DurationVar(&o.keyRetention, "license-key-retention", isv.DefaultLicenseKeyRetention, "license service: how long a rotated-out token key stays published (at least --license-grace)")
	fs.IntVar(&o.ratePerCode, "license-rate-code", isv.DefaultLicenseRatePerCode, "license service: requests per minute one license code may make")
	fs.IntVar(&o.ratePerAddress, "license-rate-address", isv.DefaultLicenseRatePerAddress, "license service: requests per minute one client address may make")
	fs.StringVar(&o.onlineKeyType, "online-license-key-type", string(isv.KeyTypeLicense), "the key type that signs online-license calls: license or basic (UNCONFIRMED which one KooGallery uses)")
	fs.StringVar(&o.onlineFingerprint, "online-license-fingerprint", "optional", "online license: a device fingerprint in getLicenseAsync is optional or required (000903 without one)")
}

// resolve checks the settings and returns isv's view of them.
func (o *licenseOptions) resolve(producePath string) (isv.LicenseConfig, error) {
	var c isv.LicenseConfig
	if err := inbound.CheckPath(o.path); err != nil {
		return c, usageErrorf("--license-path %q: %v", o.path, err)
	}
	if o.path+"/" == isv.LicensePathPrefix || strings.HasPrefix(o.path, isv.LicensePathPrefix) {
		return c, usageErrorf("--license-path %s is under the license service's %s", o.path, isv.LicensePathPrefix)
	}
	if o.path == producePath {
		return c, usageErrorf("--license-path %s is the --produce-path: online-license calls share the SaaS activities' names, so license products need a path of their own", o.path)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--license-grace", o.grace}, {"--license-check-interval", o.checkInterval}, {"--license-usage-interval", o.usageInterval}, {"--license-key-retention", o.keyRetention}} {
		if d.v <= 0 {
			return c, usageErrorf("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if o.keyRetention < o.grace {
		return c, usageErrorf("--license-key-retention %v is shorter than --license-grace %v: tokens clients keep offline would stop verifying after a key rotation", o.keyRetention, o.grace)
	}
	if o.ratePerCode < 1 || o.ratePerAddress < 1 {
		return c, usageErrorf("--license-rate-code and --license-rate-address: want at least 1 (got %d and %d)", o.ratePerCode, o.ratePerAddress)
	}
	switch o.devices {
	case "amount":
	case "unlimited":
		c.UnlimitedDevices = true
	default:
		return c, usageErrorf("--license-devices %q: want amount or unlimited", o.devices)
	}
	switch isv.KeyType(o.onlineKeyType) {
	case isv.KeyTypeLicense, isv.KeyTypeBasic:
		c.OnlineKeys = isv.KeyType(o.onlineKeyType)
	default:
		return c, usageErrorf("--online-license-key-type %q: want license or basic", o.onlineKeyType)
	}
	switch o.onlineFingerprint {
	case "optional":
	case "required":
		c.RequireFingerprint = true
	default:
		return c, usageErrorf("--online-license-fingerprint %q: want optional or required", o.onlineFingerprint)
	}
	c.Grace, c.CheckInterval, c.UsageInterval, c.KeyRetention = o.grace, o.checkInterval, o.usageInterval, o.keyRetention
	c.RatePerCode, c.RatePerAddress = o.ratePerCode, o.ratePerAddress
	return c, nil
}
