// Command koobridge is the seller-side integration for Huawei Cloud
// KooGallery: the production interface, the emulator and the protocol tools.
//
// This package only wires flags to the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit codes shared by every subcommand. Scripts rely on them.
const (
	exitOK       = 0
	exitRejected = 1 // a verification ran and said no
	exitUsage    = 2 // bad flags, bad arguments or bad input
)

// exitError carries the exit code a failure should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad input: exit status 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// rejectedf reports a negative verification result: exit status 1.
func rejectedf(format string, args ...any) error {
	return &exitError{code: exitRejected, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit status. It is
// separate from main so tests can drive the CLI in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "koobridge: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Anything cobra itself rejects (unknown flag, missing argument) is a usage error.
	return exitUsage
}
