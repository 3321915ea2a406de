// LayerNorm over the last axis: one workgroup of WG invocations per row.
// Two passes over the row (mean, then Σ(x−mean)²), each a strided loop plus a
// tree reduction in workgroup memory, then the normalised write.
// Specialised by: WG (workgroup size, a power of two), GAMMA, BETA (0 absent,
// 1 f32, 2 f16 packed two per u32; declared as u32 words for both formats).
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

var<workgroup> red: array<f32, WG>;

fn wg_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

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
    var y = (x[xb + j] - mean) * rstd;
    if (GAMMA == 1u) { y = y * bitcast<f32>(gm[p.og + j]); }
    if (GAMMA == 2u) { y = y * unpack2x16float(gm[j / 2u])[j % 2u]; }
    if (BETA == 1u) { y = y + bitcast<f32>(bt[p.ob + j]); }
    if (BETA == 2u) { y = y + unpack2x16float(bt[j / 2u])[j % 2u]; }
    o[ob + j] = y;
  }
}
