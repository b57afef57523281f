package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUsageSettings: the metering settings reach isv as given, from flags,
// the environment, a token file and a YAML list; each setting that cannot
// work is refused naming the flag.
func TestUsageSettings(t *testing.T) {
	base := []string{"--key", "k-0123456789", "--data-key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "--ak", "ak", "--sk", "sk"}
	cfg, err := resolveArgs(t, append(base, "--usage-token", "usage-token-0123456789", "--usage-push-interval", "30s",
		"--usage-settle", "2m", "--usage-daily-products", "P1,P2", "--usage-daily-products", "P3", "--usage-day-zone", "-05:30"), nil)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.usage
	if !slices.Equal(u.Tokens, []string{"usage-token-0123456789"}) || u.PushInterval != 30*time.Second || u.Settle != 2*time.Minute ||
		!slices.Equal(u.DailyProducts, []string{"P1", "P2", "P3"}) {
		t.Errorf("usage %+v", u)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, u.DayZone).Zone(); off != -(5*3600 + 30*60) {
		t.Errorf("day zone offset %d", off)
	}

	// The environment and a token file; a rotation's two tokens.
	tokenFile := writeFile(t, "usage-token", "file-token-0123456789\n\nnext-token-0123456789\n")
	cfg, err = resolveArgs(t, append(base, "--usage-token-file", tokenFile), map[string]string{"KOOBRIDGE_USAGE_DAY_ZONE": "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.usage.Tokens, []string{"file-token-0123456789", "next-token-0123456789"}) || cfg.usage.DayZone != time.UTC {
		t.Errorf("usage from a file and the environment: %+v", cfg.usage)
	}
	cfg, err = resolveArgs(t, append(base, "--usage-token", "usage-token-0123456789", "--usage-token", "other-token-0123456789"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.usage.Tokens, []string{"usage-token-0123456789", "other-token-0123456789"}) {
		t.Errorf("two --usage-token: %v", cfg.usage.Tokens)
	}

	// The token from the environment.
	cfg, err = resolveArgs(t, base, map[string]string{"KOOBRIDGE_USAGE_TOKEN": "env-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.usage.Tokens, []string{"env-token-0123456789"}) {
		t.Errorf("the token from KOOBRIDGE_USAGE_TOKEN: %v", cfg.usage.Tokens)
	}

	// A YAML list of daily products.
	yml := writeFile(t, "koobridge.yaml", "usage-daily-products:\n  - A\n  - B\n")
	cfg, err = resolveArgs(t, append(base, "--config", yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.usage.DailyProducts, []string{"A", "B"}) {
		t.Errorf("daily products from YAML: %v", cfg.usage.DailyProducts)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--usage-token", "short"}, "--usage-token is too short"},
		{[]string{"--usage-token", "usage-token-0123456789", "--usage-token", "short"}, "--usage-token is too short"},
		{[]string{"--usage-token-file", writeFile(t, "empty", "\n")}, "holds no key"},
		{[]string{"--usage-push-interval", "0s"}, "--usage-push-interval"},
		{[]string{"--usage-push-interval", "500ms"}, "at least 1s"},
		{[]string{"--usage-settle", "-1s"}, "--usage-settle"},
		{[]string{"--usage-daily-products", "P1,,P2"}, "--usage-daily-products"},
		{[]string{"--usage-day-zone", "Asia/Shanghai"}, "--usage-day-zone"},
		{[]string{"--usage-day-zone", "+24:00"}, "--usage-day-zone"},
		{[]string{"--produce-path", "/api/v1/usage"}, "collides"},
	} {
		_, err := resolveArgs(t, append(append([]string(nil), base...), tc.args...), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
