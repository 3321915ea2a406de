// diffusers get_timestep_embedding for t [B] → out [B, dim], all f32:
//   freq[j] = exp(−ln(max_period)·j / (half − shift)),  j < half = dim/2
//   emb     = scale·(t[b]·freq[j])
//   out     = [sin(emb), cos(emb)] ([cos, sin] when FLIP), 0 in an odd last column.
// Specialised by: FLIP (bool). One invocation per output element.
struct P {
  n: u32,       // B·dim
  nx: u32,      // workgroups along x (flat id = x + y·nx)
  ot: u32,      // element base of t / out inside their bindings
  oo: u32,
  dim: u32,
  half: u32,
  ln_period: f32,  // ln(max_period)
  denom: f32,      // half − downscale_freq_shift
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;

// Cody–Waite reduction of v to [−π, π] with 2π split in three parts so that
// sin/cos stay accurate for |v| up to ~1e5 on GPUs whose builtins only
// guarantee accuracy inside [−π, π].
fn reduce_2pi(v: f32) -> f32 {
  let k = round(v * 0.15915494309);
  return ((v - k * 6.28125) - k * 0.0019353071693331) - k * 1.0253131677e-11;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  let b = i / p.dim;
  let j = i - b * p.dim;
  if (j >= 2u * p.half) {
    o[p.oo + i] = 0.0;
    return;
  }
  let k = select(j - p.half, j, j < p.half);
  let e = -p.ln_period * f32(k) / p.denom;
  let emb = p.scale * (t[p.ot + b] * exp(e));
  let r = reduce_2pi(emb);
  // first half: sin unless flipped
  if ((j < p.half) != FLIP) {
    o[p.oo + i] = sin(r);
  } else {
    o[p.oo + i] = cos(r);
  }
}
