package samplers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/pack"
)

// tinyPipelineFolder lays the tiny fixtures out as a diffusers pipeline
// folder (model_index.json + component subfolders).
func tinyPipelineFolder(t *testing.T) string {
	dir, _ := golden.Open(t, "sd_pipeline_tiny")
	var cfg struct {
		Components struct {
			Scheduler json.RawMessage `json:"scheduler"`
		} `json:"components"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	out := t.TempDir()
	link := func(src, dst string) {
		abs, err := filepath.Abs(src)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(abs, filepath.Join(out, dst)))
	}
	link(filepath.Join(dir, "../clip_text_tiny/tokenizer"), "tokenizer")
	link(filepath.Join(dir, "../clip_text_tiny"), "text_encoder")
	link(filepath.Join(dir, "../unet2dcond_tiny"), "unet")
	link(filepath.Join(dir, "../vae_tiny"), "vae")
	require.NoError(t, os.MkdirAll(filepath.Join(out, "scheduler"), 0o755))
	sc := map[string]any{}
	require.NoError(t, json.Unmarshal(cfg.Components.Scheduler, &sc))
	sc["_class_name"] = "DDIMScheduler"
	sb, _ := json.Marshal(sc)
	require.NoError(t, os.WriteFile(filepath.Join(out, "scheduler", "scheduler_config.json"), sb, 0o644))
	idx := `{"_class_name": "StableDiffusionPipeline", "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"]}`
	require.NoError(t, os.WriteFile(filepath.Join(out, "model_index.json"), []byte(idx), 0o644))
	return out
}

// A diffusers pipeline folder and its f16 / q8 packs generate the same
// image (within the quantisation error) through the same loader.
func TestPipelineFromFolderAndPack(t *testing.T) {
	folder := tinyPipelineFolder(t)
	be := nn.NewCPU()
	opts := GenerateOptions{Prompt: "a photo of an astronaut", Steps: 4, Guidance: 7.5, Seed: 3, Height: 16, Width: 16}
	sd, err := LoadStableDiffusionAny(be, folder, nn.F32)
	require.NoError(t, err)
	_, ref, err := sd.Generate(be, opts)
	require.NoError(t, err)
	want := read(t, be, ref)
	sd.Free()
	for _, tc := range []struct {
		mode string
		tol  float64
	}{{"f16", 5e-3}, {"q8", 5e-2}} {
		t.Run(tc.mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "pack")
			_, err := pack.Convert(folder, out, pack.Policy{Mode: tc.mode}, 1<<20, nil)
			require.NoError(t, err)
			sd, err := LoadStableDiffusionAny(be, out, nn.F32)
			require.NoError(t, err)
			defer sd.Free()
			_, img, err := sd.Generate(be, opts)
			require.NoError(t, err)
			requireClose(t, want, read(t, be, img), tc.tol, 0, tc.mode+" pack image")
		})
	}
	_, err = LoadStableDiffusionAny(be, t.TempDir(), nn.F32)
	require.ErrorContains(t, err, "neither a diffusers pipeline folder")
}
