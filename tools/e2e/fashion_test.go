//go:build !js

package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
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
)

// The default model (models/fashion, 32×32 grayscale pixel space, a class
// name "text encoder") in the page, against the same edit on the Go CPU
// backend. Tolerances in 0–255 levels: the page runs WGSL kernels on
// SwiftShader with f16 weights unpacked in the shader, the Go reference
// the same f16 weights widened to f32; the two differ by float rounding
// order only, which 10 steps of a 2.8 MB UNet keep to a few levels.
const (
	fashionMatchMax  = 8.0
	fashionMatchMean = 0.5
	// A reconstruction with an exact inversion (pixel space: no VAE)
	// against the source image itself.
	fashionReconMax  = 8.0
	fashionReconMean = 0.5
	// The edit must change the picture: mean |Δ| from the source.
	fashionEditMinMean = 5.0
	fashionSteps       = 10
)

// fashionImage is a real Fashion-MNIST test image (testdata/fashion/
// README.md: t10k #2, a trouser, padded to 32×32 as the trainer does).
const fashionImage = "testdata/fashion/t10k-00002-trouser.png"

var fashionClasses = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

// TestFashion drives the editor with the site's default model, as `make
// run` serves it: the page loads models/fashion's pack with progress, the
// prompt fields offer its classes, a trouser → dress edit matches the
// native result, exact reconstructions return the source, every request
// stays on the test server. The steps share one page and run in order.
func TestFashion(t *testing.T) {
	exe := chromiumPath(t)
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "models", "fashion", "model_index.json")); err != nil {
		t.Fatalf("the default model models/fashion is missing: %v", err)
	}
	art := subArtifactsDir(t, root, "fashion")
	work := t.TempDir()
	bin := buildRetrace(t, root, work)

	// The site exactly as `make site` builds it (default model: auto).
	site := filepath.Join(work, "site")
	start := time.Now()
	cmd := exec.Command(bin, "site", "--out", site, "--json")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "retrace site: %s", errOutput(err))
	var report struct {
		WasmBytes int64  `json:"wasm_bytes"`
		WasmGzip  int64  `json:"wasm_gzip9_bytes"`
		Pack      string `json:"pack"`
		PackBytes int64  `json:"pack_bytes"`
	}
	require.NoError(t, json.Unmarshal(out, &report))
	require.NoError(t, os.WriteFile(filepath.Join(art, "site.json"), out, 0o644))
	require.Equal(t, "models/fashion", report.Pack, "the site's default pack is the default model")
	t.Logf("site in %.1fs: retrace.wasm %d bytes (%.2f MiB), gzip -9 %d bytes (%.2f MiB); default pack %s, %d bytes",
		time.Since(start).Seconds(), report.WasmBytes, float64(report.WasmBytes)/(1<<20), report.WasmGzip, float64(report.WasmGzip)/(1<<20), report.Pack, report.PackBytes)
	packDir := filepath.Join(site, "packs", "default")

	photo := filepath.Join(root, filepath.FromSlash(fashionImage))
	checkFashionImage(t, photo)
	source := decodePNG(t, photo)

	srv := startServer(t, bin, site)
	t.Logf("server: %s", srv.url)
	br := startBrowser(t, exe, filepath.Join(art, "netlog.json"))
	defer func() {
		_ = os.WriteFile(filepath.Join(art, "console.log"), []byte(br.consoleLog()), 0o644)
		_ = os.WriteFile(filepath.Join(art, "server.log"), []byte(srv.log.String()), 0o644)
		_ = os.WriteFile(filepath.Join(art, "chromium.log"), []byte(br.output.String()), 0o644)
	}()
	timings := map[string]float64{"wasm_bytes": float64(report.WasmBytes), "wasm_gzip9_bytes": float64(report.WasmGzip)}
	defer func() { writeJSON(t, filepath.Join(art, "timings.json"), timings) }()

	must := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.Fatalf("%s failed; later steps depend on it (console:\n%s)", name, br.consoleLog())
		}
	}

	must("default model loads with progress", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, br.run(t, pageTimeout, chromedp.Navigate(srv.url)))
		err := br.waitJS(t, loadTimeout, `window.__rt.messages.some(m => m.type === "result" && m.model) || window.__rt.errors.length > 0`)
		require.NoError(t, err, "the default model did not load: #status %q, #error %q", br.text(t, idStatus), br.errorText(t))
		require.Empty(t, br.errorText(t))
		timings["page_to_model_s"] = time.Since(start).Seconds()
		var m struct {
			Name       string
			Resolution int
			Channels   int
			Vocabulary []string
			Latent     bool
		}
		require.NoError(t, br.eval(t, 5*time.Second, `window.__rt.messages.find(m => m.type === "result" && m.model).data`, &m))
		require.Equal(t, 32, m.Resolution)
		require.Equal(t, 1, m.Channels, "grayscale")
		require.False(t, m.Latent, "pixel space")
		require.Equal(t, fashionClasses, m.Vocabulary)
		var prog []struct {
			Loaded, Total float64
			Shard         any
			T             float64
		}
		require.NoError(t, br.eval(t, 5*time.Second, `window.__rt.messages.filter(m => m.type === "progress").map(m => ({...m.data, t: m.t}))`, &prog))
		require.NotEmpty(t, prog, "no progress events while loading")
		last := prog[len(prog)-1]
		require.Greater(t, last.Total, 0.0)
		require.Equal(t, last.Total, last.Loaded, "the last progress event reports everything loaded")
		for i := 1; i < len(prog); i++ {
			require.GreaterOrEqual(t, prog[i].Loaded, prog[i-1].Loaded, "progress goes forward")
		}
		var loadMs float64
		require.NoError(t, br.eval(t, 5*time.Second, `(() => {
		  const ms = window.__rt.messages, p = ms.find(m => m.type === "progress"), r = ms.find(m => m.type === "result" && m.model);
		  return r.t - p.t;
		})()`, &loadMs))
		timings["model_load_first_progress_to_loaded_ms"] = loadMs
		t.Logf("default model %q loaded: %d progress events, %.0f bytes; first progress → loaded %.0f ms; navigation → loaded %.1f s; #status %q",
			m.Name, len(prog), last.Total, loadMs, timings["page_to_model_s"], br.text(t, idStatus))
		br.screenshot(t, filepath.Join(art, "loaded.png"))
	})

	must("prompts offer the class vocabulary", func(t *testing.T) {
		for _, id := range []string{idSource, idTarget} {
			var f struct {
				Tag     string
				Options []string
				Label   string
			}
			require.NoError(t, br.eval(t, 5*time.Second, fmt.Sprintf(`(() => {
			  const e = document.getElementById(%q);
			  const l = document.querySelector('label[for=%q]');
			  return {tag: e.tagName, options: e.options ? [...e.options].map(o => o.value) : [], label: l ? l.textContent.trim() : ""};
			})()`, id, id), &f))
			require.Equal(t, "SELECT", f.Tag, "#%s is a choice of the model's classes", id)
			require.Equal(t, fashionClasses, f.Options, "#%s", id)
			require.NotEmpty(t, f.Label, "#%s keeps its label", id)
		}
	})

	native := func(s editSettings) (*image.NRGBA, time.Duration) {
		start := time.Now()
		im := nativeEditGray(t, packDir, photo, s)
		return im, time.Since(start)
	}

	// One edit (seeded noise: the page and Go must draw the same) and one
	// exact reconstruction keep the test at a few minutes on SwiftShader;
	// RETRACE_E2E_FULL=1 adds a BDIA edit and an EDICT reconstruction.
	edits := []editSettings{{Source: "trouser", Target: "dress", Method: "ef-ddpm", Steps: fashionSteps, Guidance: 3, Seed: 7}}
	recons := []string{"bdia"}
	if os.Getenv("RETRACE_E2E_FULL") != "" {
		edits = append(edits, editSettings{Source: "trouser", Target: "dress", Method: "bdia", Steps: fashionSteps, Guidance: 3})
		recons = append(recons, "edict")
	}
	for _, edit := range edits {
		edit := edit
		t.Run("edit "+edit.Method+" matches native", func(t *testing.T) {
			res := br.edit(t, photo, edit)
			key := fmt.Sprintf("edit_%s_%d_steps", strings.ReplaceAll(edit.Method, "-", "_"), edit.Steps)
			timings[key+"_ms"] = res.Ms
			got := rgbaImage(res.Width, res.Height, res.RGBA)
			savePNG(t, filepath.Join(art, "edit-"+edit.Method+"-browser.png"), got)
			want, d := native(edit)
			timings[key+"_native_cpu_ms"] = float64(d.Milliseconds())
			savePNG(t, filepath.Join(art, "edit-"+edit.Method+"-native.png"), want)
			require.Equal(t, want.Bounds(), got.Bounds())
			mx, mean := diff(got, want)
			t.Logf("edit %s→%s (%s, %d steps, %d model calls): browser %.0f ms, native Go CPU %.0f ms; browser vs native max |Δ| %.0f, mean |Δ| %.3f levels",
				edit.Source, edit.Target, edit.Method, edit.Steps, res.Calls, res.Ms, float64(d.Milliseconds()), mx, mean)
			require.LessOrEqual(t, mx, fashionMatchMax)
			require.LessOrEqual(t, mean, fashionMatchMean)
			_, ds := diff(got, source)
			t.Logf("edit vs source: mean |Δ| %.2f levels", ds)
			require.Greater(t, ds, fashionEditMinMean, "the edit changes the picture")
			// The page shows the runtime's result unchanged.
			shown := br.resultImage(t)
			mx, _ = diff(shown, got)
			require.Zero(t, mx, "#result shows the runtime's result unchanged")
			br.screenshot(t, filepath.Join(art, "edit-"+edit.Method+"-page.png"))
		})
	}

	for _, method := range recons {
		t.Run("reconstruct "+method, func(t *testing.T) {
			s := editSettings{Source: "trouser", Target: "dress", Method: method, Steps: fashionSteps, Guidance: 3, Reconstruct: true}
			res := br.edit(t, photo, s)
			timings[fmt.Sprintf("reconstruct_%s_%d_steps_ms", method, s.Steps)] = res.Ms
			got := rgbaImage(res.Width, res.Height, res.RGBA)
			savePNG(t, filepath.Join(art, "reconstruct-"+method+".png"), got)
			mx, mean := diff(got, source)
			t.Logf("%s reconstruction (%d steps, %d model calls, %.0f ms) vs the source: max |Δ| %.0f, mean |Δ| %.3f levels", method, s.Steps, res.Calls, res.Ms, mx, mean)
			require.LessOrEqual(t, mx, fashionReconMax)
			require.LessOrEqual(t, mean, fashionReconMean)
		})
	}

	t.Run("tabs", func(t *testing.T) {
		var tabs []string
		require.NoError(t, br.eval(t, 5*time.Second, `[...document.querySelectorAll('[role="tab"]')].map(e => e.id || e.textContent.trim())`, &tabs))
		require.Len(t, tabs, 3, "three tabs: Edit, Restore, Watermark")
		for i := range tabs {
			require.NoError(t, br.eval(t, 5*time.Second, fmt.Sprintf(`(() => { document.querySelectorAll('[role="tab"]')[%d].click(); return true; })()`, i), nil))
			time.Sleep(300 * time.Millisecond)
			name := strings.ToLower(strings.Fields(tabs[i] + " tab")[0])
			br.screenshot(t, filepath.Join(art, fmt.Sprintf("tab-%d-%s.png", i+1, sanitize(name))))
		}
		require.NoError(t, br.eval(t, 5*time.Second, `(() => { document.querySelectorAll('[role="tab"]')[0].click(); return true; })()`, nil))
	})

	br.cancel()
	t.Run("network stays local", func(t *testing.T) {
		n := requireLocalNetwork(t, br, srv)
		t.Logf("%d requests from the page, all to the test server", n)
	})
}

