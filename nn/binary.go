package nn

import "fmt"

const maxRank = 8

// broadcast returns the NumPy-broadcast shape of a and b and each operand's
// element strides over that shape (0 on broadcast axes).
func broadcast(a, b []int) (out, sa, sb []int, err error) {
	r := max(len(a), len(b))
	if r > maxRank {
		return nil, nil, nil, fmt.Errorf("rank %d exceeds %d", r, maxRank)
	}
	out = make([]int, r)
	sa, sb = make([]int, r), make([]int, r)
	pa, pb := padShape(a, r), padShape(b, r)
	for i := 0; i < r; i++ {
		switch {
		case pa[i] == pb[i]:
			out[i] = pa[i]
		case pa[i] == 1:
			out[i] = pb[i]
		case pb[i] == 1:
			out[i] = pa[i]
		default:
			return nil, nil, nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	stA, stB := 1, 1
	for i := r - 1; i >= 0; i-- {
		if pa[i] != 1 {
			sa[i] = stA
		}
		if pb[i] != 1 {
			sb[i] = stB
		}
		stA *= pa[i]
		stB *= pb[i]
	}
	return out, sa, sb, nil
}

func padShape(s []int, r int) []int {
	p := make([]int, r)
	for i := range p {
		p[i] = 1
	}
	copy(p[r-len(s):], s)
	return p
}

func binaryf(op BinaryOp) func(x, y float32) float32 {
	switch op {
	case Add:
		return func(x, y float32) float32 { return x + y }
	case Sub:
		return func(x, y float32) float32 { return x - y }
	case Mul:
		return func(x, y float32) float32 { return x * y }
	case Div:
		return func(x, y float32) float32 { return x / y }
	case Max:
		return func(x, y float32) float32 { return max(x, y) }
	case Min:
		return func(x, y float32) float32 { return min(x, y) }
	}
	return nil
}

// Binary implements Backend (reference).
func (c *CPU) Binary(op BinaryOp, a, b *Tensor) *Tensor {
	if !c.ok("binary", a, b) {
		return nil
	}
	f := binaryf(op)
	if f == nil {
		return c.errf("binary", "unknown op %d", op)
	}
	shape, sa, sb, err := broadcast(a.shape, b.shape)
	if err != nil {
		return c.errf(op.String(), "%v", err)
	}
	out := c.newTensor(shape, F32)
	od, ad, bd := out.cpuData(), a.cpuData(), b.cpuData()
	c.parallel(len(od), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			rem, ia, ib := i, 0, 0
			for d := len(shape) - 1; d >= 0; d-- {
				cd := rem % shape[d]
				rem /= shape[d]
				ia += cd * sa[d]
				ib += cd * sb[d]
			}
			od[i] = f(ad[ia], bd[ib])
		}
	})
	return out
}
