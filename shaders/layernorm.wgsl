// LayerNorm over the last axis: one workgroup of WG invocations per row.
// Two passes over the row (mean, then Σ(x−mean)²), each a strided loop plus a
// tree reduction in workgroup memory, then the normalised write.
// Specialised by: WG (workgroup size, a power of two), GAMMA, BETA (0 absent,
// 1 f32, 2 f16 packed two per u32; declared as u32 words for both formats).
//#include layernorm_inc
//#include wg_reduce_inc

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * p.nx;
  if (r >= p.rows) { return; } // uniform: the whole workgroup leaves
  let xb = p.ox + r * p.d;
  // sum shifted by the row's first value: no precision lost to a large mean
  let shift = x[xb];
  var s = 0.0;
  for (var j = li; j < p.d; j = j + WG) { s = s + (x[xb + j] - shift); }
  let mean = shift + wg_sum(li, s) / f32(p.d);
  var q = 0.0;
  for (var j = li; j < p.d; j = j + WG) {
    let t = x[xb + j] - mean;
    q = q + t * t;
  }
  let rstd = 1.0 / sqrt(wg_sum(li, q) / f32(p.d) + p.eps);
  let ob = p.oo + r * p.d;
  for (var j = li; j < p.d; j = j + WG) {
    o[ob + j] = scaleShift(j, (x[xb + j] - mean) * rstd);
  }
}
