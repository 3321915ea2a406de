package nn

import (
	"testing"

	"retrace/nn/golden"
	"retrace/nn/safetensors"
)

func goldenFixture(t testing.TB, name string) (string, *safetensors.File) {
	return golden.Open(t, name)
}

func sharedFixture(t testing.TB, name string) string { return golden.Shared(t, name) }

func ioF32(t testing.TB, f *safetensors.File, name string) ([]int, []float32) {
	return golden.F32(t, f, name)
}

func ioInts(t testing.TB, f *safetensors.File, name string) ([]int, []int64) {
	return golden.Ints(t, f, name)
}

// bothBackends runs fn as subtests on the Go reference and the GPU.
func bothBackends(t *testing.T, fn func(t *testing.T, be Backend)) {
	t.Run("cpu", func(t *testing.T) { fn(t, NewCPU()) })
	t.Run("gpu", func(t *testing.T) { fn(t, testGPU(t)) })
}
