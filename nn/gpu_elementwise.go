package nn

// Unary implements Backend. TODO: not implemented yet.
func (g *GPU) Unary(op UnaryOp, x *Tensor) *Tensor {
	return g.errf("unary", "not implemented")
}

// GEGLU implements Backend. TODO: not implemented yet.
func (g *GPU) GEGLU(x *Tensor) *Tensor {
	return g.errf("geglu", "not implemented")
}

// Axpby implements Backend. TODO: not implemented yet.
func (g *GPU) Axpby(a float32, x *Tensor, b float32, y *Tensor) *Tensor {
	return g.errf("axpby", "not implemented")
}

// Affine implements Backend. TODO: not implemented yet.
func (g *GPU) Affine(x *Tensor, mul, add float32) *Tensor {
	return g.errf("affine", "not implemented")
}

// Clamp implements Backend. TODO: not implemented yet.
func (g *GPU) Clamp(x *Tensor, lo, hi float32) *Tensor {
	return g.errf("clamp", "not implemented")
}

// Permute implements Backend. TODO: not implemented yet.
func (g *GPU) Permute(x *Tensor, perm ...int) *Tensor {
	return g.errf("permute", "not implemented")
}

// TimestepEmbedding implements Backend. TODO: not implemented yet.
func (g *GPU) TimestepEmbedding(t *Tensor, dim int, flipSinToCos bool, downscaleFreqShift float32, scale float32, maxPeriod float32) *Tensor {
	return g.errf("timestepembedding", "not implemented")
}

// Reduce implements Backend. TODO: not implemented yet.
func (g *GPU) Reduce(op ReduceOp, x *Tensor) *Tensor {
	return g.errf("reduce", "not implemented")
}

// SquaredError implements Backend. TODO: not implemented yet.
func (g *GPU) SquaredError(a, b *Tensor) *Tensor {
	return g.errf("squarederror", "not implemented")
}
