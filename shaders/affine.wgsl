// out = x·mul + add, one invocation per element (p.a = mul, p.b = add).
//#include map2_inc

fn op(v: f32) -> f32 {
  return v * p.a + p.b;
}
