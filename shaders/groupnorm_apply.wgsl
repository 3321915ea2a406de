// GroupNorm pass 3 of 3: y = (x − mean)·rstd·gamma[c] + beta[c], then SiLU
// when SILU is set. The grid is (H·W/1024 blocks, channel rows): each
// workgroup normalises 1024 values of one (n, c) row, 4 per invocation, so
// the group, channel and per-channel scale/shift are workgroup-uniform.
// Specialised by: GAMMA, BETA (0 absent, 1 f32, 2 f16 packed two per u32),
// SILU (bool). gamma/beta are declared as u32 words so one shader reads both
// storage formats.
struct P {
  hw: u32,   // elements per channel row
  c: u32,    // channels
  cpg: u32,  // channels per group
  r0: u32,   // global channel row (n·C + c) of this dispatch's first row
  ox: u32,   // element base of x / out inside their bindings
  oo: u32,
  og: u32,   // element base of gamma / beta (f32) inside their bindings
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
  let row = p.r0 + wg.y;
  let g = row / p.cpg;
  let ch = row % p.c;
  // y = x·a + b with a = rstd·gamma, b = beta − mean·a
  var a = stats[2u * g + 1u];
  var b = 0.0;
  if (GAMMA == 1u) { a = a * bitcast<f32>(gm[p.og + ch]); }
  if (GAMMA == 2u) { a = a * unpack2x16float(gm[ch / 2u])[ch % 2u]; }
  if (BETA == 1u) { b = bitcast<f32>(bt[p.ob + ch]); }
  if (BETA == 2u) { b = unpack2x16float(bt[ch / 2u])[ch % 2u]; }
  let mean = stats[2u * g];
  let base = wg.y * p.hw;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let i = wg.x * 1024u + k * 256u + li;
    if (i < p.hw) {
      var y = (x[p.ox + base + i] - mean) * a + b;
      if (SILU) { y = y / (1.0 + exp(-y)); }
      o[p.oo + base + i] = y;
    }
  }
}
