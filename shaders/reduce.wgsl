// Full reduction, one level: each workgroup reduces a contiguous chunk of
// WG·ITEMS elements to one partial (in registers, then a tree in workgroup
// memory). The Go side runs it again on the partials until one value is
// left; the final level multiplies by `scale` (1/n for the mean).
// Specialised by: MAXABS (bool; false sums).
const WG = 256u;
const ITEMS = 16u;
struct P {
  n: u32,      // elements in this dispatch
  nx: u32,     // workgroups along x (flat id = x + y·nx)
  ox: u32,     // element base of x inside its binding
  oo: u32,     // index of this dispatch's first partial in o
  scale: f32,  // multiplies each partial (1 except the mean's last level)
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

var<workgroup> red: array<f32, WG>;

fn combine(a: f32, b: f32) -> f32 {
  if (MAXABS) { return max(a, abs(b)); }
  return a + b;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let w = wg.x + wg.y * p.nx;
  let base = w * WG * ITEMS;
  if (base >= p.n) { return; } // uniform: the whole workgroup leaves
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k = k + 1u) {
    let i = base + k * WG + li;
    if (i < p.n) { acc = combine(acc, x[p.ox + i]); }
  }
  red[li] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = combine(red[li], red[li + s]); }
    workgroupBarrier();
  }
  if (li == 0u) { o[p.oo + w] = red[0] * p.scale; }
}
