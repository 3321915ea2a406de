// Package testpack writes the tiny fixture pipeline (testdata/golden:
// clip_text_tiny, unet2dcond_tiny, vae_tiny, sd_pipeline_tiny's DDIM
// scheduler; 16×16 images) as a retrace pack, for browser tests and
// manual checks of the site while no trained default model is at hand:
//
//	go run ./tools/testpack/cmd --out dist/site/packs/tiny
//
// The pack is f16 with 1 MiB shards so that loading it crosses several
// shards (progress events, sha256 checks, cache entries per shard).
package testpack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"retrace/nn/pack"
)

// Write lays the fixtures out as a diffusers pipeline folder (symlinks in a
// temporary folder) and converts it.
func Write(golden, out, mode string, shard int64) (*pack.Manifest, error) {
	tmp, err := os.MkdirTemp("", "testpack")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	b, err := os.ReadFile(filepath.Join(golden, "sd_pipeline_tiny", "config.json"))
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Components struct {
			Scheduler map[string]any `json:"scheduler"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("sd_pipeline_tiny/config.json: %w", err)
	}
	for dst, src := range map[string]string{
		"tokenizer": "clip_text_tiny/tokenizer", "text_encoder": "clip_text_tiny",
		"unet": "unet2dcond_tiny", "vae": "vae_tiny",
	} {
		abs, err := filepath.Abs(filepath.Join(golden, src))
		if err != nil {
			return nil, err
		}
		if err := os.Symlink(abs, filepath.Join(tmp, dst)); err != nil {
			return nil, err
		}
	}
	sc := cfg.Components.Scheduler
	sc["_class_name"] = "DDIMScheduler"
	sb, _ := json.Marshal(sc)
	if err := os.MkdirAll(filepath.Join(tmp, "scheduler"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "scheduler", "scheduler_config.json"), sb, 0o644); err != nil {
		return nil, err
	}
	idx := `{"_class_name": "StableDiffusionPipeline", "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"]}`
	if err := os.WriteFile(filepath.Join(tmp, "model_index.json"), []byte(idx), 0o644); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	return pack.Convert(tmp, out, pack.Policy{Mode: mode}, shard, nil)
}
