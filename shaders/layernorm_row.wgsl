// LayerNorm over the last axis, barrier-free variant for CPU adapters
// (lavapipe, SwiftShader), where workgroup barriers dominate: one invocation
// per row, two passes (mean, then Σ(x−mean)²) and the normalised write.
// Specialised by: GAMMA, BETA (0 absent, 1 f32, 2 f16 packed two per u32).
// Same parameters and bindings as layernorm.wgsl.
struct P {
  rows: u32,  // rows in this dispatch
  d: u32,     // row length
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ox: u32,    // element base of x / out inside their bindings
  oo: u32,
  og: u32,    // element base of gamma / beta (f32) inside their bindings
  ob: u32,
  eps: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gm: array<u32>;
@group(0) @binding(3) var<storage, read> bt: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

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
    var y = (x[xb + j] - mean) * rstd;
    if (GAMMA == 1u) { y = y * bitcast<f32>(gm[p.og + j]); }
    if (GAMMA == 2u) { y = y * unpack2x16float(gm[j / 2u])[j % 2u]; }
    if (BETA == 1u) { y = y + bitcast<f32>(bt[p.ob + j]); }
    if (BETA == 2u) { y = y + unpack2x16float(bt[j / 2u])[j % 2u]; }
    o[ob + j] = y;
  }
}
