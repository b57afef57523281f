package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/conformance"
)

func newConformanceCommand() *cobra.Command {
	var (
		target, key, ak, sk  string
		openAPIListen, junit string
		profile              string
		deadline             time.Duration
		bodySignOptional     bool
		requireOptional      bool
		verbose              bool
	)
	cmd := &cobra.Command{
		Use:   "conformance --target URL --key KEY --ak AK --sk SK --openapi-listen HOST:PORT",
		Short: "Check a seller's V2 production interface the way KooGallery does; exit 1 if anything fails",
		Long: `Play KooGallery toward a seller's V2 production interface (in any language) and
check every answer as the Seller Center debugger does: every lifecycle scenario of
the profile's charging modes, then the edge cases (repeated and concurrent
newInstance, a second release, unknown instances, wrong signature, stale
timestamp, missing signature, timestamp or nonce, a timestamp ahead, replayed
nonce, unknown activity, missing and overlong fields, the deadline). A case of an
optional interface (upgradeInstance, changeInstanceCheck) that the seller answers
with 000002 is skipped, unless --require-optional.

While it runs it serves the mocked Open API on --openapi-listen: point the
seller's Open API URL there so its Query Order calls find the test orders.

The report goes to standard output (with --verbose, the calls of passed cases
too); --junit also writes JUnit XML for CI. Exit status: 0 every case passed,
1 a case failed, 2 bad flags or setup. --key and --sk may come from
KOOBRIDGE_KEY and KOOBRIDGE_SK instead.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				key = os.Getenv(envPrefix + "KEY")
			}
			if sk == "" {
				sk = os.Getenv(envPrefix + "SK")
			}
			switch {
			case target == "":
				return usageErrorf("--target is required: the seller's production interface URL")
			case key == "":
				return usageErrorf("--key is required (or KOOBRIDGE_KEY): the key bound to the seller's basic interfaces")
			case ak == "" || sk == "":
				return usageErrorf("--ak and --sk are required (--sk or KOOBRIDGE_SK): the mocked Open API accepts the seller's Query Order calls signed with them")
			case openAPIListen == "":
				return usageErrorf("--openapi-listen is required: where the mocked Open API listens (host:port)")
			case !slices.Contains(conformance.Profiles(), profile):
				return usageErrorf("--profile %q: want %s", profile, strings.Join(conformance.Profiles(), ", "))
			case deadline <= 0:
				return usageErrorf("--deadline %v: want a positive duration", deadline)
			}
			if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageErrorf("--target %q: want an http or https URL", target)
			}
			if _, _, err := net.SplitHostPort(openAPIListen); err != nil {
				return usageErrorf("--openapi-listen %q: want host:port (%v)", openAPIListen, err)
			}
			ln, err := net.Listen("tcp", openAPIListen)
			if err != nil {
				return usageErrorf("--openapi-listen: %v", err)
			}
			// Open the JUnit file first, so a bad path fails at once
			// rather than after the whole run.
			var junitFile *os.File
			if junit != "" {
				if junitFile, err = os.Create(junit); err != nil {
					_ = ln.Close()
					return usageErrorf("--junit: %v", err)
				}
				defer junitFile.Close() // after a successful write, a second Close is harmless
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			report, err := conformance.Run(ctx, conformance.Config{
				Target:           target,
				Key:              key,
				AK:               ak,
				SK:               sk,
				Profile:          profile,
				Deadline:         deadline,
				BodySignOptional: bodySignOptional,
				RequireOptional:  requireOptional,
				OpenAPI:          ln,
				Logger:           slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if report == nil {
				if junitFile != nil {
					_ = junitFile.Close()
					_ = os.Remove(junit) // nothing to report
				}
				return usageErrorf("%v", err) // Run has closed the listener
			}
			write := report.WriteText
			if verbose {
				write = report.WriteTextVerbose
			}
			if werr := write(cmd.OutOrStdout()); werr != nil {
				return fmt.Errorf("write the report: %w", werr)
			}
			if junitFile != nil {
				if werr := writeJUnit(junitFile, report); werr != nil {
					return usageErrorf("--junit: %v", werr)
				}
			}
			if err != nil {
				return rejectedf("%v", err) // interrupted: the report is partial
			}
			if failed := len(report.Failed()); failed > 0 {
				return rejectedf("%d of %d conformance cases failed", failed, len(report.Cases))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "the seller's V2 production interface URL, e.g. https://isv.example.com/produce")
	f.StringVar(&key, "key", "", "the key bound to the seller's basic interfaces (or KOOBRIDGE_KEY)")
	f.StringVar(&ak, "ak", "", "the access key ID the mocked Open API accepts")
	f.StringVar(&sk, "sk", "", "the secret access key the mocked Open API accepts (or KOOBRIDGE_SK)")
	f.StringVar(&openAPIListen, "openapi-listen", "", "host:port to serve the mocked Open API on while the suite runs")
	f.StringVar(&profile, "profile", conformance.ProfileAll, "charging modes to test: period, onetime, ondemand, ondemand-pkg or all")
	f.StringVar(&junit, "junit", "", "also write the report as JUnit XML to this file")
	f.DurationVar(&deadline, "deadline", conformance.DefaultDeadline, "how long an answer may take (saas-v2.md §1.1; 5s, UNCONFIRMED)")
	f.BoolVar(&bodySignOptional, "body-sign-optional", false, "do not fail answers without a Body-Sign header (whether V2 checks it is UNCONFIRMED)")
	f.BoolVar(&requireOptional, "require-optional", false, "fail, rather than skip, cases of optional interfaces (upgradeInstance, changeInstanceCheck) the seller answers 000002 to")
	f.BoolVar(&verbose, "verbose", false, "show what was sent and what came back for passed cases too")
	return cmd
}

// writeJUnit writes the report's JUnit XML to f and closes it.
func writeJUnit(f *os.File, r *conformance.Report) error {
	if err := r.WriteJUnit(f); err != nil {
		return err
	}
	return f.Close()
}
