//go:build !js

package e2e

import (
	"fmt"
	"image"
	"image/color"
	"math"
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
	"retrace/samplers"
	"retrace/samplers/restore"
)

// Tolerances, in 0–255 levels, between the Restore tab (WGSL on
// SwiftShader, f16 weights unpacked in the shaders) and the same restore
// on the Go CPU backend: float rounding order only, amplified a little by
// the solver's steps.
const (
	restoreMatchMax  = 8.0
	restoreMatchMean = 1.0
	restoreTimeout   = 300 * time.Second
)

type restoreSettings struct {
	Task, Solver string
	Steps        int
	Seed         uint64
}

// TestRestoreBrowser drives the Restore tab in headless chromium with the
// default model's pack (models/fashion: pixel-space, 32×32 grayscale):
// an inpainting run with a mask painted with pointer events matches the
// same restore natively; an empty and a wrong-size mask give clear errors
// and the tab keeps working.
func TestRestoreBrowser(t *testing.T) {
	exe := chromiumPath(t)
	root := repoRoot(t)
	model := filepath.Join(root, "models", "fashion")
	if _, err := os.Stat(model); err != nil {
		t.Skipf("the default model is not present: %v", err)
	}
	art := filepath.Join(os.Getenv("RETRACE_E2E_ARTIFACTS"), "restore")
	if os.Getenv("RETRACE_E2E_ARTIFACTS") == "" {
		art = filepath.Join(root, "dist", "e2e", "restore")
	}
	require.NoError(t, os.RemoveAll(art))
	require.NoError(t, os.MkdirAll(art, 0o755))
	work := t.TempDir()
	bin := buildRetrace(t, root, work)

	site := filepath.Join(work, "site")
	cmd := exec.Command(bin, "site", "--out", site, "--model", model, "--json")
	cmd.Dir = root
	_, err := cmd.Output()
	require.NoError(t, err, "retrace site: %s", errOutput(err))
	packDir := filepath.Join(site, "packs", "default")

	photo := filepath.Join(work, "shirt.png")
	savePNG(t, photo, shirtPicture(64, 48))
	wrongMask := filepath.Join(work, "mask-20x10.png")
	m := image.NewGray(image.Rect(0, 0, 20, 10))
	for i := range m.Pix {
		m.Pix[i] = 255
	}
	savePNG(t, wrongMask, m)

	srv := startServer(t, bin, site)
	br := startBrowser(t, exe, filepath.Join(art, "netlog.json"))
	defer func() {
		_ = os.WriteFile(filepath.Join(art, "console.log"), []byte(br.consoleLog()), 0o644)
		_ = os.WriteFile(filepath.Join(art, "server.log"), []byte(srv.log.String()), 0o644)
	}()
	must := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.Fatalf("%s failed; later steps depend on it (console:\n%s)", name, br.consoleLog())
		}
	}

	must("page and model", func(t *testing.T) {
		require.NoError(t, br.run(t, pageTimeout, chromedp.Navigate(srv.url+"#restore")))
		err := br.waitJS(t, loadTimeout, `window.__rt && window.__rt.messages.some(m => m.type === "result" && m.model)`)
		require.NoError(t, err, "the default model did not load: #status %q, #error %q", br.text(t, idStatus), br.errorText(t))
		var info struct {
			Resolution, Channels int
			Restore              *struct{ Tasks []string }
		}
		require.NoError(t, br.eval(t, 5*time.Second, `window.__rt.messages.find(m => m.type === "result" && m.model).data`, &info))
		require.Equal(t, 32, info.Resolution)
		require.NotNil(t, info.Restore, "the default model is pixel-space: restore is offered")
		var visible bool
		require.NoError(t, br.eval(t, 5*time.Second, `!document.getElementById("panel-restore").hidden`, &visible))
		require.True(t, visible, "#restore opens the Restore tab")
	})

	set := restoreSettings{Task: "inpaint", Solver: "ddnm", Steps: 5, Seed: 3}
	var mask struct {
		Width, Height int
		RGBA          []int
	}
	must("inpaint matches native", func(t *testing.T) {
		require.NoError(t, br.run(t, 10*time.Second, chromedp.SetUploadFiles("#restore-image", []string{photo}, chromedp.ByQuery)))
		require.NoError(t, br.run(t, 10*time.Second, chromedp.SetUploadFiles("#restore-clean", []string{photo}, chromedp.ByQuery)))
		require.NoError(t, br.waitJS(t, 30*time.Second, `!document.getElementById("restore-run").disabled || !document.getElementById("restore-error").hidden`))
		require.Empty(t, br.restoreError(t))
		br.setRestore(t, set)
		var solvers []string
		require.NoError(t, br.eval(t, 5*time.Second, `[...document.getElementById("restore-solver").options].map(o => o.value)`, &solvers))
		require.Equal(t, []string{"ddnm", "dds", "reddiff", "sde", "ddim", "pinv"}, solvers, "inpainting offers every solver")
		// Paint a box with the pointer: strokes across the mask canvas
		// (model pixels 9…22 × 10…21, brush 4).
		br.setField(t, "restore-brush", 4)
		var msg string
		require.NoError(t, br.eval(t, 10*time.Second, `(() => {
		  const m = document.getElementById("restore-mask"), b = m.getBoundingClientRect();
		  if (b.width === 0) return "the mask canvas is not visible";
		  const at = (x, y) => ({clientX: b.left + x / m.width * b.width, clientY: b.top + y / m.height * b.height, pointerId: 1, bubbles: true, pointerType: "mouse", buttons: 1});
		  for (let y = 12; y <= 20; y += 2) {
		    m.dispatchEvent(new PointerEvent("pointerdown", at(11, y)));
		    for (let x = 11; x <= 20; x++) m.dispatchEvent(new PointerEvent("pointermove", at(x, y)));
		    m.dispatchEvent(new PointerEvent("pointerup", at(20, y)));
		  }
		  return "";
		})()`, &msg))
		require.Empty(t, msg)
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { const m = retraceApp.restoreMask(); return {width: m.width, height: m.height, rgba: Array.from(m.rgba)}; })()`, &mask))
		require.Equal(t, 32, mask.Width)
		holes := 0
		for i := 0; i < len(mask.RGBA); i += 4 {
			if mask.RGBA[i] > 127 {
				holes++
			}
		}
		t.Logf("painted mask: %d of %d pixels to fill", holes, 32*32)
		require.Greater(t, holes, 80)
		require.Less(t, holes, 300)

		res := br.runRestore(t)
		got := rgbaImage(res.Width, res.Height, res.RGBA)
		savePNG(t, filepath.Join(art, "inpaint-browser.png"), got)
		want := nativeRestore(t, packDir, photo, rgbaImage(mask.Width, mask.Height, mask.RGBA), set)
		savePNG(t, filepath.Join(art, "inpaint-native.png"), want)
		mx, mean := diff(got, want)
		t.Logf("inpaint (%s, %d steps, %d model calls): browser %.0f ms; browser vs native max |Δ| %.0f, mean |Δ| %.3f levels (tolerance %.0f, %.1f)",
			set.Solver, set.Steps, res.Calls, res.Ms, mx, mean, restoreMatchMax, restoreMatchMean)
		require.LessOrEqual(t, mx, restoreMatchMax)
		require.LessOrEqual(t, mean, restoreMatchMean)
		// The page shows the runtime's result, the degraded input and metrics.
		shown := br.imageOf(t, "restore-result")
		mx, _ = diff(shown, got)
		require.Zero(t, mx, "#restore-result shows the runtime's result unchanged")
		deg := br.imageOf(t, "restore-degraded")
		require.Equal(t, 32, deg.Bounds().Dx())
		savePNG(t, filepath.Join(art, "inpaint-degraded.png"), deg)
		metrics := br.text(t, "restore-metrics")
		t.Logf("#restore-metrics: %q", metrics)
		require.Contains(t, metrics, "PSNR")
		require.Contains(t, metrics, "SSIM")
		var dl string
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { const a = document.getElementById("restore-download"); return a.hidden ? "" : a.href; })()`, &dl))
		require.True(t, strings.HasPrefix(dl, "data:image/png"), "download link: %.40q", dl)
		br.screenshot(t, filepath.Join(art, "restore-tab.png"))
	})

	t.Run("empty mask", func(t *testing.T) {
		require.NoError(t, br.run(t, 10*time.Second, chromedp.Click("#restore-clear", chromedp.ByQuery)))
		msg, code := br.restoreFails(t)
		t.Logf("#restore-error: %q (%s)", msg, code)
		require.Equal(t, "bad-mask", code)
		require.Contains(t, msg, "mask is empty: paint the region to fill")
	})
	t.Run("wrong-size mask", func(t *testing.T) {
		require.NoError(t, br.run(t, 10*time.Second, chromedp.SetUploadFiles("#restore-mask-file", []string{wrongMask}, chromedp.ByQuery)))
		require.NoError(t, br.waitJS(t, 10*time.Second, `/20×10/.test(document.getElementById("restore-mask-note").textContent)`))
		msg, code := br.restoreFails(t)
		t.Logf("#restore-error: %q (%s)", msg, code)
		require.Equal(t, "bad-mask", code)
		require.Contains(t, msg, "mask is 20×10, the image is 64×48")
		require.Contains(t, msg, "32×32")
		br.screenshot(t, filepath.Join(art, "restore-error-mask-size.png"))
	})
	t.Run("still works", func(t *testing.T) {
		require.NoError(t, br.run(t, 10*time.Second, chromedp.Click("#restore-box", chromedp.ByQuery)))
		br.setRestore(t, restoreSettings{Task: "inpaint", Solver: "pinv", Steps: 1})
		res := br.runRestore(t)
		require.Equal(t, 32, res.Width)
		require.Zero(t, res.Calls, "A†y calls no model")
	})
}

