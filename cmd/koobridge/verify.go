package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/protocol/sign"
)

func newVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check KooGallery signatures (body on standard input)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("verify needs a subcommand: v2")
		},
	}
	cmd.AddCommand(newVerifyV2Command())
	return cmd
}

func newVerifyV2Command() *cobra.Command {
	var (
		keys                 []string
		keyFile              string
		nonce, ts, signature string
		window               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "v2 --key K --nonce N --timestamp MS --signature S",
		Short: "Verify a V2 production-interface signature; exit 0 if valid, 1 with the reason if not",
		Long: `Verify the signature KooGallery put on a V2 production-interface call. The body is
read from standard input byte for byte. Give --key more than once to accept any of
several keys (rotation). By default only the signature is checked, so a captured
call can be verified later; --window 60s also checks the timestamp against this
machine's clock, as the server does.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile != "" {
				k := keyFlags{keyFile: keyFile}
				key, err := k.value()
				if err != nil {
					return err
				}
				keys = append(keys, key)
			}
			if len(keys) == 0 {
				return usageErrorf("--key is required")
			}
			for _, k := range keys {
				if k == "" {
					return usageErrorf("--key must not be empty")
				}
			}
			if signature == "" {
				return usageErrorf("--signature is required")
			}
			if err := checkNonceAndTimestamp(nonce, ts); err != nil {
				return err
			}
			// What KooGallery can never send is bad input (exit 2), not a
			// rejected signature (exit 1).
			if _, err := sign.ParseTimestamp(ts); err != nil {
				return usageErrorf("--timestamp %q must be 13 digits (milliseconds) or 10 (seconds)", ts)
			}
			if len(nonce) > sign.MaxNonceLen {
				return usageErrorf("--nonce is %d bytes; KooGallery's are at most %d", len(nonce), sign.MaxNonceLen)
			}
			if window < 0 {
				return usageErrorf("--window must not be negative")
			}
			body, err := readBody(cmd)
			if err != nil {
				return err
			}
			v := &sign.Verifier{Keys: keys, Window: window}
			if window == 0 {
				// Signature only: a window no clock can leave.
				v.Window = time.Duration(math.MaxInt64)
			}
			idx, err := v.VerifyV2(context.Background(), signature, ts, nonce, body)
			if err != nil {
				return rejectedf("signature rejected: %v", err)
			}
			if len(keys) > 1 {
				fmt.Fprintf(cmd.OutOrStdout(), "ok (key %d)\n", idx+1)
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "ok")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&keys, "key", nil, "an accepted key (repeat for rotation)")
	f.StringVar(&keyFile, "key-file", "", "read one accepted key from this file")
	f.StringVar(&nonce, "nonce", "", "the nonce query parameter")
	f.StringVar(&ts, "timestamp", "", "the timestamp query parameter (Unix milliseconds)")
	f.StringVar(&signature, "signature", "", "the signature query parameter")
	f.DurationVar(&window, "window", 0, "also require |now - timestamp| <= window (0: signature only)")
	return cmd
}
