package watermark

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/safetensors"
	"retrace/samplers"
	"retrace/samplers/watermark/qr"
)

// safeSDDir is the shipped injector/detector (tools/train/safesd.py).
func safeSDDir(t testing.TB) string {
	return filepath.Join(golden.RepoRoot(t), "models", "fashion", "safesd")
}

// safeSDGolden opens testdata/golden-fashion/safesd/io.safetensors (or under
// $RETRACE_GOLDEN_FASHION), written by `safesd.py golden` from the shipped
// weights.
func safeSDGolden(t *testing.T) *safetensors.File {
	d := os.Getenv("RETRACE_GOLDEN_FASHION")
	if d == "" {
		d = "testdata/golden-fashion"
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(golden.RepoRoot(t), d)
	}
	f, err := safetensors.Open(filepath.Join(d, "safesd", "io.safetensors"))
	require.NoError(t, err, "safesd golden fixture")
	t.Cleanup(func() { f.Close() })
	return f
}

// moduleCode wraps a module matrix (1 = dark) as a Code for Embed.
func moduleCode(m []float32) *qr.Code {
	c := &qr.Code{Version: 1, Size: 21, Modules: make([]bool, len(m))}
	for i, v := range m {
		c.Modules[i] = v > 0.5
	}
	return c
}

// TestGoldenFashionSafeSD: retrace's injector and detector reproduce
// PyTorch's outputs of the shipped networks (marked images and the
// detector's logit map) within 1e-4, on both backends.
func TestGoldenFashionSafeSD(t *testing.T) {
	io := safeSDGolden(t)
	xs, x := golden.F32(t, io, "in.x")
	_, mods := golden.F32(t, io, "in.modules")
	_, wantMarked := golden.F32(t, io, "out.marked")
	_, wantLogits := golden.F32(t, io, "out.logits")
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		ss, err := LoadSafeSDDir(be, safeSDDir(t))
		require.NoError(t, err)
		defer ss.Free()
		n := ss.Config.Modules * ss.Config.Modules
		var marked []float32
		for i := 0; i < xs[0]; i++ {
			one := be.Upload([]int{1, 1, xs[2], xs[3]}, x[i*xs[2]*xs[3]:(i+1)*xs[2]*xs[3]])
			out, err := ss.Embed(be, one, moduleCode(mods[i*n:(i+1)*n]))
			require.NoError(t, err)
			marked = append(marked, read(t, be, out)...)
			nn.Free(one, out)
		}
		requireClose(t, wantMarked, marked, 1e-4, "safesd out.marked")
		y := be.Upload(xs, wantMarked)
		defer nn.Free(y)
		probs, err := ss.ModuleProbs(be, y)
		require.NoError(t, err)
		// module probabilities = sigmoid(mean of the golden logit map over
		// each module's pixels)
		sz := ss.Config.ImageSize
		for i, p := range probs {
			sum, cnt := make([]float64, n), make([]int, n)
			for px, m := range ss.pool {
				sum[m] += float64(wantLogits[i*sz*sz+px])
				cnt[m]++
			}
			want := make([]float32, n)
			for m := range want {
				want[m] = float32(1 / (1 + math.Exp(-sum[m]/float64(cnt[m]))))
			}
			requireClose(t, want, p, 1e-4, "safesd module probabilities")
		}
	})
}

// TestSafeSDEmbedDetect: the QR code of a payload written into real
// Fashion-MNIST test images decodes back from their 8-bit PNG form, and
// the unmarked images decode to nothing.
func TestSafeSDEmbedDetect(t *testing.T) {
	io := safeSDGolden(t)
	xs, x := golden.F32(t, io, "in.x")
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		ss, err := LoadSafeSDDir(be, safeSDDir(t))
		require.NoError(t, err)
		defer ss.Free()
		code, err := ss.Code("rtrc-01")
		require.NoError(t, err)
		in := be.Upload(xs, x)
		defer nn.Free(in)
		out, err := ss.Embed(be, in, code)
		require.NoError(t, err)
		v := read(t, be, out)
		nn.Free(out)
		for i := range v { // the 8-bit image a PNG keeps
			v[i] = float32(math.Round(float64(v[i]+1)*127.5)/127.5 - 1)
		}
		y := be.Upload(xs, v)
		defer nn.Free(y)
		dets, err := ss.Detect(be, y)
		require.NoError(t, err)
		for i, d := range dets {
			require.True(t, d.Marked, "image %d: %s", i, d.Reason)
			require.Equal(t, "rtrc-01", d.Payload, "image %d", i)
			require.Greater(t, d.ModuleAgreement, 0.9, "image %d", i)
		}
		clean, err := ss.Detect(be, in)
		require.NoError(t, err)
		for i, d := range clean {
			require.False(t, d.Marked, "clean image %d decoded %q", i, d.Payload)
			require.NotEmpty(t, d.Reason)
		}
	})
}

