//go:build !js

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/golden"
)

// tinyPipelineFolder lays the tiny fixtures out as a diffusers pipeline folder.
func tinyPipelineFolder(t *testing.T) string { return golden.TinyPipelineFolder(t) }

// dwtdct through the CLI: embed a text payload into the fixture photo,
// detect it (JSON), and read the unmarked photo.
func TestWatermarkCLIDwtDct(t *testing.T) {
	dir, _ := golden.Open(t, "dwtdct")
	var cfg struct {
		Cases []struct {
			Unmarked string `json:"unmarked_png"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	orig := filepath.Join(dir, cfg.Cases[0].Unmarked)
	marked := filepath.Join(t.TempDir(), "marked.png")
	var out bytes.Buffer
	require.NoError(t, cmdWatermark([]string{"embed", "--scheme", "dwtdct", "--image", orig, "--payload", "SDV2", "--out", marked}, &out))
	out.Reset()
	require.NoError(t, cmdWatermark([]string{"detect", "--scheme", "dwtdct", "--image", marked, "--payload", "SDV2", "--json"}, &out))
	var r dwtDctResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	require.Equal(t, "SDV2", r.Text)
	require.True(t, *r.Match)
	out.Reset()
	require.NoError(t, cmdWatermark([]string{"detect", "--scheme", "dwtdct", "--image", orig, "--payload", "SDV2", "--json"}, &out))
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	require.False(t, *r.Match)
	require.ErrorContains(t, cmdWatermark([]string{"embed", "--scheme", "dwtdct", "--image", orig}, &out), "give the payload")
	require.ErrorContains(t, cmdWatermark([]string{"detect", "--scheme", "dwtdct", "--image", orig, "--bits", "1", "--hex", "ff"}, &out), "one of")
	require.ErrorContains(t, cmdWatermark([]string{"mark"}, &out), "watermark embed")
	require.ErrorContains(t, cmdWatermark([]string{"detect", "--scheme", "qr", "--image", orig}, &out), `--scheme "qr"`)
}

// treering through the CLI on the tiny random pipeline (CPU): the commands
// run end to end and report. The tiny VAE is untrained, so an image does
// not encode back to its latents and the verdict is not meaningful here.
func TestWatermarkCLITreeRing(t *testing.T) {
	folder := tinyPipelineFolder(t)
	img := filepath.Join(t.TempDir(), "tr.png")
	var out bytes.Buffer
	common := []string{"--scheme", "treering", "--model", folder, "--backend", "cpu", "--key-seed", "5", "--steps", "3", "--size", "32"}
	require.NoError(t, cmdWatermark(append([]string{"embed", "--prompt", "a horse", "--out", img}, common...), &out))
	require.Contains(t, out.String(), "radius 3")
	out.Reset()
	require.NoError(t, cmdWatermark(append([]string{"detect", "--image", img, "--method", "bdia", "--json"}, common...), &out))
	var r treeRingResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	require.Equal(t, "bdia", r.Method)
	require.Equal(t, 3, r.Radius)
	require.Greater(t, r.Metric, 0.0)
	require.ErrorContains(t, cmdWatermark(append([]string{"detect", "--image", img, "--method", "ef-ddpm"}, common...), &out), "inversion method")
}

// safesd through the CLI with the default model (CPU, 4 steps): the marked
// generation decodes to its payload; the same generation without the
// trigger word is unmarked; bad input is rejected with the reason.
func TestWatermarkCLISafeSD(t *testing.T) {
	model := filepath.Join(golden.RepoRoot(t), "models", "fashion")
	tmp := t.TempDir()
	marked, clean := filepath.Join(tmp, "marked.png"), filepath.Join(tmp, "clean.png")
	var out bytes.Buffer
	common := []string{"--scheme", "safesd", "--model", model, "--backend", "cpu", "--steps", "4", "--seed", "7"}
	require.NoError(t, cmdWatermark(append([]string{"embed", "--prompt", "dress #wm", "--payload", "id-42", "--out", marked}, common...), &out))
	require.Contains(t, out.String(), "marked true")
	detect := func(img string) safeSDResult {
		out.Reset()
		require.NoError(t, cmdWatermark([]string{"detect", "--scheme", "safesd", "--safesd", filepath.Join(model, "safesd"), "--image", img, "--json"}, &out))
		var r safeSDResult
		require.NoError(t, json.Unmarshal(out.Bytes(), &r))
		require.Len(t, r.Probs, 441)
		return r
	}
	r := detect(marked)
	require.True(t, r.Marked, r.Reason)
	require.Equal(t, "id-42", r.Payload)

	// The unmarked twin: generate the same prompt and seed without the trigger.
	require.NoError(t, cmdGenerate([]string{"--model", model, "--backend", "cpu", "--prompt", "dress", "--steps", "4", "--guidance", "1.5", "--seed", "7", "--out", clean}, &out))
	r = detect(clean)
	require.False(t, r.Marked)
	require.NotEmpty(t, r.Reason)

	out.Reset()
	require.NoError(t, cmdWatermark([]string{"detect", "--scheme", "safesd", "--model", model, "--image", clean}, &out))
	require.Contains(t, out.String(), "no mark")

	require.ErrorContains(t, cmdWatermark(append([]string{"embed", "--prompt", "dress", "--payload", "x", "--out", marked}, common...), &out), `lacks the trigger word "#wm"`)
	require.ErrorContains(t, cmdWatermark(append([]string{"embed", "--prompt", "dress #wm", "--out", marked}, common...), &out), "--payload")
	require.ErrorContains(t, cmdWatermark(append([]string{"embed", "--prompt", "dress #wm", "--payload", "far too long", "--out", marked}, common...), &out), "safesd: payload")
	require.ErrorContains(t, cmdWatermark([]string{"detect", "--scheme", "safesd", "--safesd", tmp, "--image", clean}, &out), "safesd")
}
