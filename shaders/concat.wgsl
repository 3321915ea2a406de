// Concat: copies n input elements, made of blocks of `inner` contiguous
// values, to the output where consecutive blocks start `row` elements apart
// (row = the output's length of the concat axis times its inner axes).
// One invocation per input element.
struct P {
  n: u32,
  inner: u32,
  row: u32,
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
  let b = i / p.inner;
  o[p.ob + b * p.row + (i - b * p.inner)] = x[p.xb + i];
}
