package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/protocol/sign"
)

// cipherFlags holds the options shared by encrypt and decrypt.
type cipherFlags struct {
	k     keyFlags
	etype string
}

func (c *cipherFlags) register(cmd *cobra.Command) {
	c.k.register(cmd)
	cmd.Flags().StringVar(&c.etype, "type", "1", `the encryptType: "1" AES-256-CBC (KooGallery's default) or "2" AES-128-CBC`)
}

func (c *cipherFlags) cipher() (*sign.CredentialCipher, error) {
	key, err := c.k.value()
	if err != nil {
		return nil, err
	}
	t, err := sign.ParseEncryptType(c.etype)
	if err != nil {
		return nil, usageErrorf("--type: %v", err)
	}
	cc, err := sign.NewCredentialCipher(key, t)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return cc, nil
}

// exactlyOneValue accepts one positional argument: the value to transform.
func exactlyOneValue(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("give exactly one VALUE argument, got %d", len(args))
	}
	return nil
}

func newEncryptCommand() *cobra.Command {
	var (
		c  cipherFlags
		iv string
	)
	cmd := &cobra.Command{
		Use:   "encrypt --key K --type 1|2 [--iv 16CHARS] VALUE",
		Short: "Encrypt a credential the KooGallery way: iv + base64(AES-CBC)",
		Long: `Encrypt VALUE with the credential AES of the KooGallery protocol (the key is
derived from K as Java's SHA1PRNG does) and print iv + base64(ciphertext).
Without --iv a random 16-character alphanumeric IV is used.`,
		Args: exactlyOneValue,
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, err := c.cipher()
			if err != nil {
				return err
			}
			var out string
			if cmd.Flags().Changed("iv") {
				if len(iv) != 16 {
					return usageErrorf("--iv must be exactly 16 bytes, got %d", len(iv))
				}
				out, err = cc.EncryptWithIV(args[0], iv)
			} else {
				out, err = cc.Encrypt(args[0])
			}
			if err != nil {
				return usageErrorf("encrypt: %v", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&iv, "iv", "", "the 16-character IV (random when omitted)")
	return cmd
}

func newDecryptCommand() *cobra.Command {
	var c cipherFlags
	cmd := &cobra.Command{
		Use:   "decrypt --key K --type 1|2 VALUE",
		Short: "Decrypt an iv + base64(AES-CBC) credential",
		Args:  exactlyOneValue,
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, err := c.cipher()
			if err != nil {
				return err
			}
			out, err := cc.Decrypt(args[0])
			if err != nil {
				return usageErrorf("decrypt: %v", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	c.register(cmd)
	return cmd
}
