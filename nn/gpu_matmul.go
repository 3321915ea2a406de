package nn

// MatMul implements Backend. TODO: not implemented yet.
func (g *GPU) MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	return g.errf("matmul", "not implemented")
}

// Linear implements Backend. TODO: not implemented yet.
func (g *GPU) Linear(x, w, bias *Tensor) *Tensor {
	return g.errf("linear", "not implemented")
}
