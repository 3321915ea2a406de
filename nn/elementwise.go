package nn

// Unary implements Backend. TODO: not implemented yet.
func (c *CPU) Unary(op UnaryOp, x *Tensor) *Tensor {
	return c.errf("unary", "not implemented")
}

// GEGLU implements Backend. TODO: not implemented yet.
func (c *CPU) GEGLU(x *Tensor) *Tensor {
	return c.errf("geglu", "not implemented")
}

// Axpby implements Backend. TODO: not implemented yet.
func (c *CPU) Axpby(a float32, x *Tensor, b float32, y *Tensor) *Tensor {
	return c.errf("axpby", "not implemented")
}

// Affine implements Backend. TODO: not implemented yet.
func (c *CPU) Affine(x *Tensor, mul, add float32) *Tensor {
	return c.errf("affine", "not implemented")
}

// Clamp implements Backend. TODO: not implemented yet.
func (c *CPU) Clamp(x *Tensor, lo, hi float32) *Tensor {
	return c.errf("clamp", "not implemented")
}

// Permute implements Backend. TODO: not implemented yet.
func (c *CPU) Permute(x *Tensor, perm ...int) *Tensor {
	return c.errf("permute", "not implemented")
}

// TimestepEmbedding implements Backend. TODO: not implemented yet.
func (c *CPU) TimestepEmbedding(t *Tensor, dim int, flipSinToCos bool, downscaleFreqShift float32, scale float32, maxPeriod float32) *Tensor {
	return c.errf("timestepembedding", "not implemented")
}

// Reduce implements Backend. TODO: not implemented yet.
func (c *CPU) Reduce(op ReduceOp, x *Tensor) *Tensor {
	return c.errf("reduce", "not implemented")
}

// SquaredError implements Backend. TODO: not implemented yet.
func (c *CPU) SquaredError(a, b *Tensor) *Tensor {
	return c.errf("squarederror", "not implemented")
}
