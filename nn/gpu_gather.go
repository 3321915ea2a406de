package nn

import "retrace/nn/gpu"

// Gather implements Backend: shaders/gather.wgsl copies one element per
// thread; F16 tables are converted to f32.
func (g *GPU) Gather(table *Tensor, ids []int) *Tensor {
	if !g.ok("gather", table) {
		return nil
	}
	if err := checkGather(table, ids); err != nil {
		return g.errf("gather", "%v", err)
	}
	if quantOf(table) != nil {
		return g.gatherQuant(table, ids)
	}
	d := table.Dim(1)
	if !g.fits(table.Numel()) && table.dtype == F16 || !g.fits(len(ids)*d) {
		return g.errf("gather", "table %v exceeds one storage binding", table)
	}
	idv := make([]float32, len(ids))
	for i, id := range ids {
		idv[i] = float32(id) // exact below 2^24
	}
	it := g.Upload([]int{len(ids)}, idv)
	out := g.newTensor("gather", []int{len(ids), d}, F32)
	if it == nil || out == nil {
		Free(it, out)
		return nil
	}
	defer Free(it)
	// Bind only the rows needed when the table is larger than a binding:
	// rows are gathered in groups that each fit.
	lo, hi := ids[0], ids[0]
	for _, id := range ids {
		lo, hi = min(lo, id), max(hi, id)
	}
	var bt gpu.Binding
	var ot uint32
	rowBase := 0
	if table.dtype == F16 {
		bt, ot = g.bind(table)
	} else if g.fits(table.Numel()) {
		bt, ot = g.bind(table)
	} else if g.fits((hi - lo + 1) * d) {
		bt, ot = g.bindElems(table, lo*d, (hi-lo+1)*d)
		rowBase = lo
	} else {
		Free(out)
		return g.errf("gather", "ids span rows %d..%d of %v, more than one storage binding", lo, hi, table)
	}
	bi, oi := g.bind(it)
	bo, oo := g.bind(out)
	n := len(ids) * d
	nx, ny := g.grid((n + 255) / 256)
	f16 := "false"
	if table.dtype == F16 {
		f16 = "true"
	}
	p := new(gpu.Params).U(uint32(n), uint32(d), ot, oi, oo, uint32(rowBase), uint32(nx))
	if !g.run("gather", "gather", map[string]string{"F16": f16}, []bool{true, true, false}, p, []gpu.Binding{bt, bi, bo}, nx, ny, 1) {
		Free(out)
		return nil
	}
	return out
}

// gatherQuant is Gather from a Q8/Q4 table (quantized embeddings):
// shaders/gather_q8.wgsl / gather_q4.wgsl dequantize the rows they copy.
func (g *GPU) gatherQuant(table *Tensor, ids []int) *Tensor {
	bt, q, ok := g.qbind("gather", table)
	if !ok {
		return nil
	}
	d := q.rowLen
	if !g.fits(len(ids) * d) {
		return g.errf("gather", "%d rows of %d exceed one storage binding", len(ids), d)
	}
	idv := make([]float32, len(ids))
	for i, id := range ids {
		idv[i] = float32(id)
	}
	it := g.Upload([]int{len(ids)}, idv)
	out := g.newTensor("gather", []int{len(ids), d}, F32)
	if it == nil || out == nil {
		Free(it, out)
		return nil
	}
	defer Free(it)
	bi, oi := g.bind(it)
	bo, oo := g.bind(out)
	n := len(ids) * d
	nx, ny := g.grid((n + 255) / 256)
	name := "gather_q8"
	if q.format == Q4 {
		name = "gather_q4"
	}
	k := g.qkernel("gather", name, q, map[string]string{}, []bool{true, true, false})
	if k == nil {
		Free(out)
		return nil
	}
	p := new(gpu.Params).U(uint32(n), uint32(d), oi, oo, uint32(q.rowWords), uint32(q.groups), q.qsbase(), uint32(nx))
	if !g.qrun("gather", k, p, []gpu.Binding{bt, bi, bo}, nx, ny, 1) {
		Free(out)
		return nil
	}
	return out
}
