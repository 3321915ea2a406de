package golden

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// LayoutTinyPipeline lays the tiny fixtures of the golden folder dir out as
// a diffusers pipeline folder in out (symlinks to clip_text_tiny,
// unet2dcond_tiny, vae_tiny and sd_pipeline_tiny's scheduler as a
// DDIMScheduler; 16×16 images), for tests, the test pack and manual checks.
func LayoutTinyPipeline(dir, out string) error {
	b, err := os.ReadFile(filepath.Join(dir, "sd_pipeline_tiny", "config.json"))
	if err != nil {
		return err
	}
	var cfg struct {
		Components struct {
			Scheduler map[string]any `json:"scheduler"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("sd_pipeline_tiny/config.json: %w", err)
	}
	for dst, src := range map[string]string{
		"tokenizer": "clip_text_tiny/tokenizer", "text_encoder": "clip_text_tiny",
		"unet": "unet2dcond_tiny", "vae": "vae_tiny",
	} {
		abs, err := filepath.Abs(filepath.Join(dir, src))
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(out, dst)); err != nil {
			return err
		}
	}
	sc := cfg.Components.Scheduler
	if sc == nil {
		return fmt.Errorf("sd_pipeline_tiny/config.json has no scheduler config")
	}
	sc["_class_name"] = "DDIMScheduler"
	sb, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "scheduler"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "scheduler", "scheduler_config.json"), sb, 0o644); err != nil {
		return err
	}
	idx := `{"_class_name": "StableDiffusionPipeline", "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"]}`
	return os.WriteFile(filepath.Join(out, "model_index.json"), []byte(idx), 0o644)
}

// TinyPipelineFolder is LayoutTinyPipeline into a temporary folder.
func TinyPipelineFolder(t testing.TB) string {
	t.Helper()
	out := t.TempDir()
	require.NoError(t, LayoutTinyPipeline(Dir(t), out))
	return out
}
