// GroupNorm pass 3 of 3: y = (x − mean)·rstd·gamma[c] + beta[c], then SiLU
// when SILU is set. One invocation per element.
// Specialised by: GAMMA, BETA (0 absent, 1 f32, 2 f16 packed two per u32),
// SILU (bool). gamma/beta are declared as u32 words so one shader reads both
// storage formats.
struct P {
  n: u32,      // elements in this dispatch
  nx: u32,     // workgroups along x (flat id = x + y·nx)
  ox: u32,     // element base of x / out inside their bindings
  oo: u32,
  start: u32,  // global element index of this dispatch's first element
  m: u32,      // elements per group
  hw: u32,     // elements per channel
  c: u32,      // channels
  og: u32,     // element base of gamma / beta (f32) inside their bindings
  ob: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>; // [group]·(mean, rstd)
@group(0) @binding(3) var<storage, read> gm: array<u32>;
@group(0) @binding(4) var<storage, read> bt: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  let e = p.start + i;
  let g = e / p.m;
  let ch = (e / p.hw) % p.c;
  var y = (x[p.ox + i] - stats[2u * g]) * stats[2u * g + 1u];
  if (GAMMA == 1u) { y = y * bitcast<f32>(gm[p.og + ch]); }
  if (GAMMA == 2u) { y = y * unpack2x16float(gm[ch / 2u])[ch % 2u]; }
  if (BETA == 1u) { y = y + bitcast<f32>(bt[p.ob + ch]); }
  if (BETA == 2u) { y = y + unpack2x16float(bt[ch / 2u])[ch % 2u]; }
  if (SILU) { y = y / (1.0 + exp(-y)); }
  o[p.oo + i] = y;
}
