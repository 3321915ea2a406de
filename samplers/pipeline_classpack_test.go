package samplers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/pack"
	"retrace/nn/safetensors"
)

// classPixelFolder lays out a pixel-space (no VAE), class-conditional
// pipeline (ClassPromptEncoder, no tokenizer) around the tiny conditional
// UNet.
func classPixelFolder(t *testing.T) string {
	dir, _ := golden.Open(t, "unet2dcond_tiny")
	out := t.TempDir()
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(abs, filepath.Join(out, "unet")))
	te := filepath.Join(out, "text_encoder")
	require.NoError(t, os.MkdirAll(te, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(te, "config.json"), []byte(`{"_class_name": "ClassPromptEncoder", "classes": ["cat", "dog", "bird"], "tokens": 2, "dim": 32}`), 0o644))
	f, err := os.Create(filepath.Join(te, "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, safetensors.Write(f, []safetensors.Tensor{safetensors.Float32Tensor("embedding.weight", []int{4, 64}, NewNoise(9).Float32s(4*64))}, nil))
	require.NoError(t, f.Close())
	require.NoError(t, os.MkdirAll(filepath.Join(out, "scheduler"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "scheduler", "scheduler_config.json"), []byte(`{"_class_name": "DDIMScheduler", "beta_schedule": "linear", "clip_sample": false}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, "model_index.json"), []byte(`{"_class_name": "StableDiffusionPipeline", "text_encoder": ["retrace", "ClassPromptEncoder"], "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"]}`), 0o644))
	return out
}

// A pixel-space class-conditional pipeline converts to a pack (no VAE, no
// tokenizer) and generates the same image from the folder and the pack.
func TestClassPipelinePack(t *testing.T) {
	folder := classPixelFolder(t)
	be := nn.NewCPU()
	opts := GenerateOptions{Prompt: "a dog", Steps: 3, Guidance: 3, Seed: 2, Height: 8, Width: 8}
	sd, err := LoadStableDiffusionAny(be, folder, nn.F32)
	require.NoError(t, err)
	require.Nil(t, sd.VAE)
	_, ref, err := sd.Generate(be, opts)
	require.NoError(t, err)
	want := read(t, be, ref)
	sd.Free()
	out := filepath.Join(t.TempDir(), "pack")
	_, err = pack.Convert(folder, out, pack.Policy{Mode: "f16"}, 1<<20, nil)
	require.NoError(t, err)
	sd, err = LoadStableDiffusionAny(be, out, nn.F32)
	require.NoError(t, err)
	defer sd.Free()
	require.Nil(t, sd.VAE)
	_, img, err := sd.Generate(be, opts)
	require.NoError(t, err)
	requireClose(t, want, read(t, be, img), 5e-3, 0, "class pipeline from its pack")
	_, _, err = sd.Generate(be, GenerateOptions{Prompt: "a horse", Steps: 3, Height: 8, Width: 8})
	require.ErrorContains(t, err, "horse")
}
