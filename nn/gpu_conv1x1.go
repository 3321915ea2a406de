package nn

// conv1x1 computes a 1×1, stride-1, unpadded convolution as a matrix
// product on the GEMM kernels, which are several times faster than the
// implicit-GEMM convolution for this shape (no spatial gather):
//
//	outᵀ[n] [HW, Cout] = x[n]ᵀ [HW, Cin] · Wᵀ [Cin, Cout] (+ bias per Cout)
//
// then a permute back to NCHW. Returns nil, false when the shape is not a
// plain 1×1 convolution, so Conv2d takes its general path.
func (g *GPU) conv1x1(x, w, bias *Tensor, p Conv2dParams) (*Tensor, bool) {
	if w.Rank() != 4 || w.Dim(2) != 1 || w.Dim(3) != 1 || x.Rank() != 4 || x.dtype != F32 {
		return nil, false
	}
	if max(p.StrideH, 1) != 1 || max(p.StrideW, 1) != 1 || p.PadTop != 0 || p.PadBottom != 0 || p.PadLeft != 0 || p.PadRight != 0 {
		return nil, false
	}
	if w.dtype != F32 && w.dtype != F16 || bias != nil && bias.dtype != F32 && bias.dtype != F16 {
		return nil, false
	}
	n, cin, h, wd := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	cout := w.Dim(0)
	if w.Dim(1) != cin || (bias != nil && (bias.Rank() != 1 || bias.Dim(0) != cout)) {
		return nil, false // let the general path report the error
	}
	// The GEMM splits a and out over batch items but needs one item of
	// each, and the whole weight, in a binding.
	if !g.fits(cin*h*wd) || !g.fits(cout*h*wd) || !g.fits(w.Numel()) {
		return nil, false
	}
	xa := Reshape(x, n, cin, h*wd)
	w2 := Reshape(w, cout, cin)
	d := mmDims{batch: n, M: h * wd, K: cin, N: cout, ars: 1, acs: h * wd, brs: 1, bcs: cin, out: []int{n, h * wd, cout}}
	t := g.gemm("conv2d", d, true, true, xa, w2, bias)
	Free(xa, w2)
	if t == nil {
		return nil, true
	}
	o := g.Permute(t, 0, 2, 1)
	Free(t)
	r := Reshape(o, n, cout, h, wd)
	Free(o)
	return r, true
}
