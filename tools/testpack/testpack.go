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
	"os"

	goldenpkg "retrace/nn/golden"
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
	if err := goldenpkg.LayoutTinyPipeline(golden, tmp); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	return pack.Convert(tmp, out, pack.Policy{Mode: mode}, shard, nil)
}
