package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version, commit and date are stamped at link time by scripts/release:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=2026-12-07T00:00:00Z"
//
// Each one left empty is taken from what the Go toolchain recorded in the
// binary (module version, vcs.revision, vcs.time), or left out.
var (
	version string
	commit  string
	date    string
)

// maxStdinBody bounds what the tools read from standard input, so a runaway
// pipe cannot exhaust memory. KooGallery bodies are a few kilobytes.
const maxStdinBody = 16 << 20

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "koobridge",
		Short:         "Seller-side integration for Huawei Cloud KooGallery",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Bare "koobridge" prints help rather than failing.
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	// --version (and -v) prints the same line as "koobridge version".
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageErrorf("%v", err)
	})
	root.AddCommand(
		newSignCommand(),
		newEncryptCommand(),
		newDecryptCommand(),
		newVerifyCommand(),
		newVersionCommand(),
		newServeCommand(),
		newEmulateCommand(),
		newDemoCommand(),
		newConformanceCommand(),
		newKeygenCommand(),
		newLicenseCommand(),
		newHealthcheckCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the koobridge version, commit, build date and Go toolchain",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}

// versionLine is what "koobridge version" and "koobridge --version" print:
//
//	koobridge v1.2.3 (commit 0123456789ab, built 2026-12-07T00:00:00Z, go1.26.8 linux/amd64)
//
// The commit and date are left out when neither the link-time stamps nor
// the toolchain's VCS information give them (go build -buildvcs=false);
// "+dirty" marks a VCS commit built with uncommitted changes.
func versionLine() string {
	info, _ := debug.ReadBuildInfo()
	var parts []string
	if c := buildCommit(info); c != "" {
		parts = append(parts, "commit "+c)
	}
	if d := buildDate(info); d != "" {
		parts = append(parts, "built "+d)
	}
	parts = append(parts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return "koobridge " + buildVersion() + " (" + strings.Join(parts, ", ") + ")"
}

// buildVersion returns the version stamped at link time, else the module
// version (set by "go install …@vX", or derived from the VCS tag by go
// build in a clone), else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "devel"
}

// buildCommit is the stamped commit, else the VCS revision, abbreviated to
// 12 characters; "" when neither is known.
func buildCommit(info *debug.BuildInfo) string {
	c, dirty := commit, false
	if c == "" {
		c, dirty = buildSetting(info, "vcs.revision"), buildSetting(info, "vcs.modified") == "true"
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if c != "" && dirty {
		c += "+dirty"
	}
	return c
}

// buildDate is the stamped date, else the VCS commit time; "" when neither
// is known.
func buildDate(info *debug.BuildInfo) string {
	if date != "" {
		return date
	}
	return buildSetting(info, "vcs.time")
}

// buildSetting returns a -buildvcs setting of info ("" for a nil info).
func buildSetting(info *debug.BuildInfo, key string) string {
	if info == nil {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// noArgs rejects positional arguments with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// readBody reads the request or response body from standard input, byte for
// byte: signatures cover the exact bytes, so nothing is trimmed. An
// interactive terminal counts as an empty body, so "sign apig" for a GET does
// not wait for input.
func readBody(cmd *cobra.Command) ([]byte, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return nil, nil
		}
	}
	body, err := io.ReadAll(io.LimitReader(in, maxStdinBody+1))
	if err != nil {
		return nil, usageErrorf("read body from standard input: %v", err)
	}
	if len(body) > maxStdinBody {
		return nil, usageErrorf("body on standard input is larger than %d bytes", maxStdinBody)
	}
	return body, nil
}

// keyFlags holds one shared-secret key option of the protocol tools:
// --<name> and --<name>-file (name "key" unless registered otherwise).
type keyFlags struct {
	name    string
	key     string
	keyFile string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	k.registerAs(cmd, "key", "the KooGallery key (the Key value from Seller Center key management)")
}

// registerAs declares --name and --name-file.
func (k *keyFlags) registerAs(cmd *cobra.Command, name, usage string) {
	k.name = name
	cmd.Flags().StringVar(&k.key, name, "", usage)
	cmd.Flags().StringVar(&k.keyFile, name+"-file", "", "read --"+name+" from this file (keeps it out of the process list)")
}

// flag is the option's name, "key" when it was not registered.
func (k *keyFlags) flag() string {
	if k.name == "" {
		return "key"
	}
	return k.name
}

// value returns the key, from --key or --key-file; it is required. The
// file's trailing line break is dropped; every other byte, spaces
// included, is part of the key.
func (k *keyFlags) value() (string, error) {
	key, err := k.optional()
	if err == nil && key == "" {
		return "", usageErrorf("--%s is required", k.flag())
	}
	return key, err
}

// optional is value for a key that may be absent ("").
func (k *keyFlags) optional() (string, error) {
	name := k.flag()
	switch {
	case k.key != "" && k.keyFile != "":
		return "", usageErrorf("give either --%s or --%s-file, not both", name, name)
	case k.keyFile != "":
		b, err := os.ReadFile(k.keyFile)
		if err != nil {
			return "", usageErrorf("read --%s-file: %v", name, err)
		}
		key := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if key == "" {
			return "", usageErrorf("--%s-file %s is empty", name, k.keyFile)
		}
		return key, nil
	}
	return k.key, nil
}

// typedKeyFlags are the keys of the interface types other than the basic
// one, for the tools that play KooGallery (emulate, conformance): one key
// each, as KooGallery has; each empty one means the basic key.
type typedKeyFlags struct {
	kit, license, general keyFlags
}

func (t *typedKeyFlags) register(cmd *cobra.Command) {
	t.kit.registerAs(cmd, "kit-key", "the key bound to the joint-operation sync interfaces (联营SaaS同步接口; default: --key)")
	t.license.registerAs(cmd, "license-key", "the key bound to the license interfaces (License; default: --key)")
	t.general.registerAs(cmd, "general-key", "the key bound to the general interfaces (通用接口, order notification; default: --key)")
}

// values returns the kit, license and general keys, each from its flag,
// its file or its environment variable (KOOBRIDGE_KIT_KEY, …); "" when
// none is given.
func (t *typedKeyFlags) values(cmd *cobra.Command, getenv func(string) string) (kit, license, general string, err error) {
	var out [3]string
	for i, k := range []*keyFlags{&t.kit, &t.license, &t.general} {
		fs := cmd.Flags()
		if !fs.Changed(k.name) && !fs.Changed(k.name+"-file") {
			k.key = getenv(envName(k.name))
		}
		if out[i], err = k.optional(); err != nil {
			return "", "", "", err
		}
	}
	return out[0], out[1], out[2], nil
}
