package nn

// Attention implements Backend. TODO: not implemented yet.
func (g *GPU) Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
	return g.errf("attention", "not implemented")
}
