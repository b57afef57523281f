// Package e2e holds koobridge's end-to-end tests: the real binary as a
// process, driven over HTTP and through a headless Chromium.
//
// It is a module of its own so that the browser driver never becomes a
// dependency of koobridge itself. Run it from the repository root with
//
//	go -C e2e test ./...
//
// The helpers here (StartKoobridge, NewBrowser, FindChromium) are meant to
// be shared by every browser test in the module.
package e2e