// shirtPicture is a light T-shirt silhouette on black, Fashion-MNIST
// style, in a w×h picture (the model sees the centred square).
func shirtPicture(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	s := float64(min(w, h))
	ox, oy := float64(w)/2, float64(h)/2
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			u, v := (float64(x)-ox)/s, (float64(y)-oy)/s        // −½…½
			in := math.Abs(u) < 0.2 && v > -0.32 && v < 0.38 || // body
				math.Abs(u) < 0.38 && v > -0.32 && v < -0.1 // sleeves
			neck := math.Hypot(u, v+0.34) < 0.08
			c := uint8(0)
			if in && !neck {
				c = uint8(150 + 80*math.Cos(9*u)*math.Cos(5*v))
			}
			img.SetNRGBA(x, y, color.NRGBA{c, c, c, 255})
		}
	}
	return img
}

// setRestore types the settings into the tab.
func (b *browser) setRestore(t *testing.T, s restoreSettings) {
	b.setField(t, "restore-task", s.Task)
	b.setField(t, "restore-solver", s.Solver)
	b.setField(t, "restore-steps", s.Steps)
	b.setField(t, "restore-seed", s.Seed)
}

// restoreError is the Restore tab's shown error ("" when none).
func (b *browser) restoreError(t *testing.T) string {
	var s string
	require.NoError(t, b.eval(t, 5*time.Second, `(() => { const e = document.getElementById("restore-error"); return e.hidden ? "" : document.getElementById("restore-error-text").textContent.trim(); })()`, &s))
	return s
}

