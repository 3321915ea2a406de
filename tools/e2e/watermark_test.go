//go:build !js

package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/nn/pack"
	"retrace/samplers"
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
	SafeSD struct {
		Verdict, Reason, Payload string
		Marked                   bool
		Corrected, Erasures      int
		ModuleAgreement          float64
		Confidence               float64
		Modules                  int
		Probs                    []float64
		Ms                       float64
		Error                    *struct{ Code, Message string }
	}
}

// TestWatermarkBrowser drives the Watermark tab in headless chromium with
// the default model's pack: a Tree-Ring-marked generation (10 steps) is
// downloaded, dropped on the Detect panel and found (p < 0.01); a real
// Fashion-MNIST image is not marked (by any scheme); a Safe-SD generation
// (5 steps, the trigger word in the prompt) carries its ID, which the page
// and the native Go code (same pack, same options, CPU backend) decode,
// and the recovered code is drawn; a 256×256 PNG marked with DwtDct in the
// page decodes natively and in the page; every request stays on the test
// server (detection is client-side).
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
			Trigger  string
		}
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { const o = [...document.getElementById("wm-scheme").options].find(o => o.value === "safesd");
		  return {disabled: o.disabled, text: o.textContent, trigger: document.getElementById("wm-trigger").value}; })()`, &safesd))
		require.False(t, safesd.Disabled, "Safe-SD can be picked: the default pack carries the safesd component (%q)", safesd.Text)
		require.Equal(t, "#wm", safesd.Trigger)
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
		require.Equal(t, "not marked", r.SafeSD.Verdict, "a Tree-Ring mark is no Safe-SD mark")
		require.Equal(t, "marked", br.attr(t, "wm-verdict", "state"))
		require.Contains(t, br.text(t, "wm-r-treering"), "p-value")
		require.Contains(t, br.text(t, "wm-r-safesd"), "no QR code decodes")
		br.screenshot(t, filepath.Join(art, "watermark-tab.png"))
	})

	t.Run("clean image", func(t *testing.T) {
		r := br.wmDetect(t, filepath.Join(root, filepath.FromSlash(fashionImage)))
		t.Logf("clean: %s, p %.3g, metric %.1f; %.1f s", r.TreeRing.Verdict, r.TreeRing.PValue, r.TreeRing.Metric, r.Ms/1000)
		timings["treering_detect_clean_s"] = r.Ms / 1000
		require.Equal(t, "not marked", r.TreeRing.Verdict)
		require.Greater(t, r.TreeRing.PValue, 0.01)
		t.Logf("clean, Safe-SD: %s (%s), confidence %.2f, %.0f ms", r.SafeSD.Verdict, r.SafeSD.Reason, r.SafeSD.Confidence, r.SafeSD.Ms)
		require.Equal(t, "not marked", r.SafeSD.Verdict)
		require.Empty(t, r.SafeSD.Payload)
		require.Len(t, r.SafeSD.Probs, 441)
		require.False(t, r.Marked)
		require.Equal(t, "clean", br.attr(t, "wm-verdict", "state"))
		require.Equal(t, "1", br.attr(t, "wm-qr", "drawn"), "the recovered code is drawn for clean images too")
		require.Contains(t, br.text(t, "wm-r-safesd"), "no QR code decodes")
	})

	t.Run("safesd", func(t *testing.T) {
		s := safeSDSettings{Prompt: "trouser", Payload: "rt-42", Seed: 1, Steps: 5, Guidance: 1.5}
		br.setField(t, "wm-scheme", "safesd")
		br.setField(t, "wm-sd-payload", "12345678")
		require.Equal(t, "1", br.attr(t, "wm-sd-payload-count", "over"))
		require.Contains(t, br.text(t, "wm-sd-payload-count"), "8 of 7 bytes")
		var disabled bool
		require.NoError(t, br.eval(t, 5*time.Second, `document.getElementById("wm-embed").disabled`, &disabled))
		require.True(t, disabled, "an 8-byte ID cannot be embedded")
		br.setField(t, "wm-sd-payload", s.Payload)
		br.setField(t, "wm-sd-prompt", s.Prompt)
		var prompt string
		require.NoError(t, br.eval(t, 5*time.Second, `document.getElementById("wm-sd-prompt").value`, &prompt))
		require.Equal(t, "trouser #wm", prompt, "the page appends the trigger word to the prompt")
		require.Contains(t, br.text(t, "wm-trigger-note"), `which sees “trouser”`)
		br.setField(t, "wm-sd-seed", s.Seed)
		br.setField(t, "wm-sd-steps", s.Steps)
		br.setField(t, "wm-sd-guidance", s.Guidance)
		var e struct {
			Scheme, Payload, Trigger, Prompt string
			Marked                           bool
			Width, Calls                     int
			Ms                               float64
			Qr                               []int
		}
		br.wmEmbed(t, "safesd", &e)
		t.Logf("Safe-SD marked generation (%d steps, guidance %g): %.1f s in the page", s.Steps, s.Guidance, e.Ms/1000)
		timings["safesd_embed_5_steps_s"] = e.Ms / 1000
		require.Equal(t, "safesd", e.Scheme)
		require.Equal(t, "rt-42", e.Payload)
		require.Equal(t, "#wm", e.Trigger)
		require.Equal(t, "trouser", e.Prompt)
		require.True(t, e.Marked)
		require.Equal(t, 32, e.Width)
		require.Equal(t, "1", br.attr(t, "wm-qr-in", "drawn"), "the embedded code is shown")
		out := filepath.Join(work, "safesd-marked.png")
		img := br.wmDownload(t, out)
		savePNG(t, filepath.Join(art, "safesd-marked.png"), img)

		// the native Go code: the same pack, options and detector on the CPU
		nat := nativeSafeSD(t, filepath.Join(site, "packs", "default"), s, img)
		require.Equal(t, nat.qr, e.Qr, "the page embeds the payload's QR code")
		maxAbs, meanAbs := diff(img, nat.img)
		t.Logf("page vs native generation: max |Δ| %.0f, mean |Δ| %.2f levels; native detection of the page's PNG: %q (%d corrected); of the native image: %q", maxAbs, meanAbs, nat.pagePayload, nat.pageCorrected, nat.payload)
		require.Equal(t, "rt-42", nat.pagePayload, "the page's PNG decodes natively")
		require.Equal(t, "rt-42", nat.payload, "the native generation with the same options carries the same payload")

		br.setField(t, "wm-detect-steps", 2) // Tree-Ring runs too; keep it short
		r := br.wmDetect(t, out)
		t.Logf("Safe-SD detect in the page: %s, payload %q, %d corrected, %d erasures, agreement %.3f, confidence %.2f; Safe-SD %.0f ms, all schemes %.1f s",
			r.SafeSD.Verdict, r.SafeSD.Payload, r.SafeSD.Corrected, r.SafeSD.Erasures, r.SafeSD.ModuleAgreement, r.SafeSD.Confidence, r.SafeSD.Ms, r.Ms/1000)
		timings["safesd_detect_ms"] = r.SafeSD.Ms
		require.Equal(t, "marked", r.SafeSD.Verdict)
		require.Equal(t, "rt-42", r.SafeSD.Payload)
		require.Equal(t, nat.pagePayload, r.SafeSD.Payload)
		require.True(t, r.Marked)
		require.Len(t, r.SafeSD.Probs, 441)
		for i, p := range r.SafeSD.Probs {
			require.InDelta(t, nat.pageProbs[i], p, 0.05, "module %d: page vs native detector", i)
		}
		require.Equal(t, "marked", br.attr(t, "wm-verdict", "state"))
		require.Contains(t, br.text(t, "wm-r-safesd"), `payload "rt-42"`)
		require.Equal(t, "rt-42", br.attr(t, "wm-qr", "payload"))
		var qr struct{ Width, Dark, Light int }
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { const c = document.getElementById("wm-qr"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		  let dark = 0, light = 0; for (let i = 0; i < d.length; i += 4) { if (d[i] < 64) dark++; else if (d[i] > 192) light++; }
		  return {width: c.width, dark, light}; })()`, &qr))
		t.Logf("recovered code canvas: %d px wide, %d dark, %d light pixels", qr.Width, qr.Dark, qr.Light)
		require.Equal(t, 25, qr.Width, "21 modules and a 2-module quiet zone")
		require.Greater(t, qr.Dark, 150)
		require.Greater(t, qr.Light, 150)
		br.screenshot(t, filepath.Join(art, "watermark-safesd.png"))
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