// subArtifactsDir is <artifacts>/name, emptied first (the rest of the
// artifacts folder belongs to the other tests).
func subArtifactsDir(t *testing.T, root, name string) string {
	d := os.Getenv("RETRACE_E2E_ARTIFACTS")
	if d == "" {
		d = filepath.Join(root, "dist", "e2e")
	}
	d = filepath.Join(d, name)
	require.NoError(t, os.RemoveAll(d))
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}

// nativeEditGray is the page's edit on the Go CPU backend for a grayscale
// model, step for step as wasm/runtime.go does it: imageio.Decode →
// imageio.ToCHW at the model's resolution → BT.601 luma → EditImage →
// gray RGBA rounded as runtime.ToRGBA.
func nativeEditGray(t *testing.T, packDir, imgPath string, s editSettings) *image.NRGBA {
	be := nn.NewCPU()
	sd, err := samplers.LoadStableDiffusionPack(be, packDir)
	require.NoError(t, err)
	defer sd.Free()
	require.Nil(t, sd.VAE, "the default model works in pixel space")
	require.Equal(t, 1, sd.UNet.Config.InChannels)
	r := sd.UNet.Config.SampleSize
	f, err := os.Open(imgPath)
	require.NoError(t, err)
	defer f.Close()
	img, _, err := imageio.Decode(f)
	require.NoError(t, err)
	v, _, err := imageio.ToCHW(img, r, r)
	require.NoError(t, err)
	g := make([]float32, r*r)
	for i := range g {
		g[i] = 0.299*v[i] + 0.587*v[r*r+i] + 0.114*v[2*r*r+i]
	}
	x := be.Upload([]int{1, 1, r, r}, g)
	defer nn.Free(x)
	out, _, err := sd.EditImage(be, samplers.EditImageOptions{
		Image: x, Source: s.Source, Target: s.Target, Method: s.Method, Steps: s.Steps,
		Guidance: float32(s.Guidance), Seed: s.Seed, ReconstructOnly: s.Reconstruct,
		CrossReplace: 0.8, SelfReplace: 0.4, // the page's defaults
	})
	require.NoError(t, err)
	defer nn.Free(out)
	o, err := be.Read(out)
	require.NoError(t, err)
	h, w := out.Dim(2), out.Dim(3)
	res := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		q := uint8(math.Max(0, math.Min(255, math.Round(float64(o[i])*255))))
		copy(res.Pix[4*i:], []uint8{q, q, q, 255})
	}
	return res
}

