// First level of Σ(a−b)²: each workgroup reduces WG·ITEMS elements to one
// partial sum; shaders/reduce.wgsl (sum) finishes the partials.
const WG = 256u;
const ITEMS = 16u;
struct P {
  n: u32,   // elements in this dispatch
  nx: u32,  // workgroups along x (flat id = x + y·nx)
  oa: u32,  // element base of a / b inside their bindings
  ob: u32,
  oo: u32,  // index of this dispatch's first partial in o
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let w = wg.x + wg.y * p.nx;
  let base = w * WG * ITEMS;
  if (base >= p.n) { return; } // uniform: the whole workgroup leaves
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k = k + 1u) {
    let i = base + k * WG + li;
    if (i < p.n) {
      let d = a[p.oa + i] - b[p.ob + i];
      acc = acc + d * d;
    }
  }
  red[li] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { o[p.oo + w] = red[0]; }
}
