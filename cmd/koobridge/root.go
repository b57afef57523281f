package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; when it
// is empty the module version recorded by the Go toolchain is used.
var version string

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
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the koobridge version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "koobridge %s\n", buildVersion())
			return nil
		},
	}
}

// buildVersion returns the version stamped at link time, else the module
// version (set by "go install …@vX"), else "devel" plus the VCS revision.
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
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel " + s.Value[:12]
		}
	}
	return "devel"
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

// keyFlags holds the shared-secret key options common to the protocol tools.
type keyFlags struct {
	key     string
	keyFile string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.key, "key", "", "the KooGallery key (the Key value from Seller Center key management)")
	cmd.Flags().StringVar(&k.keyFile, "key-file", "", "read the key from this file instead of --key (keeps it out of the process list)")
}

// value returns the key, from --key or --key-file. The file's trailing line
// break is dropped; every other byte, spaces included, is part of the key.
func (k *keyFlags) value() (string, error) {
	switch {
	case k.key != "" && k.keyFile != "":
		return "", usageErrorf("give either --key or --key-file, not both")
	case k.keyFile != "":
		b, err := os.ReadFile(k.keyFile)
		if err != nil {
			return "", usageErrorf("read --key-file: %v", err)
		}
		key := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if key == "" {
			return "", usageErrorf("--key-file %s is empty", k.keyFile)
		}
		return key, nil
	case k.key != "":
		return k.key, nil
	default:
		return "", usageErrorf("--key is required")
	}
}
