// GEGLU (diffusers): x [rows, 2h] → out [rows, h], out = x[:, :h]·gelu(x[:, h:])
// with the exact (erf) GELU. One invocation per output element.
struct P {
  n: u32,   // output elements in this dispatch (whole rows)
  nx: u32,  // workgroups along x (flat id = x + y·nx)
  ox: u32,  // element base of x / out inside their bindings
  oo: u32,
  h: u32,   // output row length
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

// erfc: Numerical Recipes' erfcc, fractional error < 1.2e-7 (see unary.wgsl).
fn erfc_nr(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.5 * a);
  let r = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(2.0 - r, r, z >= 0.0);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  let r = i / p.h;
  let j = i - r * p.h;
  let src = p.ox + r * 2u * p.h + j;
  let gate = x[src + p.h];
  o[p.oo + i] = x[src] * (0.5 * gate * erfc_nr(-gate * 0.70710678));
}
