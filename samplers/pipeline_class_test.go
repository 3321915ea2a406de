package samplers

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// fashionModel is retrace's default model (tools/train): a pixel-space
// UNet2DConditionModel with a class encoder and no VAE or tokenizer.
func fashionModel(t *testing.T) string {
	return filepath.Join(golden.RepoRoot(t), "models", "fashion")
}

func TestPipelineClassConditionalComponents(t *testing.T) {
	dir := fashionModel(t)
	c, err := PipelineComponents(dir)
	require.NoError(t, err)
	require.Empty(t, c.Tokenizer, "tokenizer is [null, null]")
	require.Empty(t, c.VAE, "vae is [null, null]")
	require.Equal(t, filepath.Join(dir, "text_encoder"), c.TextEncoder)

	// A missing required component is an error; absent optional ones are not.
	tmp := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "model_index.json"), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"]}`), 0o644))
	_, err = PipelineComponents(tmp)
	require.EqualError(t, err, `pipeline: model_index.json has no "text_encoder" component`)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "model_index.json"), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["x", "y"]}`), 0o644))
	c, err = PipelineComponents(tmp)
	require.NoError(t, err)
	require.Empty(t, c.Tokenizer)
	require.Empty(t, c.VAE)

	// A CLIP text encoder needs its tokenizer.
	clip, _ := golden.Open(t, "clip_text_tiny")
	_, err = LoadStableDiffusion(nn.NewCPU(), Components{TextEncoder: clip, UNet: c.UNet}, nn.F32)
	require.ErrorContains(t, err, "needs a tokenizer component")
}

func TestPipelineClassConditionalGenerate(t *testing.T) {
	be := nn.NewCPU()
	sd, err := LoadStableDiffusionAny(be, fashionModel(t), nn.F32)
	require.NoError(t, err)
	defer sd.Free()
	require.Nil(t, sd.VAE)
	require.Nil(t, sd.TextEncoder)
	require.Equal(t, 1, sd.Factor())
	require.Equal(t, []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}, sd.Vocabulary())

	s := sd.UNet.Config.SampleSize
	x, img, err := sd.Generate(be, GenerateOptions{Prompt: "a Bag", Steps: 2, Guidance: 3, Seed: 5, Batch: 2, Height: s, Width: s})
	require.NoError(t, err)
	require.Equal(t, []int{2, 1, s, s}, img.Shape())
	xv, iv := readAll(t, be, x), readAll(t, be, img)
	for i := range xv {
		// Pixel space: the image is the sample mapped [-1, 1] → [0, 1].
		want := min(max(xv[i]*0.5+0.5, 0), 1)
		require.InDelta(t, want, iv[i], 1e-6)
	}
	nn.Free(x, img)

	// Batch element 0 is the batch-1 image of the same noise.
	noise := NewNoise(5).Tensor(be, 2, 1, s, s)
	first := nn.Narrow(noise, 0, 1)
	_, img1, err := sd.Generate(be, GenerateOptions{Prompt: "bag", Steps: 2, Guidance: 3, Latents: first})
	require.NoError(t, err)
	v1 := readAll(t, be, img1)
	require.InDeltaSlice(t, iv[:len(v1)], v1, 1e-5)
	nn.Free(noise, first, img1)

	_, _, err = sd.Generate(be, GenerateOptions{Prompt: "a hat", Steps: 2, Guidance: 3, Height: s, Width: s})
	require.ErrorContains(t, err, `names no class; the vocabulary is "t-shirt"`)
}

func readAll(t *testing.T, be nn.Backend, x *nn.Tensor) []float32 {
	v, err := be.Read(x)
	require.NoError(t, err)
	return v
}

// TestPipelineGuidanceInterval: an interval holding every timestep is plain
// guidance; one holding none is the conditional prediction alone (= guidance
// 1 up to rounding); a half interval differs from both; an empty one is an
// error.
func TestPipelineGuidanceInterval(t *testing.T) {
	be := nn.NewCPU()
	sd, err := LoadStableDiffusionAny(be, fashionModel(t), nn.F32)
	require.NoError(t, err)
	defer sd.Free()
	s := sd.UNet.Config.SampleSize
	gen := func(g float32, iv *[2]float32) []float32 {
		x, img, err := sd.Generate(be, GenerateOptions{Prompt: "dress", Steps: 4, Guidance: g, GuidanceInterval: iv, Seed: 3, Batch: 2, Height: s, Width: s})
		require.NoError(t, err)
		defer nn.Free(x, img)
		return readAll(t, be, x)
	}
	plain, one := gen(3, nil), gen(1, nil)
	require.Equal(t, plain, gen(3, &[2]float32{0, 999}))
	none := gen(3, &[2]float32{2000, 3000})
	requireClose(t, one, none, 1e-4, 1e-4, "no step guided = guidance 1")
	half := gen(3, &[2]float32{0, 500}) // 4 leading steps: t = 750, 500, 250, 0
	var dPlain, dOne float64
	for i := range half {
		dPlain = max(dPlain, math.Abs(float64(half[i]-plain[i])))
		dOne = max(dOne, math.Abs(float64(half[i]-one[i])))
	}
	require.Greater(t, dPlain, 1e-3)
	require.Greater(t, dOne, 1e-3)
	_, _, err = sd.Generate(be, GenerateOptions{Prompt: "dress", Steps: 2, Guidance: 3, GuidanceInterval: &[2]float32{5, 1}, Seed: 3, Height: s, Width: s})
	require.ErrorContains(t, err, "guidance interval [5, 1] is empty")
}
