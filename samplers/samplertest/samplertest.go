// Package samplertest holds the test helpers shared by the samplers
// packages and the CLI tests: one WebGPU backend per test binary (a test
// fails without one when CI is set, else skips), running a test on both
// backends, reading tensors and comparing values.
package samplertest

import (
	"math"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/gpu"
)

var (
	gpuOnce sync.Once
	gpuBE   *nn.GPU
	gpuErr  error
)

// GPU returns the shared GPU backend with its error state cleared.
func GPU(t testing.TB) *nn.GPU {
	t.Helper()
	gpuOnce.Do(func() { gpuBE, gpuErr = nn.OpenGPU(gpu.Options{}) })
	if gpuErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no WebGPU device: %v", gpuErr)
		}
		t.Skipf("no WebGPU device: %v", gpuErr)
	}
	gpuBE.ClearErr()
	return gpuBE
}

// BothBackends runs fn as subtests on the Go reference and the GPU.
func BothBackends(t *testing.T, fn func(t *testing.T, be nn.Backend)) {
	t.Run("cpu", func(t *testing.T) { fn(t, nn.NewCPU()) })
	t.Run("gpu", func(t *testing.T) { fn(t, GPU(t)) })
}

// Read returns a tensor's values, failing the test on error.
func Read(t testing.TB, be nn.Backend, x *nn.Tensor) []float32 {
	t.Helper()
	v, err := be.Read(x)
	require.NoError(t, err)
	return v
}

// RequireClose checks |got−want| ≤ atol + rtol·|want| elementwise.
func RequireClose(t testing.TB, want, got []float32, atol, rtol float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), msg)
	for i := range want {
		d := math.Abs(float64(want[i]) - float64(got[i]))
		if !(d <= atol+rtol*math.Abs(float64(want[i]))) {
			t.Fatalf("%s: element %d: got %v want %v", msg, i, got[i], want[i])
		}
	}
}