const restoreErrorShown = `!document.getElementById("restore-error").hidden`

// runRestore clicks Restore and returns the runtime's result.
func (b *browser) runRestore(t *testing.T) pageRun {
	n := b.counts(t)
	require.NoError(t, b.waitJS(t, 30*time.Second, `!document.getElementById("restore-run").disabled`))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#restore-run", chromedp.ByQuery)))
	err := b.waitJS(t, restoreTimeout, fmt.Sprintf(`window.__rt.results.length > %d || %s`, n, restoreErrorShown))
	require.NoError(t, err, "no result: #status %q", b.text(t, idStatus))
	require.Empty(t, b.restoreError(t), "the restore failed")
	var r pageRun
	require.NoError(t, b.eval(t, 10*time.Second, `window.__rt.results[window.__rt.results.length - 1]`, &r))
	require.NoError(t, b.waitJS(t, 30*time.Second, `!document.getElementById("restore-result").hidden && !document.getElementById("restore-run").disabled`))
	return r
}

// restoreFails runs and returns the error the tab shows and its code.
func (b *browser) restoreFails(t *testing.T) (string, string) {
	n := b.counts(t)
	require.NoError(t, b.waitJS(t, 30*time.Second, `!document.getElementById("restore-run").disabled`))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#restore-run", chromedp.ByQuery)))
	require.NoError(t, b.waitJS(t, restoreTimeout, fmt.Sprintf(`window.__rt.results.length > %d || %s`, n, restoreErrorShown)))
	msg := b.restoreError(t)
	require.NotEmpty(t, msg, "the bad mask gave a result instead of an error")
	var code string
	require.NoError(t, b.eval(t, 5*time.Second, `document.getElementById("restore-error").dataset.code || ""`, &code))
	require.NoError(t, b.waitJS(t, 30*time.Second, `!document.getElementById("restore-run").disabled`))
	return msg, code
}

