package main

import (
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/isv"
)

// TestLicenseSettings: the license settings reach isv as given, and each
// setting that cannot work is refused naming the flag.
func TestLicenseSettings(t *testing.T) {
	base := []string{"--key", "k-0123456789", "--data-key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "--ak", "ak", "--sk", "sk"}
	cfg, err := resolveArgs(t, append(base, "--license-path", "/lic", "--license-grace", "48h", "--license-check-interval", "2h",
		"--license-usage-interval", "10m", "--license-devices", "unlimited", "--license-key-retention", "96h",
		"--license-rate-code", "5", "--license-rate-address", "7", "--online-license-key-type", "basic",
		"--online-license-fingerprint", "required"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := isv.LicenseConfig{Grace: 48 * time.Hour, CheckInterval: 2 * time.Hour, UsageInterval: 10 * time.Minute,
		UnlimitedDevices: true, KeyRetention: 96 * time.Hour, RatePerCode: 5, RatePerAddress: 7,
		OnlineKeys: isv.KeyTypeBasic, RequireFingerprint: true}
	if cfg.licenses != want || cfg.opts.license.path != "/lic" {
		t.Fatalf("licenses %+v path %s, want %+v /lic", cfg.licenses, cfg.opts.license.path, want)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--license-path", "/produce"}, "--license-path /produce is the --produce-path"},
		{[]string{"--license-path", "/api/v1/licenses/activate"}, "under the license service"},
		{[]string{"--license-path", "/api/v1/licenses"}, "under the license service"},
		{[]string{"--license-path", "license"}, "--license-path"},
		{[]string{"--license-grace", "0s"}, "--license-grace"},
		{[]string{"--license-grace", "800h"}, "shorter than --license-grace"},
		{[]string{"--license-rate-code", "0"}, "--license-rate-code"},
		{[]string{"--license-devices", "some"}, "--license-devices"},
		{[]string{"--online-license-key-type", "kit"}, "--online-license-key-type"},
		{[]string{"--online-license-fingerprint", "maybe"}, "--online-license-fingerprint"},
	} {
		_, err := resolveArgs(t, append(append([]string(nil), base...), tc.args...), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
