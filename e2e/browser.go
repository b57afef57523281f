package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrNoChromium says how to get a browser; the browser tests fail with it
// rather than skip, so a missing Chromium is never mistaken for a pass.
//
//lint:ignore ST1005 "Chromium" is a name, and the message is what a user greps for.
var ErrNoChromium = errors.New("Chromium not found: apt-get install chromium, or set KOOBRIDGE_CHROMIUM")

// FindChromium returns the Chromium to run: $KOOBRIDGE_CHROMIUM, else
// /usr/bin/chromium, else chromium on the PATH.
func FindChromium() (string, error) {
	if p := os.Getenv("KOOBRIDGE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", errors.Join(ErrNoChromium, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", ErrNoChromium
}

// browserTimeout bounds one test's whole browser session, so a page that
// never shows what a test waits for fails instead of hanging.
const browserTimeout = 2 * time.Minute

// NewBrowser starts a headless Chromium with a fresh profile in a temp dir
// and returns a chromedp context for one tab. The browser is stopped at
// the end of the test.
func NewBrowser(t testing.TB) context.Context {
	t.Helper()
	path, err := FindChromium()
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a tiny /dev/shm
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	// Cleanups run last-in first-out: the browser is gone before t.TempDir
	// removes its profile.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(tabCtx); err != nil { // start the browser now, so launch errors are reported as such
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return tabCtx
}

// Do runs the browser steps in order and fails the test at the first error,
// naming what the steps were for.
func Do(ctx context.Context, t testing.TB, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Get runs a browser action that reads a value and fails the test on error.
func Get[T any](ctx context.Context, t testing.TB, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// Screenshot captures what the tab's viewport shows as a PNG and fails the
// test on error. Set the viewport's size first (chromedp.EmulateViewport)
// for a picture of a known size.
func Screenshot(ctx context.Context, t testing.TB, what string) []byte {
	t.Helper()
	return Get(ctx, t, "screenshot of "+what, chromedp.CaptureScreenshot())
}
