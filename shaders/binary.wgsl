// Elementwise binary op with NumPy broadcasting, rank ≤ 8.
// Specialised by: OP (0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min).
// Each invocation handles one output element; strides are 0 on broadcast axes.
struct P {
  n: u32,      // output elements in this dispatch
  rank: u32,
  start: u32,  // first output element of this dispatch (chunking)
  oa: u32,     // element base of a / b / out inside their bindings
  ob: u32,
  oo: u32,
  nx: u32,     // workgroups along x (flat id = x + y·nx)
  _pad: u32,
  dims: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

fn apply(x: f32, y: f32) -> f32 {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return max(x, y); }
    default: { return min(x, y); }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  // Decompose the global output index into coordinates, innermost axis last.
  var rem = p.start + i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
    let dim = p.dims[d / 4][d % 4];
    let c = rem % dim;
    rem = rem / dim;
    ia = ia + c * p.sa[d / 4][d % 4];
    ib = ib + c * p.sb[d / 4][d % 4];
  }
  o[p.oo + i] = apply(a[p.oa + ia], b[p.ob + ib]);
}
