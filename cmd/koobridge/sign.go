package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/protocol/sign"
)

func newSignCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Compute KooGallery signatures (body on standard input)",
		Long: `Compute the signatures of the KooGallery protocol. Each subcommand prints one value
on standard output. Bodies are read from standard input byte for byte: a trailing
newline is part of the body, so use printf '%s' rather than echo.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("sign needs a subcommand: v2, kit, v1, body, usage or apig")
		},
	}
	cmd.AddCommand(
		newSignNonceCommand("v2", "The V2 production-interface URL signature (upper-case hex)", sign.V2Signature),
		newSignNonceCommand("kit", "The joint-operation Kit x-sign header (hex, raw-body form)", sign.KitSignature),
		newSignNonceCommand("usage", "The usage-push signature header (base64)", func(key, nonce, ts string, body []byte) string {
			return sign.UsageSignature(key, ts, nonce, body)
		}),
		newSignV1Command(),
		newSignBodyCommand(),
		newSignAPIGCommand(),
	)
	return cmd
}

// newSignNonceCommand builds the subcommands that take --key, --nonce and
// --timestamp and sign the body on standard input.
func newSignNonceCommand(name, short string, compute func(key, nonce, timestamp string, body []byte) string) *cobra.Command {
	var (
		k         keyFlags
		nonce, ts string
	)
	cmd := &cobra.Command{
		Use:   name + " --key K --nonce N --timestamp MS",
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := k.value()
			if err != nil {
				return err
			}
			if err := checkNonceAndTimestamp(nonce, ts); err != nil {
				return err
			}
			body, err := readBody(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), compute(key, nonce, ts, body))
			return nil
		},
	}
	k.register(cmd)
	cmd.Flags().StringVar(&nonce, "nonce", "", "the nonce, exactly as sent")
	cmd.Flags().StringVar(&ts, "timestamp", "", "the timestamp in Unix milliseconds, exactly as sent")
	return cmd
}

// checkNonceAndTimestamp rejects what KooGallery would never send: the
// signature covers these strings verbatim, so a typo would silently produce a
// signature nobody can reproduce.
func checkNonceAndTimestamp(nonce, ts string) error {
	if nonce == "" {
		return usageErrorf("--nonce is required")
	}
	if ts == "" {
		return usageErrorf("--timestamp is required")
	}
	for _, c := range ts {
		if c < '0' || c > '9' {
			return usageErrorf("--timestamp %q is not a decimal number of milliseconds", ts)
		}
	}
	return nil
}

func newSignV1Command() *cobra.Command {
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "v1 --key K name=value ...",
		Short: "The V1 authToken over query parameters (timeStamp among them)",
		Long: `Compute the V1 authToken. Give every request parameter as name=value with the
value as plain (URL-decoded) text; timeStamp must be among them because it is part
of the HMAC key. authToken itself and empty values are left out, as KooGallery does.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := k.value()
			if err != nil {
				return err
			}
			params, err := parseParams(args)
			if err != nil {
				return err
			}
			ts, ok := params["timeStamp"]
			if !ok || ts == "" {
				return usageErrorf("a timeStamp=yyyyMMddHHmmssSSS parameter is required: it is part of the HMAC key")
			}
			fmt.Fprintln(cmd.OutOrStdout(), sign.AuthToken(key, ts, params))
			return nil
		},
	}
	k.register(cmd)
	return cmd
}

// parseParams turns name=value arguments into a map, splitting at the first
// "=" so values may contain "=" (base64 does).
func parseParams(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, usageErrorf("give the request parameters as name=value arguments")
	}
	params := make(map[string]string, len(args))
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, usageErrorf("argument %q is not name=value", a)
		}
		if _, dup := params[name]; dup {
			return nil, usageErrorf("parameter %q is given twice", name)
		}
		params[name] = value
	}
	return params, nil
}

