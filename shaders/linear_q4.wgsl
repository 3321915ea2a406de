// out = x·Wᵀ (+ bias) with W [N, K] stored q4 (uint4 + f16 scale and min per
// group, see quant_q4.wgsl, appended to this file): dequantized while multiplying, no
// f32 copy of W. Register-tiled and barrier-free like matmul_reg: each
// invocation computes TM rows × 4 adjacent output features; the TM rows are
// workgroup-uniform.
// Specialised by TM, WG (u32), QG (u32 group size), BIAS (0 none, 1 f32, 2 f16).
struct P {
  M: u32, N: u32, K: u32, rowWords: u32,
  ox: u32, oo: u32, obias: u32, sbase: u32, // sbase: first (scale, min) word
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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r0 = wg.y * TM;
  let c0 = (wg.x * WG + li) * 4u;
  // Out-of-range rows and columns are clamped for loading and skipped when storing.
  var qr: array<u32, 4>;
  var sr: array<u32, 4>;
  for (var q = 0u; q < 4u; q++) {
    let c = min(c0 + q, p.N - 1u);
    qr[q] = c * p.rowWords;
    sr[q] = p.sbase + c * p.ngroups;
  }
  var ri: array<u32, TM>;
  for (var r = 0u; r < TM; r++) {
    ri[r] = p.ox + min(r0 + r, p.M - 1u) * p.K;
  }
  var acc: array<vec4<f32>, TM>;
  let K8 = p.K & ~7u;
  var k = 0u;
  for (; k < K8; k += 8u) {
    let w0 = dqv8(qr[0], sr[0], k);
    let w1 = dqv8(qr[1], sr[1], k);
    let w2 = dqv8(qr[2], sr[2], k);
    let w3 = dqv8(qr[3], sr[3], k);
    for (var r = 0u; r < TM; r++) {
      let i = ri[r] + k;
      let xa = vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
      let xb = vec4<f32>(x[i + 4u], x[i + 5u], x[i + 6u], x[i + 7u]);
      acc[r] += vec4<f32>(dot(xa, w0[0]) + dot(xb, w0[1]), dot(xa, w1[0]) + dot(xb, w1[1]),
                          dot(xa, w2[0]) + dot(xb, w2[1]), dot(xa, w3[0]) + dot(xb, w3[1]));
    }
  }
  for (; k < p.K; k++) {
    let wv = vec4<f32>(dq(qr[0], sr[0], k), dq(qr[1], sr[1], k), dq(qr[2], sr[2], k), dq(qr[3], sr[3], k));
    for (var r = 0u; r < TM; r++) {
      acc[r] += x[ri[r] + k] * wv;
    }
  }
  var bv = vec4<f32>(0.0);
  if (BIAS != 0u) {
    bv = vec4<f32>(ldBias(min(c0, p.N - 1u)), ldBias(min(c0 + 1u, p.N - 1u)), ldBias(min(c0 + 2u, p.N - 1u)), ldBias(min(c0 + 3u, p.N - 1u)));
  }
  for (var r = 0u; r < TM; r++) {
    let i = r0 + r;
    if (i >= p.M) { break; }
    let v = acc[r] + bv;
    let io = p.oo + i * p.N + c0;
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < p.N) { o[io + q] = v[q]; }
    }
  }
}
