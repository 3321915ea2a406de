//go:build !js

package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"retrace/samplers/watermark"
)

const watermarkTimeout = 400 * time.Second

// wmDetect is the part of watermarkDetect()'s report the test reads.
type wmDetect struct {
	Marked   bool
	Ms       float64
	TreeRing struct {
		Verdict string
		Marked  bool
		PValue  float64
		Metric  float64
		Ms      float64
		Calls   int
		Error   *struct{ Code, Message string }
	}
	DwtDct struct {
		Verdict    string
		Marked     bool
		Text       string
		Bits       string
		Confidence float64
		Error      *struct{ Code, Message string }
	}
	SafeSD struct{ Verdict, Reason string }
}

// TestWatermarkBrowser drives the Watermark tab in headless chromium with
// the default model's pack: a Tree-Ring-marked generation (10 steps) is
// downloaded, dropped on the Detect panel and found (p < 0.01); a real
// Fashion-MNIST image is not marked; a 256×256 PNG marked with DwtDct in
// the page decodes natively and in the page; Safe-SD shows as not
// available yet; every request stays on the test server (detection is
// client-side).
func TestWatermarkBrowser(t *testing.T) {
	exe := chromiumPath(t)
	root := repoRoot(t)
	model := filepath.Join(root, "models", "fashion")
	if _, err := os.Stat(model); err != nil {
		t.Skipf("the default model is not present: %v", err)
	}
	art := subArtifactsDir(t, root, "watermark")
	work := t.TempDir()
	bin := buildRetrace(t, root, work)
	site := filepath.Join(work, "site")
	cmd := exec.Command(bin, "site", "--out", site, "--model", model, "--json")
	cmd.Dir = root
	_, err := cmd.Output()
	require.NoError(t, err, "retrace site: %s", errOutput(err))

	srv := startServer(t, bin, site)
	br := startBrowser(t, exe, filepath.Join(art, "netlog.json"))
	defer func() {
		_ = os.WriteFile(filepath.Join(art, "console.log"), []byte(br.consoleLog()), 0o644)
		_ = os.WriteFile(filepath.Join(art, "server.log"), []byte(srv.log.String()), 0o644)
	}()
	timings := map[string]float64{}
	defer func() { writeJSON(t, filepath.Join(art, "timings.json"), timings) }()
	must := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.Fatalf("%s failed; later steps depend on it (console:\n%s)", name, br.consoleLog())
		}
	}

	must("page and model", func(t *testing.T) {
		require.NoError(t, br.run(t, pageTimeout, chromedp.Navigate(srv.url+"#watermark")))
		err := br.waitJS(t, loadTimeout, `window.__rt && window.__rt.messages.some(m => m.type === "result" && m.model)`)
		require.NoError(t, err, "the default model did not load: #status %q, #error %q", br.text(t, idStatus), br.errorText(t))
		var visible bool
		require.NoError(t, br.eval(t, 5*time.Second, `!document.getElementById("panel-watermark").hidden`, &visible))
		require.True(t, visible, "#watermark opens the Watermark tab")
		var safesd struct {
			Disabled bool
			Text     string
			Trigger  bool
		}
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { const o = [...document.getElementById("wm-scheme").options].find(o => o.value === "safesd");
		  return {disabled: o.disabled, text: o.textContent, trigger: document.getElementById("wm-trigger").disabled}; })()`, &safesd))
		require.True(t, safesd.Disabled, "Safe-SD cannot be picked")
		require.Contains(t, safesd.Text, "not available yet")
		require.True(t, safesd.Trigger, "the trigger word field is disabled")
	})

	marked := filepath.Join(work, "treering-marked.png")
	must("generate with a Tree-Ring mark", func(t *testing.T) {
		br.setField(t, "wm-scheme", "treering")
		br.setField(t, "wm-prompt", "trouser")
		br.setField(t, "wm-key", 7)
		br.setField(t, "wm-pattern", "rand")
		br.setField(t, "wm-seed", 1)
		br.setField(t, "wm-steps", 10)
		br.setField(t, "wm-guidance", 3)
		var e struct {
			Scheme string
			Width  int
			Ms     float64
			Key    struct{ Seed, Radius int }
		}
		br.wmEmbed(t, "treering", &e)
		t.Logf("marked generation (10 steps, guidance 3): %.1f s in the page, key radius %d", e.Ms/1000, e.Key.Radius)
		timings["treering_embed_10_steps_s"] = e.Ms / 1000
		require.Equal(t, 32, e.Width)
		require.Equal(t, 7, e.Key.Seed)
		img := br.wmDownload(t, marked)
		require.Equal(t, 32, img.Bounds().Dx())
		savePNG(t, filepath.Join(art, "treering-marked.png"), img)
		br.screenshot(t, filepath.Join(art, "watermark-marked.png"))
	})

	must("detect the Tree-Ring mark", func(t *testing.T) {
		br.setField(t, "wm-detect-key", 7)
		br.setField(t, "wm-detect-method", "ddim")
		br.setField(t, "wm-detect-steps", 10)
		br.setField(t, "wm-detect-payload", "")
		r := br.wmDetect(t, marked)
		t.Logf("marked: %s, p %.3g, metric %.1f, %d model calls; detection %.1f s in the page", r.TreeRing.Verdict, r.TreeRing.PValue, r.TreeRing.Metric, r.TreeRing.Calls, r.Ms/1000)
		timings["treering_detect_ddim_10_steps_s"] = r.Ms / 1000
		require.Equal(t, "marked", r.TreeRing.Verdict)
		require.Less(t, r.TreeRing.PValue, 0.01)
		require.True(t, r.Marked)
		require.Equal(t, "not run", r.DwtDct.Verdict)
		require.Equal(t, "image-too-small", r.DwtDct.Error.Code)
		require.Equal(t, "not available", r.SafeSD.Verdict)
		require.Equal(t, "marked", br.attr(t, "wm-verdict", "state"))
		require.Contains(t, br.text(t, "wm-r-treering"), "p-value")
		require.Contains(t, br.text(t, "wm-r-safesd"), "not available yet")
		br.screenshot(t, filepath.Join(art, "watermark-tab.png"))
	})

	t.Run("clean image", func(t *testing.T) {
		r := br.wmDetect(t, filepath.Join(root, filepath.FromSlash(fashionImage)))
		t.Logf("clean: %s, p %.3g, metric %.1f; %.1f s", r.TreeRing.Verdict, r.TreeRing.PValue, r.TreeRing.Metric, r.Ms/1000)
		timings["treering_detect_clean_s"] = r.Ms / 1000
		require.Equal(t, "not marked", r.TreeRing.Verdict)
		require.Greater(t, r.TreeRing.PValue, 0.01)
		require.False(t, r.Marked)
		require.Equal(t, "clean", br.attr(t, "wm-verdict", "state"))
	})

	t.Run("dwtdct", func(t *testing.T) {
		pic := filepath.Join(work, "noise256.png")
		writeNoisePNG(t, pic, 256, 256)
		br.setField(t, "wm-scheme", "dwtdct")
		require.NoError(t, br.run(t, 10*time.Second, chromedp.SetUploadFiles("#wm-mark-image", []string{pic}, chromedp.ByQuery)))
		require.NoError(t, br.waitJS(t, 20*time.Second, `/256×256/.test(document.getElementById("wm-mark-note").textContent)`))
		br.setField(t, "wm-payload", "rtrc")
		var e struct {
			Scheme string
			Width  int
			Ms     float64
			Bits   string
		}
		br.wmEmbed(t, "dwtdct", &e)
		t.Logf("dwtdct embed: %.0f ms", e.Ms)
		timings["dwtdct_embed_ms"] = e.Ms
		require.Equal(t, 256, e.Width)
		out := filepath.Join(work, "dwtdct-marked.png")
		img := br.wmDownload(t, out)
		bits, _, err := watermark.DecodeDwtDct(img, 32)
		require.NoError(t, err)
		require.Equal(t, "rtrc", string(watermark.BytesFromBits(bits)), "the page's PNG decodes natively")
		br.setField(t, "wm-detect-steps", 2) // Tree-Ring runs too; keep it short
		r := br.wmDetect(t, out)
		t.Logf("dwtdct detect: %s, text %q, confidence %.2f; Tree-Ring %s; %.1f s", r.DwtDct.Verdict, r.DwtDct.Text, r.DwtDct.Confidence, r.TreeRing.Verdict, r.Ms/1000)
		require.Equal(t, "marked", r.DwtDct.Verdict)
		require.Equal(t, "rtrc", r.DwtDct.Text)
		require.Contains(t, br.text(t, "wm-r-dwtdct"), `"rtrc"`)
		r = br.wmDetect(t, pic)
		require.Equal(t, "not marked", r.DwtDct.Verdict, "the unmarked picture")
		br.screenshot(t, filepath.Join(art, "watermark-dwtdct.png"))
	})

	br.cancel()
	t.Run("network stays local", func(t *testing.T) {
		n := requireLocalNetwork(t, br, srv)
		t.Logf("%d requests from the page, all to the test server", n)
	})
}

const wmErrorShown = `!document.getElementById("wm-error").hidden`

func (b *browser) wmError(t *testing.T) string {
	var s string
	require.NoError(t, b.eval(t, 5*time.Second, `(() => { const e = document.getElementById("wm-error"); return e.hidden ? "" : e.dataset.code + ": " + document.getElementById("wm-error-text").textContent; })()`, &s))
	return s
}

func (b *browser) attr(t *testing.T, id, key string) string {
	var s string
	require.NoError(t, b.eval(t, 5*time.Second, fmt.Sprintf(`document.getElementById(%q).dataset[%q] || ""`, id, key), &s))
	return s
}

// wmEmbed clicks the Mark button and reads the result's summary.
func (b *browser) wmEmbed(t *testing.T, scheme string, out any) {
	require.NoError(t, b.eval(t, 5*time.Second, `(() => { retraceApp.watermark.lastEmbed = null; return true; })()`, nil))
	require.NoError(t, b.waitJS(t, 30*time.Second, `!document.getElementById("wm-embed").disabled`), "#wm-embed stays disabled: %s", b.wmError(t))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#wm-embed", chromedp.ByQuery)))
	require.NoError(t, b.waitJS(t, watermarkTimeout, `retraceApp.watermark.lastEmbed !== null || `+wmErrorShown), "no result: #status %q", b.text(t, idStatus))
	require.Empty(t, b.wmError(t))
	require.NoError(t, b.eval(t, 5*time.Second, `retraceApp.watermark.lastEmbed`, out))
	require.NoError(t, b.waitJS(t, 10*time.Second, `!document.getElementById("wm-download").hidden`))
}

// wmDownload saves the download link's PNG to path and decodes it.
func (b *browser) wmDownload(t *testing.T, path string) image.Image {
	var href string
	require.NoError(t, b.eval(t, 5*time.Second, `document.getElementById("wm-download").href`, &href))
	require.True(t, strings.HasPrefix(href, "data:image/png;base64,"), "download link: %.40q", href)
	img, err := decodeDataURL(href)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return img
}

// wmDetect drops the file on the Detect panel, runs detection and returns
// the report.
func (b *browser) wmDetect(t *testing.T, path string) wmDetect {
	require.NoError(t, b.eval(t, 5*time.Second, `(() => { retraceApp.watermark.lastDetect = null; return true; })()`, nil))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.SetUploadFiles("#wm-detect-image", []string{path}, chromedp.ByQuery)))
	name := filepath.Base(path)
	require.NoError(t, b.waitJS(t, 20*time.Second, fmt.Sprintf(`document.getElementById("wm-detect-caption").textContent.startsWith(%q) && !document.getElementById("wm-detect").disabled`, name)), "the image was not picked: %s", b.wmError(t))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#wm-detect", chromedp.ByQuery)))
	require.NoError(t, b.waitJS(t, watermarkTimeout, `retraceApp.watermark.lastDetect !== null || `+wmErrorShown), "no report: #status %q", b.text(t, idStatus))
	require.Empty(t, b.wmError(t))
	var r wmDetect
	require.NoError(t, b.eval(t, 5*time.Second, `retraceApp.watermark.lastDetect`, &r))
	require.NoError(t, b.waitJS(t, 10*time.Second, `!document.getElementById("wm-detect").disabled`))
	return r
}

// writeNoisePNG writes uniform colour noise: a 256×256 picture that
// carries a 32-bit DwtDct payload exactly (wasm/watermark_test.go).
func writeNoisePNG(t *testing.T, path string, w, h int) {
	r := rand.New(rand.NewPCG(1, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	savePNG(t, path, img)
}
