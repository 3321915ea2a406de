//go:build !js

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"retrace/nn/pack"
)

func init() {
	commands = append(commands,
		command{"testpack", "write a small test pack (the tiny fixture pipeline, f16) for tests and demos (--out DIR)", cmdTestpack},
	)
}

// repoRoot finds the module root (the folder holding go.mod) above the
// working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the retrace repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// goldenDir is the fixture tree ($RETRACE_GOLDEN or testdata/golden).
func goldenDir(root string) string {
	d := os.Getenv("RETRACE_GOLDEN")
	if d == "" {
		d = "testdata/golden"
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(root, d)
	}
	return d
}

// writeTestPack converts the tiny fixture pipeline (random CLIP text
// encoder, conditional UNet and VAE from the golden tree: 16×16 images,
// ~2 MiB) into an f16 pack at out, in shards of shardBytes so loaders see
// several shards.
func writeTestPack(root, out string, shardBytes int64) (*pack.Manifest, error) {
	g := goldenDir(root)
	b, err := os.ReadFile(filepath.Join(g, "sd_pipeline_tiny", "config.json"))
	if err != nil {
		return nil, fmt.Errorf("testpack: %w", err)
	}
	var cfg struct {
		Components struct {
			Scheduler map[string]any `json:"scheduler"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("testpack: sd_pipeline_tiny/config.json: %w", err)
	}
	tmp, err := os.MkdirTemp("", "retrace-testpack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for dst, src := range map[string]string{
		"tokenizer":    "clip_text_tiny/tokenizer",
		"text_encoder": "clip_text_tiny",
		"unet":         "unet2dcond_tiny",
		"vae":          "vae_tiny",
	} {
		if err := os.Symlink(filepath.Join(g, src), filepath.Join(tmp, dst)); err != nil {
			return nil, err
		}
	}
	sc := cfg.Components.Scheduler
	if sc == nil {
		return nil, errors.New("testpack: sd_pipeline_tiny/config.json has no scheduler config")
	}
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
	return pack.Convert(tmp, out, pack.Policy{Mode: "f16"}, shardBytes, nil)
}

func cmdTestpack(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("testpack", flag.ContinueOnError)
	dst := fs.String("out", "", "pack folder to write")
	shardKB := fs.Int("shard-kb", 1024, "shard size in KiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dst == "" {
		return errors.New("testpack: --out is required")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	m, err := writeTestPack(root, *dst, int64(*shardKB)<<10)
	if err != nil {
		return err
	}
	s := m.Summarize()
	fmt.Fprintf(out, "wrote test pack %s: %.1f MiB in %d shards\n", *dst, float64(s.Total)/(1<<20), s.Shards)
	return nil
}
