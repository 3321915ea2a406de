package samplers

import (
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
