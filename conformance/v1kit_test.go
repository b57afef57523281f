package conformance

import (
	"slices"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// v1IDs and kitIDs are the case IDs of the v1 and kit profiles, in run
// order.
var (
	v1IDs = []string{
		"v1/purchase", "v1/repeat-new-instance", "v1/query", "v1/renewal", "v1/upgrade", "v1/expire", "v1/release",
		"v1/release-twice", "v1/instance-status", "v1/missing-auth-token", "v1/bad-auth-token", "v1/wrong-key",
		"v1/unknown-instance", "v1/missing-field",
	}
	kitIDs = []string{
		"kit/v1/tenant-sync", "kit/v1/application-sync", "kit/v1/all-org-sync", "kit/v1/auth-add", "kit/v1/auth-modify",
		"kit/v1/auth-delete", "kit/v1/single-org-sync", "kit/v1/repeat-add", "kit/v1/delete-unknown",
		"kit/v1/too-many-users", "kit/v1/bad-secret", "kit/v1/test-account", "kit/v1/missing-auth-token",
		"kit/v1/bad-auth-token", "kit/v1/unbind",
		"kit/v2/tenant-sync", "kit/v2/application-sync", "kit/v2/all-org-sync", "kit/v2/auth-add", "kit/v2/auth-modify",
		"kit/v2/auth-revoke", "kit/v2/auth-delete", "kit/v2/single-org-sync", "kit/v2/repeat-add",
		"kit/v2/delete-unknown", "kit/v2/too-many-users", "kit/v2/bad-secret", "kit/v2/test-account",
		"kit/v2/bad-sign", "kit/v2/stale-timestamp", "kit/v2/replayed-nonce", "kit/v2/sign-form-b", "kit/v2/unbind",
	}
)

// kitOps are the Kit interfaces.
var kitOps = []string{protocol.KitTenantSync, protocol.KitApplicationSync, protocol.KitAuthSync, protocol.KitSingleOrgSync, protocol.KitAllOrgSync}

// TestV1KitCorrectSellerPasses: the correct seller passes the v1 and kit
// profiles, with the Kit calls at its root and under its production path,
// and every case made its calls.
func TestV1KitCorrectSellerPasses(t *testing.T) {
	for _, tt := range []struct {
		name      string
		kitTarget string
	}{
		{"kit at the root", ""},
		{"kit under the production path", "http://{host}/produce"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runAgainst(t, testseller.Faults{}, Config{Profile: "v1,kit", KitTarget: tt.kitTarget})
			if !r.Passed() {
				t.Fatalf("a correct seller failed:%s", describe(r))
			}
			want := append(append(slices.Clone(v1IDs), kitIDs...), "edge/deadline")
			if got := caseIDs(r); !slices.Equal(got, want) {
				t.Fatalf("cases %q,\nwant %q", got, want)
			}
			if r.Profile != "v1,kit" {
				t.Errorf("report profile %q, want v1,kit", r.Profile)
			}
			prefix := "/produceAPI/"
			if tt.kitTarget != "" {
				prefix = "/produce/produceAPI/"
			}
			for _, c := range r.Cases {
				if c.ID != "edge/deadline" && len(c.Exchanges) == 0 {
					t.Errorf("%s made no call", c.ID)
				}
				path := prefix
				if strings.HasPrefix(c.ID, "kit/v2/") {
					path += "v2/"
				}
				for _, x := range c.Exchanges {
					if strings.HasPrefix(c.ID, "kit/") && slices.Contains(kitOps, x.Interface) && !strings.HasSuffix(x.Request.URL, path+x.Interface) {
						t.Errorf("%s: Kit call to %s, want ...%s%s", c.ID, x.Request.URL, path, x.Interface)
					}
				}
			}
			c, _ := r.Case("kit/v1/too-many-users")
			if len(c.Exchanges) != 1 || c.Exchanges[0].ResultCode != "000002" || len(c.Exchanges[0].Violations) != 0 {
				t.Errorf("kit/v1/too-many-users: %+v, want one call answered 000002", c.Exchanges)
			}
		})
	}
}

