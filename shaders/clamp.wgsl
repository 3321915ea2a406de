// out = min(max(x, lo), hi) (lo > hi gives hi, as torch.clamp), one
// invocation per element (p.a = lo, p.b = hi).
//#include map2_inc

fn op(v: f32) -> f32 {
  return min(max(v, p.a), p.b);
}
