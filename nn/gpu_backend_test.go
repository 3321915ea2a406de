package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The start-up autotune picks a known variant for each op it tunes and
// leaves the backend usable.
func TestAutotune(t *testing.T) {
	g := testGPU(t)
	g.Autotune()
	require.NoError(t, g.Err())
	require.Contains(t, []string{"reg", "tiled"}, g.Variants["matmul"])
	require.NotEmpty(t, g.Variants["conv2d"])
	// Results are unchanged whatever was picked.
	c := NewCPU()
	a, b := randn(1, 33*17), randn(2, 17*9)
	want := readT(t, c, c.MatMul(c.Upload([]int{33, 17}, a), c.Upload([]int{17, 9}, b), false, false))
	got := readT(t, g, g.MatMul(g.Upload([]int{33, 17}, a), g.Upload([]int{17, 9}, b), false, false))
	requireClose(t, want, got, 1e-4, 1e-4, "matmul after autotune")
}
