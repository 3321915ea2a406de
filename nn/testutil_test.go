package nn

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/gpu"
)

var (
	gpuOnce sync.Once
	gpuDev  *gpu.Device
	gpuErr  error
)

// testGPU returns a GPU backend on the shared test device. Without an
// adapter the test fails when CI is set (kernels must really run there) and
// is skipped otherwise.
func testGPU(t testing.TB) *GPU {
	t.Helper()
	gpuOnce.Do(func() { gpuDev, gpuErr = gpu.Open(gpu.Options{}) })
	if gpuErr != nil {
		if os.Getenv("CI") != "" || errors.Is(gpuErr, gpu.ErrDeviceLost) {
			t.Fatalf("no WebGPU device: %v", gpuErr)
		}
		t.Skipf("no WebGPU device: %v", gpuErr)
	}
	return NewGPU(gpuDev)
}

// randn returns n standard-normal values from a fixed seed.
func randn(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// requireClose checks |got−want| ≤ atol + rtol·|want| elementwise and
// reports the worst element.
func requireClose(t testing.TB, want, got []float32, atol, rtol float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: length", msg)
	worst, wi := 0.0, -1
	for i := range want {
		w, g := float64(want[i]), float64(got[i])
		if math.IsNaN(g) != math.IsNaN(w) {
			t.Fatalf("%s: element %d is %v, want %v", msg, i, g, w)
		}
		d := math.Abs(w - g)
		if ex := d - (atol + rtol*math.Abs(w)); ex > worst {
			worst, wi = ex, i
		}
	}
	if wi >= 0 {
		t.Fatalf("%s: element %d: got %v want %v (|diff| %.3g, atol %.1g rtol %.1g)", msg, wi, got[wi], want[wi], math.Abs(float64(got[wi]-want[wi])), atol, rtol)
	}
}

// readBoth reads a tensor from each backend, failing on recorded errors.
func readT(t testing.TB, be Backend, x *Tensor) []float32 {
	t.Helper()
	require.NoError(t, be.Err())
	v, err := be.Read(x)
	require.NoError(t, err)
	return v
}
