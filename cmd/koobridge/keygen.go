package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
)

func newKeygenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make keys koobridge needs",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	cmd.AddCommand(newKeygenRSACommand())
	return cmd
}

func newKeygenRSACommand() *cobra.Command {
	var (
		out  string
		bits int
	)
	cmd := &cobra.Command{
		Use:   "rsa [--out PREFIX] [--bits 3072]",
		Short: "Make the RSA key pair of a joint-operation app credential",
		Long: `Make the RSA key pair of a joint-operation (联营) app credential.

KooGallery encrypts the OAuth client secret it sends in applicationSync with the
public key registered with the app credential (Seller Center > 应用工具 > 应用凭证管理,
at least 3072 bits, RSA-OAEP); koobridge decrypts it with the private key.

Writes PREFIX.pem, the private key (PKCS#8 PEM, mode 0600) for
'koobridge serve --rsa-private-key-file PREFIX.pem', and PREFIX.pub.pem, the
public key (X.509 SubjectPublicKeyInfo PEM), and prints the public key as one
line of base64 (the same key without the PEM armour), the form to paste into
应用凭证管理. Existing files are never overwritten.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bits < minRSABits || bits > 8192 {
				return usageErrorf("--bits %d: want %d to 8192 (Seller Center requires at least %d)", bits, minRSABits, minRSABits)
			}
			if out == "" {
				return usageErrorf("--out must not be empty")
			}
			privFile, pubFile := out+".pem", out+".pub.pem"
			for _, f := range []string{privFile, pubFile} {
				if _, err := os.Stat(f); err == nil {
					return usageErrorf("%s exists: not overwritten (choose another --out)", f)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("keygen: %w", err)
				}
			}
			key, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				return fmt.Errorf("keygen: generate: %w", err)
			}
			privDER, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return fmt.Errorf("keygen: encode private key: %w", err)
			}
			pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err != nil {
				return fmt.Errorf("keygen: encode public key: %w", err)
			}
			if err := writeNew(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
				return err
			}
			if err := writeNew(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (private, keep it secret) and %s (public)\n", privFile, pubFile)
			fmt.Fprintln(w, base64.StdEncoding.EncodeToString(pubDER))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "koobridge-rsa", "file name prefix: writes PREFIX.pem and PREFIX.pub.pem")
	cmd.Flags().IntVar(&bits, "bits", minRSABits, "key size in bits")
	return cmd
}

// writeNew creates file with data and mode, failing if it exists.
func writeNew(file string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keygen: write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: close %s: %w", file, err)
	}
	return nil
}
