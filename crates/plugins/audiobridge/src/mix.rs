//! The arithmetic of a room's mix: contributions summed in 32 bits, each listener's own
//! contribution taken back out, the result clipped to 16 bits; volume and stereo placement.

/// A participant's `volume` (percent) applied to a decoded frame, in place.
pub fn apply_volume(frame: &mut [i16], volume: u32) {
    if volume == 100 {
        return;
    }
    for s in frame.iter_mut() {
        *s = clip(i32::from(*s) * volume as i32 / 100);
    }
}

/// Adds a contribution to the room's sum.
pub fn accumulate(total: &mut [i32], frame: &[i16]) {
    for (t, s) in total.iter_mut().zip(frame) {
        *t += i32::from(*s);
    }
}

/// Adds a mono contribution to an interleaved stereo sum at a position (0 = left, 50 = centre,
/// 100 = right), with constant-power gains.
pub fn accumulate_spatial(total: &mut [i32], frame: &[i16], position: u8) {
    let (l, r) = spatial_gains(position);
    for (pair, s) in total.chunks_exact_mut(2).zip(frame) {
        let s = f32::from(*s);
        if let [a, b] = pair {
            *a += (s * l) as i32;
            *b += (s * r) as i32;
        }
    }
}

/// Left and right gains of a position, equal (≈0.707) at the centre.
pub fn spatial_gains(position: u8) -> (f32, f32) {
    let p = f32::from(position.min(100)) / 100.0;
    let angle = p * std::f32::consts::FRAC_PI_2;
    (angle.cos(), angle.sin())
}

/// What one listener hears: the sum minus its own contribution (if any), clipped.
pub fn listener_mix(total: &[i32], own: Option<&[i32]>, out: &mut [i16]) {
    match own {
        Some(own) => {
            for ((o, t), m) in out.iter_mut().zip(total).zip(own) {
                *o = clip(t - m);
            }
        }
        None => {
            for (o, t) in out.iter_mut().zip(total) {
                *o = clip(*t);
            }
        }
    }
}

/// Saturates a sum to 16 bits (a mix of loud speakers clips instead of wrapping around).
pub fn clip(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hears_the_others_not_itself() {
        let a = [1000i16, -2000, 3000];
        let b = [10i16, 20, 30];
        let mut total = [0i32; 3];
        let (mut ca, mut cb) = ([0i32; 3], [0i32; 3]);
        accumulate(&mut total, &a);
        accumulate(&mut ca, &a);
        accumulate(&mut total, &b);
        accumulate(&mut cb, &b);
        let mut out = [0i16; 3];
        listener_mix(&total, Some(&ca), &mut out);
        assert_eq!(out, b);
        listener_mix(&total, Some(&cb), &mut out);
        assert_eq!(out, a);
        listener_mix(&total, None, &mut out);
        assert_eq!(out, [1010, -1980, 3030]);
    }

    #[test]
    fn loud_sums_clip_instead_of_wrapping() {
        let loud = [30000i16, -30000];
        let mut total = [0i32; 2];
        accumulate(&mut total, &loud);
        accumulate(&mut total, &loud);
        accumulate(&mut total, &loud);
        let mut out = [0i16; 2];
        listener_mix(&total, None, &mut out);
        assert_eq!(out, [i16::MAX, i16::MIN]);
        // Minus one speaker, still two: still clipped, not wrapped.
        let own = [30000i32, -30000];
        listener_mix(&total, Some(&own), &mut out);
        assert_eq!(out, [i16::MAX, i16::MIN]);
    }

    #[test]
    fn volume_scales_and_saturates() {
        let mut f = [1000i16, -1000, 20000];
        apply_volume(&mut f, 50);
        assert_eq!(f, [500, -500, 10000]);
        apply_volume(&mut f, 400);
        assert_eq!(f, [2000, -2000, i16::MAX]);
    }

    #[test]
    fn spatial_positions() {
        let (l, r) = spatial_gains(0);
        assert!(l > 0.99 && r < 0.01);
        let (l, r) = spatial_gains(100);
        assert!(l < 0.01 && r > 0.99);
        let (l, r) = spatial_gains(50);
        assert!((l - r).abs() < 1e-6);
        let mut total = [0i32; 4];
        accumulate_spatial(&mut total, &[1000, 1000], 0);
        assert_eq!(total[1], 0);
        assert!(total[0] > 990);
    }
}
