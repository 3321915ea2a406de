//go:build goexperiment.simd && amd64

package nn

import "simd/archsimd"

// The reference product's register block with AVX2 and FMA (Go's
// experimental simd/archsimd, built with GOEXPERIMENT=simd): four rows by
// sixteen columns keeps eight 8-wide accumulators, two B vectors and one
// broadcast A value in the 16 YMM registers.
const (
	gemmMR = 4
	gemmNR = 16
)

// gemmHasFMA is whether this CPU runs the vector kernel; without AVX2 and
// FMA the same block is summed with scalar code.
var gemmHasFMA = archsimd.X86.AVX2() && archsimd.X86.FMA()

// gemmKernel returns the gemmMR×gemmNR block Σ_k ap[k·mr+r]·bp[k·nr+q].
func gemmKernel(ap, bp []float32) [gemmMR * gemmNR]float32 {
	var out [gemmMR * gemmNR]float32
	if !gemmHasFMA {
		for len(ap) >= gemmMR && len(bp) >= gemmNR {
			for r := range gemmMR {
				for q := range gemmNR {
					out[r*gemmNR+q] += ap[r] * bp[q]
				}
			}
			ap, bp = ap[gemmMR:], bp[gemmNR:]
		}
		return out
	}
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
	n := min(len(ap)/gemmMR, len(bp)/gemmNR)
	for k := 0; k < n; k++ {
		b0 := archsimd.LoadFloat32x8Slice(bp[k*gemmNR:])
		b1 := archsimd.LoadFloat32x8Slice(bp[k*gemmNR+8:])
		a := ap[k*gemmMR : k*gemmMR+gemmMR]
		a0 := archsimd.BroadcastFloat32x8(a[0])
		c00 = b0.MulAdd(a0, c00)
		c01 = b1.MulAdd(a0, c01)
		a1 := archsimd.BroadcastFloat32x8(a[1])
		c10 = b0.MulAdd(a1, c10)
		c11 = b1.MulAdd(a1, c11)
		a2 := archsimd.BroadcastFloat32x8(a[2])
		c20 = b0.MulAdd(a2, c20)
		c21 = b1.MulAdd(a2, c21)
		a3 := archsimd.BroadcastFloat32x8(a[3])
		c30 = b0.MulAdd(a3, c30)
		c31 = b1.MulAdd(a3, c31)
	}
	c00.StoreSlice(out[0:])
	c01.StoreSlice(out[8:])
	c10.StoreSlice(out[16:])
	c11.StoreSlice(out[24:])
	c20.StoreSlice(out[32:])
	c21.StoreSlice(out[40:])
	c30.StoreSlice(out[48:])
	c31.StoreSlice(out[56:])
	return out
}
