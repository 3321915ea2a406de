// Shared by linear_q8 and linear_q4: out = x·Wᵀ (+ bias) with W [N, K]
// quantized, register-tiled and barrier-free like matmul_reg. Each invocation
// computes TM rows × 4 adjacent output features; the TM rows are
// workgroup-uniform. The kernel includes its format's dequant snippet and
// runs the vector steps along K between tile() and finish().
// Needs: TM, WG (u32), QG (u32 group size), BIAS (0 none, 1 f32, 2 f16).
struct P {
  M: u32, N: u32, K: u32, rowWords: u32,
  ox: u32, oo: u32, obias: u32, sbase: u32, // sbase: first scale, in the format's units
  ngroups: u32, _p0: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

fn ldBias(j: u32) -> f32 {
  if (BIAS == 1u) {
    return bitcast<f32>(bias[p.obias + j]);
  }
  return unpack2x16float(bias[(p.obias + j) >> 1u])[(p.obias + j) & 1u];
}

// Tile is an invocation's share: rows r0.., features c0..c0+3, the weight
// rows of its 4 features (qr: value word base, sr: scale base) and the x
// row bases. Out-of-range rows and columns are clamped for loading and
// skipped when storing.
struct Tile {
  r0: u32,
  c0: u32,
  qr: array<u32, 4>,
  sr: array<u32, 4>,
  ri: array<u32, TM>,
}

fn tile(wg: vec3<u32>, li: u32) -> Tile {
  var t: Tile;
  t.r0 = wg.y * TM;
  t.c0 = (wg.x * WG + li) * 4u;
  for (var q = 0u; q < 4u; q++) {
    let c = min(t.c0 + q, p.N - 1u);
    t.qr[q] = c * p.rowWords;
    t.sr[q] = p.sbase + c * p.ngroups;
  }
  for (var r = 0u; r < TM; r++) {
    t.ri[r] = p.ox + min(t.r0 + r, p.M - 1u) * p.K;
  }
  return t;
}

// finish adds elements k.. of K one at a time to acc, then the bias, and
// stores the tile.
fn finish(t0: Tile, k0: u32, acc0: array<vec4<f32>, TM>) {
  var t = t0; // var: naga indexes let arrays only by constants
  var acc = acc0;
  for (var k = k0; k < p.K; k++) {
    let wv = vec4<f32>(dq(t.qr[0], t.sr[0], k), dq(t.qr[1], t.sr[1], k), dq(t.qr[2], t.sr[2], k), dq(t.qr[3], t.sr[3], k));
    for (var r = 0u; r < TM; r++) {
      acc[r] += x[t.ri[r] + k] * wv;
    }
  }
  let c0 = t.c0;
  var bv = vec4<f32>(0.0);
  if (BIAS != 0u) {
    bv = vec4<f32>(ldBias(min(c0, p.N - 1u)), ldBias(min(c0 + 1u, p.N - 1u)), ldBias(min(c0 + 2u, p.N - 1u)), ldBias(min(c0 + 3u, p.N - 1u)));
  }
  for (var r = 0u; r < TM; r++) {
    let i = t.r0 + r;
    if (i >= p.M) { break; }
    let v = acc[r] + bv;
    let io = p.oo + i * p.N + c0;
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < p.N) { o[io + q] = v[q]; }
    }
  }
}
