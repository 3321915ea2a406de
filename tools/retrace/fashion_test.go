//go:build !js

package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/golden"
)

// sample-grid's sampler flags: bad values are rejected with the reason
// before any sampling; a valid override runs.
func TestSampleGridFlags(t *testing.T) {
	model := filepath.Join(golden.RepoRoot(t), "models", "fashion")
	var out bytes.Buffer
	base := []string{"--model", model, "--backend", "cpu", "--per-class", "1", "--batch", "1", "--steps", "2", "--classes", "bag", "--out", t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--guidance-interval", "600"}, "want lo,hi timesteps"},
		{[]string{"--guidance-interval", "600,100"}, "lo ≤ hi"},
		{[]string{"--spacing", "sideways"}, `--spacing "sideways"`},
		{[]string{"--scheduler", "MagicScheduler"}, `"MagicScheduler" is not supported`},
		{[]string{"--per-class", "0"}, "must be positive"},
	} {
		err := cmdSampleGrid(append(append([]string{}, base...), tc.args...), &out)
		require.ErrorContains(t, err, tc.want, tc.args)
	}
	// A pack has no scheduler folder to override.
	err := cmdSampleGrid([]string{"--model", t.TempDir(), "--backend", "cpu", "--scheduler", "DDPMScheduler", "--out", t.TempDir()}, &out)
	require.Error(t, err)
	require.NoError(t, cmdSampleGrid(append(append([]string{}, base...), "--scheduler", "DPMSolverMultistepScheduler", "--guidance-interval", "0,500"), &out))
	require.Contains(t, out.String(), "1/1 samples per class")
}
