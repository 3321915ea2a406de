// Workgroup tree reductions for kernels with one row per workgroup (the
// barrier variants of layernorm and softmax). Needs: WG (workgroup size, a
// power of two). Every invocation of the workgroup must call them.

var<workgroup> red: array<f32, WG>;

// wg_sum returns the sum of v over the workgroup.
fn wg_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// wg_max returns the maximum of v over the workgroup.
fn wg_max(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
