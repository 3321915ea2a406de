package nn

// Attention implements Backend. TODO: not implemented yet.
func (c *CPU) Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
	return c.errf("attention", "not implemented")
}
