package nn

// GroupNorm implements Backend. TODO: not implemented yet.
func (g *GPU) GroupNorm(x, gamma, beta *Tensor, groups int, eps float32, silu bool) *Tensor {
	return g.errf("groupnorm", "not implemented")
}

// LayerNorm implements Backend. TODO: not implemented yet.
func (g *GPU) LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	return g.errf("layernorm", "not implemented")
}

// Softmax implements Backend. TODO: not implemented yet.
func (g *GPU) Softmax(x *Tensor) *Tensor {
	return g.errf("softmax", "not implemented")
}
