//! What the aligned crop says about how usable a face is for recognition: its sharpness and
//! its exposure, measured on the 112x112 crop the recognizer sees. Judging them (bars,
//! reasons, the score) is Python's `facedb.quality`; this module only measures.

use crate::align::CROP;

/// The part of the crop that is the face itself in the ArcFace template (eyes at y = 51.6,
/// mouth at y = 92.3, x from 38 to 74): background and hair stay out of the measures.
const REGION_X: std::ops::Range<usize> = 28..84;
const REGION_Y: std::ops::Range<usize> = 40..100;

/// Grey levels (of 255) at or beyond which a pixel counts as clipped to black or white.
const CLIP_LOW: f32 = 4.0;
const CLIP_HIGH: f32 = 251.0;

/// Sharpness and exposure of an aligned face crop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CropQuality {
    /// Variance of the 4-neighbour Laplacian of the grey crop (grey levels 0..255), as
    /// `cv2.Laplacian(grey, cv2.CV_64F).var()` over the face region.
    pub sharpness: f32,
    /// Mean grey level of the face region, 0 (black) to 1 (white).
    pub brightness: f32,
    /// Standard deviation of the grey level over the face region, 0 to 0.5.
    pub contrast: f32,
    /// Fraction of the face region's pixels clipped to black or white.
    pub clipped: f32,
}

/// Measures a crop: `crop` holds 3 planes of CROP x CROP, RGB, normalised as the recognizer
/// takes them ((x - 127.5) / 127.5); `inside[i]` says whether crop pixel `i` was sampled from
/// inside the photo. Pixels from outside (the black border of a face at the photo's edge)
/// are left out, so that a border's hard edge does not pass for sharpness. A crop with no
/// measurable pixel measures zero everywhere.
pub fn measure(crop: &[f32], inside: &[bool]) -> CropQuality {
    let plane = CROP * CROP;
    if crop.len() < 3 * plane || inside.len() < plane {
        return CropQuality::default();
    }
    let grey = |i: usize| {
        let level = |ch: usize| (crop[ch * plane + i] * 127.5 + 127.5).clamp(0.0, 255.0);
        0.299 * level(0) + 0.587 * level(1) + 0.114 * level(2)
    };
    let (mut n, mut sum, mut sum_sq, mut clipped) = (0usize, 0f64, 0f64, 0usize);
    let (mut lap_sum, mut lap_sq) = (0f64, 0f64);
    for y in REGION_Y {
        for x in REGION_X {
            let i = y * CROP + x;
            let neighbours = [i - 1, i + 1, i - CROP, i + CROP];
            if !inside[i] || neighbours.iter().any(|&j| !inside[j]) {
                continue;
            }
            let g = grey(i);
            let laplacian = neighbours.iter().map(|&j| f64::from(grey(j))).sum::<f64>() - 4.0 * f64::from(g);
            n += 1;
            sum += f64::from(g);
            sum_sq += f64::from(g) * f64::from(g);
            lap_sum += laplacian;
            lap_sq += laplacian * laplacian;
            if !(CLIP_LOW..=CLIP_HIGH).contains(&g) {
                clipped += 1;
            }
        }
    }
    if n == 0 {
        return CropQuality::default();
    }
    let count = n as f64;
    let variance = |s: f64, sq: f64| (sq / count - (s / count).powi(2)).max(0.0);
    CropQuality {
        sharpness: variance(lap_sum, lap_sq) as f32,
        brightness: (sum / count / 255.0) as f32,
        contrast: (variance(sum, sum_sq).sqrt() / 255.0) as f32,
        clipped: (clipped as f64 / count) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop whose three channels all hold `level(x, y)` (0..255).
    fn crop_of(level: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        let plane: Vec<f32> = (0..CROP * CROP).map(|i| (level(i % CROP, i / CROP) - 127.5) / 127.5).collect();
        [plane.clone(), plane.clone(), plane].concat()
    }

    #[test]
    fn flat_grey_has_no_sharpness() {
        let q = measure(&crop_of(|_, _| 127.5), &[true; CROP * CROP]);
        assert!(q.sharpness.abs() < 1e-6 && q.contrast.abs() < 1e-6, "{q:?}");
        assert!((q.brightness - 0.5).abs() < 1e-6 && q.clipped == 0.0, "{q:?}");
    }

    #[test]
    fn checkerboard_has_the_laplacian_computed_by_hand() {
        // Levels 100 and 200 alternate: every Laplacian is +-400, its mean 0, its variance
        // 160000; the mean grey is 150, the standard deviation 50.
        let q = measure(&crop_of(|x, y| if (x + y) % 2 == 0 { 100.0 } else { 200.0 }), &[true; CROP * CROP]);
        assert!((q.sharpness - 160_000.0).abs() < 1.0, "{q:?}");
        assert!((q.brightness - 150.0 / 255.0).abs() < 1e-4, "{q:?}");
        assert!((q.contrast - 50.0 / 255.0).abs() < 1e-4, "{q:?}");
    }

    #[test]
    fn blur_lowers_sharpness() {
        let sharp =
            measure(&crop_of(|x, _| if (x / 2) % 2 == 0 { 60.0 } else { 190.0 }), &[true; CROP * CROP]);
        let soft = measure(&crop_of(|x, _| 125.0 + 65.0 * (x as f32 * 0.3).sin()), &[true; CROP * CROP]);
        assert!(sharp.sharpness > 10.0 * soft.sharpness, "{sharp:?} {soft:?}");
    }

    #[test]
    fn clipped_pixels_are_counted_and_outside_pixels_left_out() {
        let q = measure(&crop_of(|_, _| 255.0), &[true; CROP * CROP]);
        assert!((q.clipped - 1.0).abs() < 1e-6 && (q.brightness - 1.0).abs() < 1e-6, "{q:?}");
        // Everything outside the photo: nothing to measure, and no hard border edge either.
        let none = measure(&crop_of(|x, _| if x < 56 { 0.0 } else { 255.0 }), &[false; CROP * CROP]);
        assert_eq!(none, CropQuality::default());
        assert_eq!(measure(&[], &[]), CropQuality::default());
    }
}