func TestSafeSDErrors(t *testing.T) {
	be := nn.NewCPU()
	ss, err := LoadSafeSDDir(be, safeSDDir(t))
	require.NoError(t, err)
	defer ss.Free()
	_, err = ss.Code("")
	require.ErrorContains(t, err, "empty payload")
	_, err = ss.Code("much too long for version 1-H")
	require.ErrorContains(t, err, "safesd: payload")
	code, err := ss.Code("ok")
	require.NoError(t, err)
	wrong := be.Zeros([]int{1, 3, 32, 32})
	defer nn.Free(wrong)
	_, err = ss.Embed(be, wrong, code)
	require.ErrorContains(t, err, "must be [B, 1, 32, 32]")
	_, err = ss.Detect(be, wrong)
	require.ErrorContains(t, err, "must be [B, 1, 32, 32]")
	small := be.Zeros([]int{1, 1, 28, 28})
	defer nn.Free(small)
	_, err = ss.Detect(be, small)
	require.ErrorContains(t, err, "must be [B, 1, 32, 32]")

	for _, tc := range []struct{ name, cfg, want string }{
		{"not json", `{`, "safesd: config"},
		{"class", `{"_class_name":"UNet2DModel"}`, "want SafeSDWatermark"},
		{"version", `{"_class_name":"SafeSDWatermark","version":2,"modules":25}`, "only version 1"},
		{"layers", `{"_class_name":"SafeSDWatermark","version":1,"modules":21,"layers":3,"activation":"silu"}`, "4-layer SiLU"},
		{"channels", `{"_class_name":"SafeSDWatermark","version":1,"modules":21,"layers":4,"activation":"silu","image_size":32,"channels":3}`, "one channel"},
		{"strength", `{"_class_name":"SafeSDWatermark","version":1,"modules":21,"layers":4,"activation":"silu","image_size":32,"channels":1,"injector_channels":8,"detector_channels":8,"strength":2}`, "strength"},
		{"missing weights", `{"_class_name":"SafeSDWatermark","version":1,"modules":21,"layers":4,"activation":"silu","image_size":32,"channels":1,"injector_channels":8,"detector_channels":8,"strength":0.2}`, "injector.conv1.weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSafeSD(be, []byte(tc.cfg), nn.MapSource{})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestSafeSDWrongPipeline: a latent (VAE) pipeline is refused with the
// reason, not marked with an injector trained on other samples.
func TestSafeSDWrongPipeline(t *testing.T) {
	be := nn.NewCPU()
	ss, err := LoadSafeSDDir(be, safeSDDir(t))
	require.NoError(t, err)
	defer ss.Free()
	sd, err := samplers.LoadStableDiffusionAny(be, golden.TinyPipelineFolder(t), nn.F32)
	require.NoError(t, err)
	defer sd.Free()
	_, _, err = ss.GenerateSafeSD(be, sd, samplers.GenerateOptions{Prompt: "a horse #wm", Steps: 1, Height: 32, Width: 32}, DefaultTrigger, "id")
	require.ErrorContains(t, err, "latents for a VAE")
}

func TestSafeSDSplitTrigger(t *testing.T) {
	for _, tc := range []struct {
		prompt, trigger, want string
		on                    bool
	}{
		{"dress #wm", "#wm", "dress", true},
		{"#WM a red dress", "#wm", "a red dress", true},
		{"dress", "#wm", "dress", false},
		{"dress#wm", "#wm", "dress#wm", false}, // a word, not a substring
		{"  #wm  ", "#wm", "", true},
		{"dress #wm", "", "dress #wm", false},
	} {
		got, on := SplitTrigger(tc.prompt, tc.trigger)
		require.Equal(t, tc.want, got, tc.prompt)
		require.Equal(t, tc.on, on, tc.prompt)
	}
}
