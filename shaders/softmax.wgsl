// Softmax over the last axis: one workgroup of WG invocations per row.
// Row max (tree reduction), Σexp(x−max) (tree reduction), then the write;
// subtracting the max keeps exp ≤ 1, so large inputs cannot overflow.
// Specialised by: WG (workgroup size, a power of two).
//#include softmax_inc
//#include wg_reduce_inc

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * p.nx;
  if (r >= p.rows) { return; } // uniform: the whole workgroup leaves
  let xb = p.ox + r * p.d;
  var m = -3.402823e38;
  for (var j = li; j < p.d; j = j + WG) { m = max(m, x[xb + j]); }
  m = wg_max(li, m);
  var sum = 0.0;
  for (var j = li; j < p.d; j = j + WG) { sum = sum + exp(x[xb + j] - m); }
  let inv = 1.0 / wg_sum(li, sum);
  let ob = p.oo + r * p.d;
  for (var j = li; j < p.d; j = j + WG) { o[ob + j] = exp(x[xb + j] - m) * inv; }
}
