package nn

// Conv2d implements Backend. TODO: not implemented yet.
func (c *CPU) Conv2d(x, w, bias *Tensor, p Conv2dParams) *Tensor {
	return c.errf("conv2d", "not implemented")
}

// Upsample2x implements Backend. TODO: not implemented yet.
func (c *CPU) Upsample2x(x *Tensor) *Tensor {
	return c.errf("upsample2x", "not implemented")
}

// Concat implements Backend. TODO: not implemented yet.
func (c *CPU) Concat(axis int, ts ...*Tensor) *Tensor {
	return c.errf("concat", "not implemented")
}
