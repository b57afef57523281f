package main

import (
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol/sign"
)

// TestV1Settings: the SaaS V1 settings from flag, environment and YAML,
// their defaults, and the refusals of bad values.
func TestV1Settings(t *testing.T) {
	c, err := resolveArgs(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.v1EncryptType != sign.EncryptAES256 || c.opts.v1TimestampWindow != 0 {
		t.Errorf("defaults: encrypt type %q, window %v; want 1 and none", c.v1EncryptType, c.opts.v1TimestampWindow)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"flags": {append([]string{"--v1-buyer-encrypt-type", "2", "--v1-timestamp-window", "5m"}, base...), nil},
		"env":   {base, map[string]string{"KOOBRIDGE_V1_BUYER_ENCRYPT_TYPE": "2", "KOOBRIDGE_V1_TIMESTAMP_WINDOW": "5m"}},
		"yaml":  {append([]string{"--config", writeFile(t, "v1.yaml", "v1-buyer-encrypt-type: \"2\"\nv1-timestamp-window: 5m\n")}, base...), nil},
	} {
		c, err := resolveArgs(t, tc.args, tc.env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.v1EncryptType != sign.EncryptAES128 || c.opts.v1TimestampWindow != 5*time.Minute {
			t.Errorf("%s: encrypt type %q, window %v; want 2 and 5m", name, c.v1EncryptType, c.opts.v1TimestampWindow)
		}
	}
	for _, bad := range [][]string{{"--v1-buyer-encrypt-type", "3"}, {"--v1-timestamp-window", "-1s"}} {
		if _, err := resolveArgs(t, append(bad, base...), nil); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: err %v, want one naming %s", bad, err, bad[0])
		}
	}
}
