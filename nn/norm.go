package nn

// GroupNorm implements Backend. TODO: not implemented yet.
func (c *CPU) GroupNorm(x, gamma, beta *Tensor, groups int, eps float32, silu bool) *Tensor {
	return c.errf("groupnorm", "not implemented")
}

// LayerNorm implements Backend. TODO: not implemented yet.
func (c *CPU) LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	return c.errf("layernorm", "not implemented")
}

// Softmax implements Backend. TODO: not implemented yet.
func (c *CPU) Softmax(x *Tensor) *Tensor {
	return c.errf("softmax", "not implemented")
}
