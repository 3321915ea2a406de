// Package e2e holds retrace's end-to-end tests in a real browser: Debian's
// headless chromium, driven with chromedp, loads the site built by
// `retrace site` from `retrace serve` on a free loopback port, and runs the
// editor with WebGPU on SwiftShader. Results are compared with the same
// edit run natively. Screenshots, the browser's network log and the
// server's request log go to dist/e2e/ (or $RETRACE_E2E_ARTIFACTS).
//
//	make e2e            # these tests alone
//	go test ./tools/e2e -run TestBrowser -v   # tiny fixture pack, bad inputs
//	go test ./tools/e2e -run TestFashion -v   # the default model (models/fashion)
//
// Without chromium the tests skip, except in CI (CI set), where they fail.
package e2e
