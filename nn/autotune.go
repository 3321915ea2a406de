package nn

func init() {
	autotuners = append(autotuners,
		func(g *GPU) { g.AutotuneMatMul() },
		func(g *GPU) { _, _ = g.AutotuneConv2d() },
	)
}