// TestV1KitFaultsNamed: against each V1 or Kit fault of the test seller
// exactly the cases that check it fail, with the rule and a message that
// name the fault; every other case passes.
func TestV1KitFaultsNamed(t *testing.T) {
	bodySign := string(emulator.RuleBodySign)
	everyV1 := map[string][]string{}
	for _, id := range v1IDs {
		everyV1[id] = []string{bodySign}
	}
	tests := []struct {
		name    string
		faults  testseller.Faults
		profile string
		want    map[string][]string
		message string
	}{
		{"V1SkipAuthToken", testseller.Faults{V1SkipAuthToken: true}, ProfileV1, map[string][]string{
			"v1/missing-auth-token": {RuleAuthToken}, "v1/bad-auth-token": {RuleAuthToken}, "v1/wrong-key": {RuleAuthToken},
		}, "a V1 call"},
		{"V1NoBodySign", testseller.Faults{V1NoBodySign: true}, ProfileV1, everyV1, "Body-Sign"},
		{"V1NewInstanceEveryCall", testseller.Faults{V1NewInstanceEveryCall: true}, ProfileV1, map[string][]string{
			"v1/repeat-new-instance": {RuleIdempotentNewInstance},
		}, "created a second instance for the same order"},
		{"V1UnknownInstanceOK", testseller.Faults{V1UnknownInstanceOK: true}, ProfileV1, map[string][]string{
			"v1/unknown-instance": {RuleUnknownInstance},
		}, "which it never issued, want 000003"},
		{"V1SkipValidation", testseller.Faults{V1SkipValidation: true}, ProfileV1, map[string][]string{
			"v1/missing-field": {RuleValidation},
		}, "it does not validate requests"},
		{"KitSkipAuthToken", testseller.Faults{KitSkipAuthToken: true}, ProfileKit, map[string][]string{
			"kit/v1/missing-auth-token": {RuleAuthToken}, "kit/v1/bad-auth-token": {RuleAuthToken},
		}, "the seller accepted a Kit v1 call"},
		{"KitSkipSign", testseller.Faults{KitSkipSign: true}, ProfileKit, map[string][]string{
			"kit/v2/bad-sign": {RuleSignature},
		}, "x-sign"},
		{"KitStaleTimestampOK", testseller.Faults{KitStaleTimestampOK: true}, ProfileKit, map[string][]string{
			"kit/v2/stale-timestamp": {RuleTimestamp},
		}, "it does not check the 60 s x-timestamp window"},
		{"KitReplayOK", testseller.Faults{KitReplayOK: true}, ProfileKit, map[string][]string{
			"kit/v2/replayed-nonce": {RuleNonce},
		}, "it does not remember nonces"},
		{"KitRepeatAddFails", testseller.Faults{KitRepeatAddFails: true}, ProfileKit, map[string][]string{
			"kit/v1/repeat-add": {RuleKitIdempotent}, "kit/v2/repeat-add": {RuleKitIdempotent},
		}, "a repeated add must succeed"},
		{"KitDeleteUnknownFails", testseller.Faults{KitDeleteUnknownFails: true}, ProfileKit, map[string][]string{
			"kit/v1/delete-unknown": {RuleKitDeleteUnknown}, "kit/v2/delete-unknown": {RuleKitDeleteUnknown},
		}, "deleting what is not there must succeed"},
		{"KitNoUserLimit", testseller.Faults{KitNoUserLimit: true}, ProfileKit, map[string][]string{
			"kit/v1/too-many-users": {RuleKitUserLimit}, "kit/v2/too-many-users": {RuleKitUserLimit},
		}, "it does not enforce the limit of 500 users"},
		{"KitAcceptBadSecret", testseller.Faults{KitAcceptBadSecret: true}, ProfileKit, map[string][]string{
			"kit/v1/bad-secret": {RuleKitClientSecret}, "kit/v2/bad-secret": {RuleKitClientSecret},
		}, "cannot be decrypted with its private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAgainst(t, tt.faults, Config{Profile: tt.profile})
			wantRules(t, r, tt.want)
			for id, rules := range tt.want {
				c, _ := r.Case(id)
				for _, f := range c.Failures {
					if slices.Contains(rules, f.Rule) && !strings.Contains(f.Message, tt.message) {
						t.Errorf("%s: %s message %q does not say %q", id, f.Rule, f.Message, tt.message)
					}
					if f.Spec == "" {
						t.Errorf("%s: %s has no spec section", id, f.Rule)
					}
				}
			}
		})
	}
}

// TestKitNeedsPublicKey: the kit profile without the seller's public key
// is a configuration error; "all" leaves v1 and kit out, so it needs none.
func TestKitNeedsPublicKey(t *testing.T) {
	base := Config{Target: "http://127.0.0.1:1/produce", Key: testKey, AK: testAK, SK: testSK}
	for _, tt := range []struct {
		profile string
		wantErr string
	}{
		{ProfileKit, "RSA public key"},
		{"period," + ProfileKit, "RSA public key"},
		{ProfileV1, ""},
		{ProfileAll, ""},
	} {
		cfg := base
		cfg.Profile = tt.profile
		err := cfg.Validate()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("profile %s: Validate() = %v, want an error saying %q", tt.profile, err, tt.wantErr)
		}
	}
	names, err := Config{Profile: ProfileAll}.profileNames()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileV1 || p.name == ProfileKit }) {
		t.Errorf("all runs %+v, want v1 and kit left out", names)
	}
	cfg := base
	cfg.Profile, cfg.KitTarget = ProfileV1, "ftp://example.com"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "KitTarget") {
		t.Errorf("a KitTarget that is not http: %v, want an error naming KitTarget", err)
	}
}
