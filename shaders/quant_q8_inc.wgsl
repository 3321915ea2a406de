// q8 dequantization, shared by every kernel that reads q8 weights (layout:
// nn/quant.go QuantTensor, docs/PACK.md). Not a kernel: the including
// kernel declares `qw: array<u32>` (packed values, then the scales) and the
// constant QG (elements per group).
//
// qrow: word index of the row's first value; srow: index of the row's first
// scale, counted in f16 halves from the start of qw; k: element in the row.

fn q8_scale(srow: u32, k: u32) -> f32 {
  let i = srow + k / QG;
  return unpack2x16float(qw[i >> 1u])[i & 1u];
}

// dq returns element k of a row: the signed byte k%4 of word k/4 times the
// group's scale.
fn dq(qrow: u32, srow: u32, k: u32) -> f32 {
  let w = i32(qw[qrow + (k >> 2u)]);
  return f32((w << (24u - 8u * (k & 3u))) >> 24u) * q8_scale(srow, k);
}

// dqv returns elements k..k+3 of a row (k a multiple of 4; QG is a multiple
// of 4 or the whole row, so the four share one scale).
fn dqv(qrow: u32, srow: u32, k: u32) -> vec4<f32> {
  let w = vec4<i32>(i32(qw[qrow + (k >> 2u)]));
  let v = (w << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
  return vec4<f32>(v) * q8_scale(srow, k);
}
