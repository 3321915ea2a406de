// q4 dequantization, shared by every kernel that reads q4 weights (layout:
// nn/quant.go QuantTensor, docs/PACK.md). Not a kernel: the including
// kernel declares `qw: array<u32>` (packed values, then the scales) and the
// constant QG (elements per group, a multiple of 8).
//
// qrow: word index of the row's first value; srow: word index (in qw) of the
// row's first (scale, min) pair; k: element in the row.

fn q4_sm(srow: u32, k: u32) -> vec2<f32> {
  return unpack2x16float(qw[srow + k / QG]);
}

// dq returns element k of a row: nibble k%8 of word k/8, times the group's
// scale, plus its minimum.
fn dq(qrow: u32, srow: u32, k: u32) -> f32 {
  let sm = q4_sm(srow, k);
  return f32((qw[qrow + (k >> 3u)] >> (4u * (k & 7u))) & 15u) * sm.x + sm.y;
}

// dqv8 returns elements k..k+7 of a row (k a multiple of 8: one word, one group).
fn dqv8(qrow: u32, srow: u32, k: u32) -> array<vec4<f32>, 2> {
  let w = vec4<u32>(qw[qrow + (k >> 3u)]);
  let sm = q4_sm(srow, k);
  let lo = (w >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  let hi = (w >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u);
  return array<vec4<f32>, 2>(vec4<f32>(lo) * sm.x + sm.y, vec4<f32>(hi) * sm.x + sm.y);
}
