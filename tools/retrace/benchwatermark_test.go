//go:build !js

package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBenchWatermarkErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--n", "3"}, "want ≥ 10"},
		{[]string{"--inv-steps", "0"}, "want ≥ 1"},
		{[]string{"--attacks", "none,fog"}, `unknown attack "fog"`},
		{[]string{"--methods", "ddim,ef-ddpm"}, "want ddim, edict or bdia"},
		{[]string{"--backend", "cpu"}, "--model is required"},
	} {
		require.ErrorContains(t, cmdBenchWatermark(c.args, io.Discard), c.want, "%v", c.args)
	}
}

func TestROCMetrics(t *testing.T) {
	// Perfect separation, total overlap and ties.
	require.Equal(t, 1.0, aucOf([]float64{3, 4}, []float64{1, 2}))
	require.Equal(t, 0.0, aucOf([]float64{1, 2}, []float64{3, 4}))
	require.Equal(t, 0.5, aucOf([]float64{1, 1}, []float64{1, 1}))
	require.Equal(t, 0.75, aucOf([]float64{2, 4}, []float64{1, 3}))
	// 100 clean scores 0..99: at 1% FPR one clean image may pass, so the
	// threshold is 98 and marked scores above it count.
	neg := make([]float64, 100)
	for i := range neg {
		neg[i] = float64(i)
	}
	require.Equal(t, 0.5, tprAt([]float64{98.5, 120, 50, 98}, neg, 0.01))
	// With fewer than 100 clean images (0..97) none may pass: the
	// threshold is the highest clean score.
	require.Equal(t, 0.75, tprAt([]float64{98.5, 120, 50, 98}, neg[:98], 0.01))
}

func TestBenchRestoreImageSource(t *testing.T) {
	require.ErrorContains(t, cmdBenchRestore([]string{"--model", "x", "--images", t.TempDir(), "--fashion-mnist", "5"}, io.Discard), "not both")
	require.ErrorContains(t, cmdBenchRestore([]string{"--model", "x"}, io.Discard), "--images or --fashion-mnist is required")
}
