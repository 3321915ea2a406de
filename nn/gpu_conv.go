package nn

// Conv2d implements Backend. TODO: not implemented yet.
func (g *GPU) Conv2d(x, w, bias *Tensor, p Conv2dParams) *Tensor {
	return g.errf("conv2d", "not implemented")
}

// Upsample2x implements Backend. TODO: not implemented yet.
func (g *GPU) Upsample2x(x *Tensor) *Tensor {
	return g.errf("upsample2x", "not implemented")
}

// Concat implements Backend. TODO: not implemented yet.
func (g *GPU) Concat(axis int, ts ...*Tensor) *Tensor {
	return g.errf("concat", "not implemented")
}
