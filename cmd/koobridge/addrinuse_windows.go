package main

import (
	"errors"
	"syscall"
)

// wsaeaddrinuse is Winsock's "address already in use", which the syscall
// package does not name (its EADDRINUSE is an invented number).
const wsaeaddrinuse = syscall.Errno(10048)

// addrInUse reports whether err is a listen's "address already in use".
func addrInUse(err error) bool {
	var e syscall.Errno
	return errors.As(err, &e) && (e == wsaeaddrinuse || e == syscall.EADDRINUSE)
}
