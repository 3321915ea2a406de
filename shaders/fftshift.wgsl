// Roll of the last two axes (numpy fftshift / ifftshift): one invocation
// per input element, out[(i + sh) mod H, (j + sw) mod W] = x[i, j] per plane.
struct P {
  n: u32,    // elements in this dispatch (whole planes)
  h: u32,
  w: u32,
  sh: u32,
  sw: u32,
  ox: u32,   // element bases of x / out inside their bindings
  oo: u32,
  nx: u32,   // workgroups along x (flat id = x + y·nx)
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let id = (wg.x + wg.y * p.nx) * 256u + li;
  if (id >= p.n) { return; }
  let hw = p.h * p.w;
  let plane = id / hw;
  let r = id % hw;
  let i = (r / p.w + p.sh) % p.h;
  let j = (r % p.w + p.sw) % p.w;
  o[p.oo + plane * hw + i * p.w + j] = x[p.ox + id];
}