func decodePNG(t *testing.T, path string) image.Image {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	img, _, err := image.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	return img
}

// checkFashionImage checks the committed test image against the
// Fashion-MNIST test set where Debian's dataset-fashion-mnist is
// installed ($FASHION_MNIST_DIR overrides): t10k image #2, padded by 2.
func checkFashionImage(t *testing.T, path string) {
	dir := os.Getenv("FASHION_MNIST_DIR")
	if dir == "" {
		dir = "/usr/share/datasets/fashion-mnist"
	}
	f, err := os.Open(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Logf("Fashion-MNIST not installed (%v): not checking %s against it", err, fashionImage)
		return
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	const idx = 2
	head := make([]byte, 16+(idx+1)*28*28)
	_, err = io.ReadFull(z, head)
	require.NoError(t, err)
	px := head[16+idx*28*28:]
	img := decodePNG(t, path)
	require.Equal(t, image.Rect(0, 0, 32, 32), img.Bounds())
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			want := uint8(0)
			if x >= 2 && x < 30 && y >= 2 && y < 30 {
				want = px[(y-2)*28+x-2]
			}
			got := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
			require.Equal(t, want, got, "%s pixel (%d, %d) vs Fashion-MNIST t10k #%d", fashionImage, x, y, idx)
		}
	}
}