// imageOf reads an <img> or <canvas> by id at its natural size.
func (b *browser) imageOf(t *testing.T, id string) image.Image {
	var dataURL string
	require.NoError(t, b.eval(t, 10*time.Second, fmt.Sprintf(`(async () => {
	  const src = document.getElementById(%q);
	  let w, h;
	  if (src instanceof HTMLImageElement) { await src.decode(); w = src.naturalWidth; h = src.naturalHeight; }
	  else { w = src.width; h = src.height; }
	  const c = document.createElement("canvas"); c.width = w; c.height = h;
	  c.getContext("2d").drawImage(src, 0, 0);
	  return c.toDataURL("image/png");
	})()`, id), &dataURL))
	img, err := decodeDataURL(dataURL)
	require.NoError(t, err, "#%s: %.80s", id, dataURL)
	return img
}

// nativeRestore runs the same restore as the page with the same code on
// the Go CPU backend: pack → pipeline → restore.PipelinePrior; PNG →
// imageio.Decode → ToCHW at the model's resolution → BT.601 luma (the
// runtime's grayscale input); the page's mask → restore.UserMask;
// Degrade with the runtime's noise seed; Solve; round(255·(x+1)/2).
func nativeRestore(t *testing.T, packDir, imgPath string, mask image.Image, s restoreSettings) *image.NRGBA {
	be := nn.NewCPU()
	sd, err := samplers.LoadStableDiffusionPack(be, packDir)
	require.NoError(t, err)
	defer sd.Free()
	prior, free, err := restore.PipelinePrior(be, sd, "", "default")
	require.NoError(t, err)
	defer free()
	f, err := os.Open(imgPath)
	require.NoError(t, err)
	defer f.Close()
	img, _, err := imageio.Decode(f)
	require.NoError(t, err)
	r, c := sd.UNet.Config.SampleSize, sd.UNet.Config.InChannels
	require.Equal(t, 1, c)
	v, _, err := imageio.ToCHW(img, r, r)
	require.NoError(t, err)
	g := make([]float32, r*r)
	for i := range g {
		g[i] = 0.299*v[i] + 0.587*v[r*r+i] + 0.114*v[2*r*r+i]
	}
	known, err := restore.UserMask(mask, img.Bounds().Dx(), img.Bounds().Dy(), r, r)
	require.NoError(t, err)
	op, err := restore.NewOperator(be, s.Task, c, restore.TaskOptions{Known: known, H: r, W: r, BlurSigma: 2})
	require.NoError(t, err)
	defer op.Free()
	shape := []int{1, c, r, r}
	x := be.Upload(shape, g)
	y, err := restore.Degrade(be, op, x, 0, samplers.NewNoise(s.Seed^0x9e3779b97f4a7c15))
	nn.Free(x)
	require.NoError(t, err)
	defer nn.Free(y)
	out, _, err := restore.Solve(be, s.Solver, prior, restore.Problem{Op: op, Y: y, Shape: shape}, restore.Options{Steps: s.Steps, Seed: s.Seed})
	require.NoError(t, err)
	defer nn.Free(out)
	rv, err := be.Read(out)
	require.NoError(t, err)
	res := image.NewNRGBA(image.Rect(0, 0, r, r))
	for i, f := range rv {
		q := uint8(math.Max(0, math.Min(255, math.Round((float64(f)+1)/2*255))))
		res.Pix[4*i], res.Pix[4*i+1], res.Pix[4*i+2], res.Pix[4*i+3] = q, q, q, 255
	}
	return res
}
