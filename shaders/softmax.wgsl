// Softmax over the last axis: one workgroup of WG invocations per row.
// Row max (tree reduction), Σexp(x−max) (tree reduction), then the write;
// subtracting the max keeps exp ≤ 1, so large inputs cannot overflow.
// Specialised by: WG (workgroup size, a power of two).
struct P {
  rows: u32,  // rows in this dispatch
  d: u32,     // row length
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ox: u32,    // element base of x / out inside their bindings
  oo: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * p.nx;
  if (r >= p.rows) { return; } // uniform: the whole workgroup leaves
  let xb = p.ox + r * p.d;
  var m = -3.402823e38;
  for (var j = li; j < p.d; j = j + WG) { m = max(m, x[xb + j]); }
  red[li] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = li; j < p.d; j = j + WG) { sum = sum + exp(x[xb + j] - m); }
  red[li] = sum;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  let ob = p.oo + r * p.d;
  for (var j = li; j < p.d; j = j + WG) { o[ob + j] = exp(x[xb + j] - m) * inv; }
}
