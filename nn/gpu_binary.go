package nn

import (
	"fmt"

	"retrace/nn/gpu"
)

// Binary implements Backend: shaders/binary.wgsl, one thread per output
// element. Outputs larger than one storage binding are processed in chunks;
// an operand larger than a binding must then have the output's shape.
func (g *GPU) Binary(op BinaryOp, a, b *Tensor) *Tensor {
	if !g.ok("binary", a, b) {
		return nil
	}
	if a.dtype != F32 || b.dtype != F32 {
		return g.errf(op.String(), "needs f32 tensors, got %v and %v", a, b)
	}
	if binaryf(op) == nil {
		return g.errf("binary", "unknown op %d", op)
	}
	shape, sa, sb, err := broadcast(a.shape, b.shape)
	if err != nil {
		return g.errf(op.String(), "%v", err)
	}
	out := g.newTensor(op.String(), shape, F32)
	if out == nil {
		return nil
	}
	n := out.Numel()
	chunk := max(g.maxElems()/256*256, 256)
	for _, t := range []*Tensor{a, b} {
		if !g.fits(t.Numel()) && !sameShape(t.shape, shape) {
			Free(out)
			return g.errf(op.String(), "operand %v exceeds maxStorageBufferBindingSize and is broadcast", t)
		}
	}
	operand := func(t *Tensor, start, cn int) (gpu.Binding, uint32) {
		if g.fits(t.Numel()) {
			return g.bind(t)
		}
		bd, base := g.bindElems(t, start, cn)
		return bd, base - uint32(start) // wraps; the kernel adds the global index
	}
	consts := map[string]string{"OP": fmt.Sprintf("%du", op)}
	for start := 0; start < n; start += chunk {
		cn := min(chunk, n-start)
		ba, oa := operand(a, start, cn)
		bb, ob := operand(b, start, cn)
		bo, oo := g.bindElems(out, start, cn)
		nx, ny := g.grid((cn + 255) / 256)
		p := new(gpu.Params).U(uint32(cn), uint32(len(shape)), uint32(start), oa, ob, oo, uint32(nx), 0)
		p.U(vec8(shape)...).U(vec8(sa)...).U(vec8(sb)...)
		if !g.run(op.String(), "binary", consts, []bool{true, true, false}, p, []gpu.Binding{ba, bb, bo}, nx, ny, 1) {
			Free(out)
			return nil
		}
	}
	return out
}

// vec8 pads an int slice to 8 u32 (two WGSL vec4<u32>).
func vec8(v []int) []uint32 {
	out := make([]uint32, 8)
	for i, x := range v {
		out[i] = uint32(x)
	}
	return out
}