func newSignBodyCommand() *cobra.Command {
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "body --key K",
		Short: "The whole Body-Sign response header value",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := k.value()
			if err != nil {
				return err
			}
			body, err := readBody(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), sign.BodySign(key, body))
			return nil
		},
	}
	k.register(cmd)
	return cmd
}

func newSignAPIGCommand() *cobra.Command {
	var (
		ak, sk, method, rawURL, date string
		signedHeaders                string
		headers                      []string
	)
	cmd := &cobra.Command{
		Use:   "apig --ak AK --sk SK --method M --url URL [--header 'Name: value']... [--date 20060102T150405Z]",
		Short: "The APIG SDK-HMAC-SHA256 Authorization header for an Open API request",
		Long: `Compute the Authorization header of a KooGallery Open API request, signed with a
Huawei Cloud AK/SK. The host and X-Sdk-Date are always signed, and so is every
--header given; --signed-headers 'a;b' signs exactly that set instead (plus
X-Sdk-Date). For a body that is not JSON the signer adds and signs
X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD, as Huawei's SDK does, and says so on
standard error: send that header too. Without --date the current UTC time is used; pass the same value
as the request's X-Sdk-Date header.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case ak == "":
				return usageErrorf("--ak is required")
			case sk == "":
				return usageErrorf("--sk is required")
			case method == "":
				return usageErrorf("--method is required")
			case rawURL == "":
				return usageErrorf("--url is required")
			}
			u, err := url.Parse(rawURL)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return usageErrorf("--url %q is not an absolute http or https URL", rawURL)
			}
			now := time.Now().UTC()
			if date != "" {
				if now, err = time.Parse(sign.SDKDateFormat, date); err != nil {
					return usageErrorf("--date %q is not in the form 20060102T150405Z", date)
				}
			}
			body, err := readBody(cmd)
			if err != nil {
				return err
			}
			req, err := http.NewRequest(strings.ToUpper(method), u.String(), bytes.NewReader(body))
			if err != nil {
				return usageErrorf("build request: %v", err)
			}
			for _, h := range headers {
				name, value, ok := strings.Cut(h, ":")
				name = strings.TrimSpace(name)
				if !ok || name == "" {
					return usageErrorf("--header %q is not 'Name: value'", h)
				}
				req.Header.Add(name, strings.TrimSpace(value))
			}
			if date != "" {
				req.Header.Set(sign.SDKDateHeader, date)
			}
			given := make(map[string]bool, len(req.Header))
			for name := range req.Header {
				given[name] = true
			}
			signer := sign.APIGSigner{AK: ak, SK: sk}
			if signedHeaders != "" {
				err = signer.SignHeaders(req, body, now, strings.Split(signedHeaders, ";"))
			} else {
				err = signer.Sign(req, body, now)
			}
			if err != nil {
				return usageErrorf("sign: %v", err)
			}
			// A header the signer added (X-Sdk-Content-Sha256 for a body
			// that is not JSON) is signed, so the request must carry it too.
			for name, values := range req.Header {
				if !given[name] && name != "Authorization" && name != sign.SDKDateHeader {
					fmt.Fprintf(cmd.ErrOrStderr(), "koobridge: note: also send the signed header %s: %s\n", name, strings.Join(values, ", "))
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), req.Header.Get("Authorization"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ak, "ak", "", "the access key ID")
	f.StringVar(&sk, "sk", "", "the secret access key")
	f.StringVar(&method, "method", "", "the HTTP method (GET, POST, …)")
	f.StringVar(&rawURL, "url", "", "the full request URL, query string included")
	f.StringArrayVar(&headers, "header", nil, "a request header to sign, as 'Name: value' (repeatable)")
	f.StringVar(&date, "date", "", "the X-Sdk-Date value, UTC, 20060102T150405Z")
	f.StringVar(&signedHeaders, "signed-headers", "", "sign exactly these headers, as 'a;b' (x-sdk-date is always added; host only if listed), as Huawei's SDK chooses its own set")
	return cmd
}
