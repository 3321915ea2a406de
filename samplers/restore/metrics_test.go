package restore

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetrics(t *testing.T) {
	a := smoothImage(1, 2, 16, 20)
	for i := range a {
		a[i] = a[i]/2 + 0.5
	}
	p, err := PSNR(a, a)
	require.NoError(t, err)
	require.True(t, math.IsInf(p, 1))
	b := append([]float32(nil), a...)
	for i := range b {
		b[i] += 0.1 // MSE 0.01 → 20 dB
	}
	p, err = PSNR(a, b)
	require.NoError(t, err)
	require.InDelta(t, 20, p, 1e-4)
	s, err := SSIM(a, a, 2, 16, 20)
	require.NoError(t, err)
	require.InDelta(t, 1, s, 1e-12)
	// A constant shift keeps the structure and contrast terms at 1 and
	// lowers only the luminance term.
	s, err = SSIM(a, b, 2, 16, 20)
	require.NoError(t, err)
	require.Less(t, s, 1.0)
	require.Greater(t, s, 0.9)
	n := append([]float32(nil), a...)
	for i, v := range randn(4, len(n)) {
		n[i] += 0.3 * v
	}
	s2, err := SSIM(a, n, 2, 16, 20)
	require.NoError(t, err)
	require.Less(t, s2, 0.5)
	_, err = SSIM(a[:100], b[:100], 1, 10, 10)
	require.ErrorContains(t, err, "smaller than the 11×11 window")
	_, err = PSNR(a, b[:3])
	require.Error(t, err)
}
