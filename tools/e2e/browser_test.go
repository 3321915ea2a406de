//go:build !js

package e2e

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Tolerances, in 0–255 levels per RGB channel, between the page (WGSL
// kernels on SwiftShader, f16 weights unpacked in the shader) and the same
// edit on the Go CPU backend. The two differ only by float rounding order;
// a few steps of the tiny model keep that well under these bounds.
const (
	matchMax  = 6.0
	matchMean = 1.0
	// Reconstruction with an exact method (EDICT, BDIA γ=1) against the
	// source after the VAE round trip.
	reconMax  = 6.0
	reconMean = 1.0
)

// timeouts on SwiftShader (a CPU WebGPU adapter on 2 shared cores).
const (
	pageTimeout = 90 * time.Second
	loadTimeout = 120 * time.Second
	editTimeout = 240 * time.Second
)

type pageRun struct {
	Width, Height int
	RGBA          []int
	Calls         int
	Ms            float64
}

// TestBrowser drives the editor in headless chromium end to end. The steps
// share one page and run in order.
func TestBrowser(t *testing.T) {
	exe := chromiumPath(t)
	root := repoRoot(t)
	art := artifactsDir(t, root)
	work := t.TempDir()
	bin := buildRetrace(t, root, work)

	// The site, with the tiny fixture pipeline as its default pack (fast
	// on SwiftShader), and a copy of that pack with one corrupted shard.
	site := filepath.Join(work, "site")
	cmd := exec.Command(bin, "site", "--out", site, "--model", "test", "--json")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "retrace site: %s", errOutput(err))
	var report struct {
		WasmBytes int64 `json:"wasm_bytes"`
		WasmGzip  int64 `json:"wasm_gzip9_bytes"`
		Files     int   `json:"files"`
	}
	require.NoError(t, json.Unmarshal(out, &report))
	require.NoError(t, os.WriteFile(filepath.Join(art, "site.json"), out, 0o644))
	t.Logf("site: %d files; retrace.wasm %d bytes (%.2f MiB), gzip -9 %d bytes (%.2f MiB)", report.Files,
		report.WasmBytes, float64(report.WasmBytes)/(1<<20), report.WasmGzip, float64(report.WasmGzip)/(1<<20))
	packDir := filepath.Join(site, "packs", "default")
	corrupt := filepath.Join(site, "packs", "corrupt")
	copyDir(t, packDir, corrupt)
	shard := filepath.Join(corrupt, "shard-00001.bin")
	b, err := os.ReadFile(shard)
	require.NoError(t, err)
	for i := 1000; i < 1100 && i < len(b); i++ {
		b[i] ^= 0x5a
	}
	require.NoError(t, os.WriteFile(shard, b, 0o644))

	photo := testImage(t, root, work)
	notImage := filepath.Join(work, "notes.png")
	require.NoError(t, os.WriteFile(notImage, []byte("this is a text file, not a picture\n"), 0o644))
	huge := filepath.Join(work, "huge.png")
	hugePNG(t, huge, 12000, 12000)

	srv := startServer(t, bin, site)
	t.Logf("server: %s", srv.url)
	br := startBrowser(t, exe, filepath.Join(art, "netlog.json"))
	defer func() {
		_ = os.WriteFile(filepath.Join(art, "console.log"), []byte(br.consoleLog()), 0o644)
		_ = os.WriteFile(filepath.Join(art, "server.log"), []byte(srv.log.String()), 0o644)
		_ = os.WriteFile(filepath.Join(art, "chromium.log"), []byte(br.output.String()), 0o644)
	}()
	timings := map[string]float64{}
	defer func() { writeJSON(t, filepath.Join(art, "timings.json"), timings) }()

	must := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.Fatalf("%s failed; later steps depend on it (console:\n%s)", name, br.consoleLog())
		}
	}

	must("adapter", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, br.run(t, pageTimeout, chromedp.Navigate(srv.url)))
		// The browser must give a WebGPU adapter at all (a wrong flag set
		// makes requestAdapter hang: race it against a timeout).
		var info map[string]any
		require.NoError(t, br.eval(t, 40*time.Second, `(async () => {
		  if (!navigator.gpu) return {error: "navigator.gpu is missing"};
		  const a = await Promise.race([navigator.gpu.requestAdapter(),
		    new Promise(r => setTimeout(() => r("timeout"), 30000))]);
		  if (a === "timeout") return {error: "requestAdapter timed out"};
		  if (!a) return {error: "requestAdapter gave null"};
		  return {vendor: a.info.vendor, architecture: a.info.architecture, fallback: a.info.isFallbackAdapter};
		})()`, &info))
		require.NotContains(t, info, "error", "WebGPU in headless chromium: %v", info)
		require.Equal(t, "swiftshader", info["architecture"], "%v", info)
		// The worker initialised WebGPU and the adapter panel shows it.
		err := br.waitJS(t, pageTimeout, `(() => { const e = document.getElementById("adapter"); return e && /swiftshader/i.test(e.textContent); })()`)
		require.NoError(t, err, "#adapter never mentioned SwiftShader: %q (errors %q)", br.text(t, "adapter"), br.errorText(t))
		timings["page_to_adapter_s"] = time.Since(start).Seconds()
		t.Logf("#adapter: %q", br.text(t, "adapter"))
		var workers int
		require.NoError(t, br.eval(t, 5*time.Second, `window.__rt ? window.__rt.workers : -1`, &workers))
		require.Equal(t, 1, workers, "the page runs the runtime in one Web Worker")
	})

	must("model loads with progress", func(t *testing.T) {
		start := time.Now()
		err := br.waitJS(t, loadTimeout, `window.__rt.messages.some(m => m.type === "result" && m.model)`)
		require.NoError(t, err, "the default model did not load: #status %q, #error %q", br.text(t, "status"), br.errorText(t))
		var prog []struct {
			Loaded, Total float64
			Shard         any
		}
		require.NoError(t, br.eval(t, 5*time.Second, `window.__rt.messages.filter(m => m.type === "progress").map(m => m.data)`, &prog))
		require.NotEmpty(t, prog, "no progress events while loading")
		last := prog[len(prog)-1]
		require.Greater(t, last.Total, 0.0)
		require.Equal(t, last.Total, last.Loaded, "the last progress event reports everything loaded")
		for i := 1; i < len(prog); i++ {
			require.GreaterOrEqual(t, prog[i].Loaded, prog[i-1].Loaded, "progress goes forward")
		}
		shards := map[string]bool{}
		for _, p := range prog {
			shards[fmt.Sprint(p.Shard)] = true
		}
		require.GreaterOrEqual(t, len(shards), 2, "progress names the shards (the test pack has 4)")
		timings["model_load_s"] = time.Since(start).Seconds()
		t.Logf("%d progress events, %v bytes; #status %q", len(prog), last.Total, br.text(t, "status"))
	})

	nativeCache := map[editSettings]*image.NRGBA{}
	native := func(s editSettings) *image.NRGBA {
		if im, ok := nativeCache[s]; ok {
			return im
		}
		im := nativeEdit(t, packDir, photo, s)
		nativeCache[s] = im
		return im
	}

	editSet := editSettings{Source: "a photo of an astronaut", Target: "a photo of a cat", Method: "ef-ddpm", Steps: 4, Guidance: 3, Seed: 7}
	must("edit matches native", func(t *testing.T) {
		res := br.edit(t, photo, editSet)
		timings["edit_ef_ddpm_4_steps_ms"] = res.Ms
		got := rgbaImage(res.Width, res.Height, res.RGBA)
		savePNG(t, filepath.Join(art, "edit-browser.png"), got)
		want := native(editSet)
		savePNG(t, filepath.Join(art, "edit-native.png"), want)
		require.Equal(t, want.Bounds(), got.Bounds())
		mx, mean := diff(got, want)
		t.Logf("edit (%s, %d steps, %d model calls, %.0f ms): browser vs native max |Δ| %.0f, mean |Δ| %.3f levels", editSet.Method, editSet.Steps, res.Calls, res.Ms, mx, mean)
		require.LessOrEqual(t, mx, matchMax)
		require.LessOrEqual(t, mean, matchMean)
		// The page shows the result as an image.
		shown := br.resultImage(t)
		savePNG(t, filepath.Join(art, "edit-shown.png"), shown)
		mx, _ = diff(shown, got)
		require.Zero(t, mx, "#result shows the runtime's result unchanged")
		// The edit changed the picture relative to reconstructing it.
		recon := native(editSettings{Source: editSet.Source, Target: editSet.Source, Method: editSet.Method, Steps: editSet.Steps, Guidance: editSet.Guidance, Seed: editSet.Seed, Reconstruct: true})
		_, dm := diff(got, recon)
		require.Greater(t, dm, 1.0, "the target prompt changes the image (mean |Δ| vs reconstruction %.3f)", dm)
	})

	for _, method := range []string{"edict", "bdia"} {
		t.Run("reconstruct "+method, func(t *testing.T) {
			// Exactness does not depend on the number of steps: few keep
			// SwiftShader quick.
			s := editSettings{Source: "a photo of an astronaut", Target: "a photo of a cat", Method: method, Steps: 3, Guidance: 3, Reconstruct: true}
			res := br.edit(t, photo, s)
			timings["reconstruct_"+method+"_3_steps_ms"] = res.Ms
			got := rgbaImage(res.Width, res.Height, res.RGBA)
			savePNG(t, filepath.Join(art, "reconstruct-"+method+".png"), got)
			src := nativeVAERoundTrip(t, packDir, photo)
			savePNG(t, filepath.Join(art, "source-vae-roundtrip.png"), src)
			mx, mean := diff(got, src)
			t.Logf("%s reconstruction vs the source (VAE round trip): max |Δ| %.0f, mean |Δ| %.3f levels", method, mx, mean)
			require.LessOrEqual(t, mx, reconMax)
			require.LessOrEqual(t, mean, reconMean)
			mx, mean = diff(got, native(s))
			t.Logf("%s reconstruction, browser vs native: max |Δ| %.0f, mean |Δ| %.3f", method, mx, mean)
			require.LessOrEqual(t, mx, matchMax)
		})
	}

	quick := editSettings{Source: "a photo", Target: "a drawing", Method: "ddim", Steps: 1, Guidance: 1}
	stillWorks := func(t *testing.T) {
		res := br.edit(t, photo, quick)
		require.Positive(t, res.Width)
	}
	t.Run("bad input: not an image", func(t *testing.T) {
		msg := br.editError(t, notImage, quick)
		t.Logf("#error: %q", msg)
		br.errorCode(t, "bad-image")
		require.Regexp(t, `(?i)image|png|jpeg|decode`, msg)
		br.screenshot(t, filepath.Join(art, "error-not-image.png"))
		stillWorks(t)
	})
	t.Run("bad input: too large", func(t *testing.T) {
		msg := br.editError(t, huge, quick)
		t.Logf("#error: %q", msg)
		br.errorCode(t, "image-too-large")
		require.Regexp(t, `(?i)large|big|pixels|limit`, msg)
		stillWorks(t)
	})
	t.Run("bad input: corrupted pack", func(t *testing.T) {
		msg := br.loadPackError(t, srv.url+"packs/corrupt/")
		t.Logf("#error: %q", msg)
		br.errorCode(t, "bad-pack")
		require.Regexp(t, `(?i)sha256|checksum|corrupt|pack|hash`, msg)
		br.screenshot(t, filepath.Join(art, "error-corrupt-pack.png"))
		br.loadPack(t, srv.url+"packs/default/")
		stillWorks(t)
	})

	t.Run("tabs", func(t *testing.T) {
		var tabs []string
		require.NoError(t, br.eval(t, 5*time.Second, `[...document.querySelectorAll('[role="tab"]')].map(e => e.id || e.textContent.trim())`, &tabs))
		require.Len(t, tabs, 3, "three tabs: Edit, Restore, Watermark")
		for i := range tabs {
			require.NoError(t, br.eval(t, 5*time.Second, fmt.Sprintf(`(() => { document.querySelectorAll('[role="tab"]')[%d].click(); return true; })()`, i), nil))
			time.Sleep(300 * time.Millisecond)
			name := strings.ToLower(strings.Fields(tabs[i] + " tab")[0])
			br.screenshot(t, filepath.Join(art, fmt.Sprintf("tab-%d-%s.png", i+1, sanitize(name))))
			var visible int
			require.NoError(t, br.eval(t, 5*time.Second, `[...document.querySelectorAll('[role="tabpanel"]')].filter(p => !p.hidden && p.offsetParent !== null).length`, &visible))
			require.Equal(t, 1, visible, "one tab panel visible after clicking tab %q", tabs[i])
		}
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { document.querySelectorAll('[role="tab"]')[0].click(); return true; })()`, nil))
	})

	// Close the browser so the net log is complete, then check every
	// request the page (and its worker) made.
	br.cancel()
	t.Run("network stays local", func(t *testing.T) {
		n := requireLocalNetwork(t, br, srv)
		t.Logf("%d requests from the page, all to %s", n, srv.url)
	})
	_ = site
}

// allowedPath: the site's own files (pages, scripts, wasm, styles), pack
// files under /packs/, and /favicon.ico (asked for by the browser itself).
func allowedPath(_ string, p string) bool {
	if p == "/" || p == "/favicon.ico" || strings.HasPrefix(p, "/packs/") {
		return true
	}
	switch path.Ext(p) {
	case ".html", ".js", ".css", ".wasm", ".svg", ".png", ".json", ".webmanifest", ".ico", ".woff2":
		return true
	}
	return false
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func errOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
