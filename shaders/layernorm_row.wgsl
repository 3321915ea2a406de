// LayerNorm over the last axis, barrier-free variant for CPU adapters
// (lavapipe, SwiftShader), where workgroup barriers dominate: one invocation
// per row, two passes (mean, then Σ(x−mean)²) and the normalised write.
// Specialised by: GAMMA, BETA (0 absent, 1 f32, 2 f16 packed two per u32).
// Same parameters and bindings as layernorm.wgsl.
//#include layernorm_inc

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = (wg.x + wg.y * p.nx) * 64u + li;
  if (r >= p.rows) { return; }
  let xb = p.ox + r * p.d;
  // sum shifted by the row's first value: no precision lost to a large mean
  let shift = x[xb];
  var s = 0.0;
  for (var j = 0u; j < p.d; j = j + 1u) { s = s + (x[xb + j] - shift); }
  let mean = shift + s / f32(p.d);
  var q = 0.0;
  for (var j = 0u; j < p.d; j = j + 1u) {
    let t = x[xb + j] - mean;
    q = q + t * t;
  }
  let rstd = 1.0 / sqrt(q / f32(p.d) + p.eps);
  let ob = p.oo + r * p.d;
  for (var j = 0u; j < p.d; j = j + 1u) {
    o[ob + j] = scaleShift(j, (x[xb + j] - mean) * rstd);
  }
}
