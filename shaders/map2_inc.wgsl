// Shared by the one-input elementwise kernels with two scalar parameters
// (affine, clamp): out = op(x), one invocation per element. The kernel
// defines fn op(v: f32) -> f32, reading its scalars as p.a and p.b.
struct P {
  n: u32,   // elements in this dispatch
  nx: u32,  // workgroups along x (flat id = x + y·nx)
  ox: u32,  // element base of x / out inside their bindings
  oo: u32,
  a: f32,   // the op's scalars, in the order nn passes them
  b: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  o[p.oo + i] = op(x[p.ox + i]);
}
