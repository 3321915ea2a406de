package nn

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBinaryMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct{ a, b []int }{
		{[]int{1}, []int{1}},
		{[]int{7}, []int{7}},
		{[]int{4095}, []int{1}},
		{[]int{2, 3, 7, 5}, []int{1, 3, 1, 1}}, // bias over channels
		{[]int{2, 77, 1}, []int{3, 1, 77, 9}},
		{[]int{3, 1, 5}, []int{4, 1}},
	}
	for _, op := range []BinaryOp{Add, Sub, Mul, Div, Max, Min} {
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", op, i), func(t *testing.T) {
				av, bv := randn(uint64(i), numel(tc.a)), randn(uint64(i+100), numel(tc.b))
				want := readT(t, c, c.Binary(op, c.Upload(tc.a, av), c.Upload(tc.b, bv)))
				got := readT(t, g, g.Binary(op, g.Upload(tc.a, av), g.Upload(tc.b, bv)))
				requireClose(t, want, got, 1e-6, 1e-6, op.String())
			})
		}
	}
}

func TestBinaryErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		x := be.Binary(Add, be.Upload([]int{2, 3}, make([]float32, 6)), be.Upload([]int{4}, make([]float32, 4)))
		require.Nil(t, x)
		require.ErrorContains(t, be.Err(), "do not broadcast")
		// later ops propagate nil without a new error
		require.Nil(t, be.Binary(Mul, x, x))
		require.ErrorContains(t, be.Err(), "do not broadcast")
		be.ClearErr()
	}
}

// TestBinarySplitsLargeTensors forces a tiny binding limit so the chunked
// path (and offset binding) runs.
func TestBinaryViewsAndChunks(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	av, bv := randn(1, 6*1000+3), randn(2, 1000)
	ga, ca := g.Upload([]int{6*1000 + 3}, av), c.Upload([]int{6*1000 + 3}, av)
	// A view that starts at an unaligned element offset.
	gv, cv := Reshape(ga, 6003), Reshape(ca, 6003)
	gn := Narrow(Reshape(gv, 6003, 1), 3, 1000)
	cn := Narrow(Reshape(cv, 6003, 1), 3, 1000)
	want := readT(t, c, c.Binary(Add, Reshape(cn, 1000), c.Upload([]int{1000}, bv)))
	got := readT(t, g, g.Binary(Add, Reshape(gn, 1000), g.Upload([]int{1000}, bv)))
	requireClose(t, want, got, 0, 0, "view")
}

func TestBinaryChunksOverBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4096 // 1024 floats per binding
	n := 5000
	av, bv := randn(3, 2*n), randn(4, n)
	want := readT(t, c, c.Binary(Mul, c.Upload([]int{2, n}, av), c.Upload([]int{n}, bv)))
	got := readT(t, g, g.Binary(Mul, g.Upload([]int{2, n}, av), g.Upload([]int{2, n}, append(append([]float32{}, bv...), bv...))))
	requireClose(t, want, got, 0, 0, "chunked same-shape")
	// a broadcast operand that does not fit one binding is a clear error
	require.Nil(t, g.Binary(Mul, g.Upload([]int{2, n}, av), g.Upload([]int{n}, bv)))
	require.ErrorContains(t, g.Err(), "maxStorageBufferBindingSize")
}
