// out = x·Wᵀ (+ bias) with W [N, K] stored q4 (uint4 + f16 scale and min per
// group, see quant_q4_inc.wgsl; sbase counts (scale, min) words): dequantized
// while multiplying, no f32 copy of W. Tiling and parameters:
// linear_q_inc.wgsl.
// Specialised by TM, WG (u32), QG (u32 group size), BIAS (0 none, 1 f32, 2 f16).
//#include quant_q4_inc
//#include linear_q_inc

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  var t = tile(wg, li); // var: naga indexes let arrays only by constants
  var acc: array<vec4<f32>, TM>;
  let K8 = p.K & ~7u;
  var k = 0u;
  for (; k < K8; k += 8u) {
    let w0 = dqv8(t.qr[0], t.sr[0], k);
    let w1 = dqv8(t.qr[1], t.sr[1], k);
    let w2 = dqv8(t.qr[2], t.sr[2], k);
    let w3 = dqv8(t.qr[3], t.sr[3], k);
    for (var r = 0u; r < TM; r++) {
      let i = t.ri[r] + k;
      let xa = vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
      let xb = vec4<f32>(x[i + 4u], x[i + 5u], x[i + 6u], x[i + 7u]);
      acc[r] += vec4<f32>(dot(xa, w0[0]) + dot(xb, w0[1]), dot(xa, w1[0]) + dot(xb, w1[1]),
                          dot(xa, w2[0]) + dot(xb, w2[1]), dot(xa, w3[0]) + dot(xb, w3[1]));
    }
  }
  finish(t, k, acc);
}
