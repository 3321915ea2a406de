package samplers

import (
	"fmt"
	"math"
)

// The DDIM time grid and update coefficients, shared by the schedulers
// (DDIM, DDIM inverse, DDPM, PNDM), the exact inversion methods (EDICT,
// BDIA, edit-friendly DDPM: exactSchedule) and the editing loops
// (InvertTrajectory, Direct Inversion: editDDIM).

// schedulerGrid is spacedTimesteps for scheduler name (diffusers' exact
// set_timesteps arithmetic), descending or, with ascending, reversed, each
// timestep checked to lie in [0, T).
func schedulerGrid(name string, c SchedulerConfig, n int, ascending bool) ([]int, error) {
	T := c.NumTrainTimesteps
	ts, err := spacedTimesteps(c.TimestepSpacing, T, n, c.StepsOffset)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if ascending {
		for i, j := 0, len(ts)-1; i < j; i, j = i+1, j-1 {
			ts[i], ts[j] = ts[j], ts[i]
		}
	}
	for _, t := range ts {
		if t < 0 || t >= T {
			return nil, fmt.Errorf("%s: timestep %d (steps_offset %d) outside [0, %d)", name, t, c.StepsOffset, T)
		}
	}
	return ts, nil
}

// exactGrid is the descending timestep grid of the exact inversion methods
// and the editing loops for n of T steps: DDIMScheduler's (diffusers'
// rounding, numpy's linspace), so an inversion and the sampler it pairs with
// visit the same timesteps. ok is false for a spacing other than leading,
// trailing or linspace.
func exactGrid(spacing string, T, n, offset int) (ts []int, ok bool) {
	ts, err := spacedTimesteps(spacing, T, n, offset)
	return ts, err == nil
}

// finalAlpha is ᾱ used below timestep 0: 1 with set_alpha_to_one, else ᾱ_0.
func finalAlpha(c SchedulerConfig, ac []float32) float64 {
	if *c.SetAlphaToOne {
		return 1
	}
	return float64(ac[0])
}

// ddimCoef returns the coefficients of the deterministic DDIM map from the
// level with ᾱ = as to the level with ᾱ = ar (Song et al., 2021, eq. 12
// with σ = 0):
//
//	DDIM(x, ε; s→r) = √ᾱ_r·(x − √(1−ᾱ_s)·ε)/√ᾱ_s + √(1−ᾱ_r)·ε = cx·x + ce·ε.
//
// It holds for s > r (denoising) and s < r (inversion) alike.
func ddimCoef(as, ar float64) (cx, ce float64) {
	cx = math.Sqrt(ar) / math.Sqrt(as)
	ce = math.Sqrt(1-ar) - math.Sqrt(ar)*math.Sqrt(1-as)/math.Sqrt(as)
	return cx, ce
}
