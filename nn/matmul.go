package nn

// MatMul implements Backend. TODO: not implemented yet.
func (c *CPU) MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	return c.errf("matmul", "not implemented")
}

// Linear implements Backend. TODO: not implemented yet.
func (c *CPU) Linear(x, w, bias *Tensor) *Tensor {
	return c.errf("linear", "not implemented")
}
