// Nearest-neighbour 2× upsampling of NCHW rows: out[y][x] = in[y/2][x/2].
// The input is seen as rows of W values; input row r makes output rows 2r
// and 2r+1 (4·W contiguous values). One invocation per input element,
// which writes its 2×2 block (one index division per four outputs: on
// CPU adapters the per-output division dominated).
struct P {
  n: u32,   // input elements in this dispatch
  w: u32,   // input row length
  xb: u32,  // element bases inside the bindings
  ob: u32,
  nx: u32,  // workgroups along x (flat id = x + y·nx)
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  let row = i / p.w;
  let col = i - row * p.w;
  let v = x[p.xb + i];
  let top = p.ob + row * 4u * p.w + 2u * col;
  o[top] = v;
  o[top + 1u] = v;
  o[top + 2u * p.w] = v;
  o[top + 2u * p.w + 1u] = v;
}
