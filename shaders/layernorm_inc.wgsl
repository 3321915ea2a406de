// Shared by layernorm and layernorm_row: parameters, bindings and the
// elementwise affine. Needs: GAMMA, BETA (0 absent, 1 f32, 2 f16 packed two
// per u32; declared as u32 words for both formats).
struct P {
  rows: u32,  // rows in this dispatch
  d: u32,     // row length
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ox: u32,    // element base of x / out inside their bindings
  oo: u32,
  og: u32,    // element base of gamma / beta (f32) inside their bindings
  ob: u32,
  eps: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gm: array<u32>;
@group(0) @binding(3) var<storage, read> bt: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

// scaleShift applies gamma and beta to element j of a normalised row.
fn scaleShift(j: u32, v: f32) -> f32 {
  var y = v;
  if (GAMMA == 1u) { y = y * bitcast<f32>(gm[p.og + j]); }
  if (GAMMA == 2u) { y = y * unpack2x16float(gm[j / 2u])[j % 2u]; }
  if (BETA == 1u) { y = y + bitcast<f32>(bt[p.ob + j]); }
  if (BETA == 2u) { y = y + unpack2x16float(bt[j / 2u])[j % 2u]; }
  return y;
}
