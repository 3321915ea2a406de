// Axis permutation (rank ≤ 8) over a box of the output: each invocation
// decomposes its index into box coordinates (in output axis order) and
// gathers from the input through the permuted input strides.
struct P {
  n: u32,     // elements in the box
  rank: u32,
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ib: u32,    // input element base of the box's origin inside x's binding
  ob: u32,    // output element base of the box's origin inside o's binding
  _p0: u32,
  _p1: u32,
  _p2: u32,
  dims: array<vec4<u32>, 2>,  // box extent per output axis
  ost: array<vec4<u32>, 2>,   // output strides
  ist: array<vec4<u32>, 2>,   // input stride of the axis each output axis reads
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  var rem = i;
  var src = p.ib;
  var dst = p.ob;
  for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
    let dim = p.dims[d / 4][d % 4];
    let c = rem % dim;
    rem = rem / dim;
    src = src + c * p.ist[d / 4][d % 4];
    dst = dst + c * p.ost[d / 4][d % 4];
  }
  o[dst] = x[src];
}
