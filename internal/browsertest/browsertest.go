// Package browsertest drives a real headless Chromium for the tests of the
// web UI (Debian's chromium package; .ci/run installs it). Without one the
// tests skip, saying so, unless DEPLOYDB_REQUIRE_BROWSER is set (CI), and
// then fail. DEPLOYDB_CHROMIUM names another binary.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the path of the Chromium to drive, or skips t.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DEPLOYDB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("DEPLOYDB_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium to drive, and DEPLOYDB_REQUIRE_BROWSER is set (CI): install Debian's chromium package, or set DEPLOYDB_CHROMIUM")
	}
	t.Skip("no Chromium to drive (install Debian's chromium package, or set DEPLOYDB_CHROMIUM): the browser tests skip")
	return ""
}

// Start starts a headless Chromium (no sandbox, no GPU, no background
// networking) and returns a context that drives one tab of it, for at
// most timeout; the browser ends with the test.
func Start(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// Do runs the browser steps, failing t on an error.
func Do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Get runs an action that returns a value, failing t on an error.
func Get[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Text returns the visible text of the first element the CSS selector sel
// matches.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	return Get(t, ctx, "the text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// Poll waits until the JavaScript expression is true. A page that
// navigates meanwhile (a form posted, a redirect) is polled again once
// there.
func Poll(t testing.TB, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot writes the page as it is, whole, to DEPLOYDB_SCREENSHOTS/name.png
// when that is set (make screenshots).
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("DEPLOYDB_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := Get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
