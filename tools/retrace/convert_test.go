//go:build !js

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/pack"
)

// convert --budget-mb plans by sensitivity and writes a pack within it.
func TestConvertBudget(t *testing.T) {
	in := filepath.Join("..", "..", "testdata", "golden", "clip_text_tiny")
	out := filepath.Join(t.TempDir(), "p")
	var sb strings.Builder
	require.NoError(t, cmdConvert([]string{"--in", in, "--out", out, "--budget-mb", "0.06", "--group", "32"}, &sb))
	require.Contains(t, sb.String(), "plan: 12 weights (12 measured, 0 by proxy)")
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	require.NoError(t, err)
	m, err := pack.ParseManifest(b)
	require.NoError(t, err)
	require.LessOrEqual(t, m.Summarize().Total, int64(62914))
	err = cmdConvert([]string{"--in", in, "--out", out, "--budget-mb", "0.01"}, &sb)
	require.ErrorContains(t, err, "below the smallest pack")
	err = cmdConvert([]string{"--in", in, "--out", out, "--budget-mb", "1", "--sensitivity", "x"}, &sb)
	require.ErrorContains(t, err, "unknown sensitivity method")
}