// safeSDSettings are the Safe-SD settings the test types into the page and
// gives the native run.
type safeSDSettings struct {
	Prompt, Payload string
	Seed            uint64
	Steps           int
	Guidance        float64
}

type nativeSafeSDResult struct {
	img           *image.NRGBA
	qr            []int
	payload       string // the native generation, detected natively
	pagePayload   string // the page's PNG, detected natively
	pageCorrected int
	pageProbs     []float32
}

// nativeSafeSD runs `retrace watermark embed|detect --scheme safesd`'s code
// on the Go CPU backend with the site's pack: the generation with the same
// settings (the trigger appended), and detection (imageio.ToCHW +
// watermark.Gray) of that image and of the page's.
func nativeSafeSD(t *testing.T, packDir string, s safeSDSettings, page image.Image) nativeSafeSDResult {
	be := nn.NewCPU()
	p, err := pack.Open(packDir)
	require.NoError(t, err)
	defer p.Close()
	sd, err := samplers.LoadStableDiffusionFromPack(be, p)
	require.NoError(t, err)
	defer sd.Free()
	src, err := p.Component("safesd")
	require.NoError(t, err)
	ss, err := watermark.LoadSafeSD(be, src.Config(), src)
	require.NoError(t, err)
	defer ss.Free()
	var out nativeSafeSDResult
	code, err := ss.Code(s.Payload)
	require.NoError(t, err)
	for _, d := range code.Modules {
		out.qr = append(out.qr, map[bool]int{true: 1, false: 0}[d])
	}
	x, marked, err := ss.GenerateSafeSD(be, sd, samplers.GenerateOptions{Prompt: s.Prompt + " " + watermark.DefaultTrigger, Steps: s.Steps,
		Guidance: float32(s.Guidance), Seed: s.Seed, Height: 32, Width: 32}, watermark.DefaultTrigger, s.Payload)
	require.NoError(t, err)
	require.True(t, marked)
	o, err := be.Read(x) // [1, 1, 32, 32] in [0, 1], as the page's RGBA
	nn.Free(x)
	require.NoError(t, err)
	out.img = image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i, f := range o {
		q := uint8(math.Max(0, math.Min(255, math.Round(float64(f)*255))))
		copy(out.img.Pix[4*i:], []uint8{q, q, q, 255})
	}
	detect := func(img image.Image) watermark.SafeSDDetection {
		v, _, err := imageio.ToCHW(img, 32, 32)
		require.NoError(t, err)
		y := be.Upload([]int{1, 1, 32, 32}, watermark.Gray(v, 3))
		defer nn.Free(y)
		d, err := ss.Detect(be, y)
		require.NoError(t, err)
		return d[0]
	}
	out.payload = detect(out.img).Payload
	d := detect(page)
	out.pagePayload, out.pageCorrected, out.pageProbs = d.Payload, d.Corrected, d.Probs
	return out
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
