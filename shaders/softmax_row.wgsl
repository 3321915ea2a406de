// Softmax over the last axis, barrier-free variant for CPU adapters: one
// invocation per row: max, then exp(x−max) written to out while summing,
// then out scaled by 1/Σ. Same parameters and bindings as softmax.wgsl.
//#include softmax_inc

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = (wg.x + wg.y * p.nx) * 64u + li;
  if (r >= p.rows) { return; }
  let xb = p.ox + r * p.d;
  let ob = p.oo + r * p.d;
  var m = -3.402823e38;
  for (var j = 0u; j < p.d; j = j + 1u) { m = max(m, x[xb + j]); }
  var sum = 0.0;
  for (var j = 0u; j < p.d; j = j + 1u) {
    let e = exp(x[xb + j] - m);
    o[ob + j] = e;
    sum = sum + e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j < p.d; j = j + 1u) { o[ob + j] = o[ob + j] * inv; }
}
