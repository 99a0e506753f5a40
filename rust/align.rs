//! Face alignment: a least-squares similarity transform from the five landmarks to the
//! ArcFace template, and a bilinear warp into the 112x112 crop the recognizer expects.

use crate::image::{round_half_up, ImageView, PixelVisitor, Pixels};

/// Side of the aligned face crop.
pub const CROP: usize = 112;

/// Where ArcFace expects the five landmarks in a 112x112 crop.
pub const ARCFACE_TEMPLATE: [[f64; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// A 2x3 affine matrix `[[a, -b, tx], [b, a, ty]]` mapping photo to crop coordinates.
pub type Affine = [[f64; 3]; 2];

/// The similarity transform (scale, rotation, translation; no reflection) that best maps
/// `src` onto `dst` in the least-squares sense: Umeyama's estimate, as skimage's
/// `SimilarityTransform.estimate`. In 2-D it has this closed form, because every
/// scaled rotation is `[[a, -b], [b, a]]` and the problem is linear in (a, b).
pub fn similarity_transform(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Affine {
    let n = src.len().min(dst.len()).max(1) as f64;
    let mean = |p: &[[f64; 2]]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0], y + q[1]));
        [sx / n, sy / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if norm == 0.0 {
        // All landmarks on one point: no scale can be estimated; map that point to the centre.
        return [[1.0, 0.0, md[0] - ms[0]], [0.0, 1.0, md[1] - ms[1]]];
    }
    let (a, b) = (dot / norm, cross / norm);
    [[a, -b, md[0] - (a * ms[0] - b * ms[1])], [b, a, md[1] - (b * ms[0] + a * ms[1])]]
}

/// Warps the face into `out` (3 planes of CROP x CROP, RGB) normalised as (x - 127.5) / 127.5,
/// like cv2.warpAffine with INTER_LINEAR and a black constant border, rounded to 8 bits.
/// Returns, per crop pixel, whether all its samples came from inside the photo (the rest is
/// border), for `quality::measure`.
pub fn warp_face(image: &ImageView, landmarks: &[[f32; 2]; 5], out: &mut [f32]) -> Vec<bool> {
    let src: Vec<[f64; 2]> = landmarks.iter().map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
    let m = similarity_transform(&src, &ARCFACE_TEMPLATE);
    image.visit(Warp { inverse: invert(&m), out })
}

/// The inverse of a similarity (or any invertible affine) transform.
fn invert(m: &Affine) -> Affine {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det == 0.0 {
        return [[0.0; 3]; 2];
    }
    let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
    [[a, b, -(a * m[0][2] + b * m[1][2])], [c, d, -(c * m[0][2] + d * m[1][2])]]
}

struct Warp<'o> {
    inverse: Affine,
    out: &'o mut [f32],
}

impl PixelVisitor for Warp<'_> {
    type Output = Vec<bool>;

    fn visit<P: Pixels>(self, px: &P) -> Vec<bool> {
        let (w, h) = (px.width() as i64, px.height() as i64);
        let m = self.inverse;
        let plane = CROP * CROP;
        let mut inside = vec![false; plane];
        let fetch = |x: i64, y: i64| {
            if x >= 0 && y >= 0 && x < w && y < h {
                px.rgb(x as usize, y as usize)
            } else {
                [0.0; 3]
            }
        };
        for y in 0..CROP {
            for x in 0..CROP {
                let (xf, yf) = (x as f64, y as f64);
                let sx = m[0][0] * xf + m[0][1] * yf + m[0][2];
                let sy = m[1][0] * xf + m[1][1] * yf + m[1][2];
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
                // Far outside the photo: black, and no integer overflow below.
                if !(x0 > -2.0 && y0 > -2.0 && x0 < w as f64 + 1.0 && y0 < h as f64 + 1.0) {
                    for ch in 0..3 {
                        self.out[ch * plane + y * CROP + x] = -1.0;
                    }
                    continue;
                }
                let (x0, y0) = (x0 as i64, y0 as i64);
                inside[y * CROP + x] = x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h;
                let (a, b, c, d) =
                    (fetch(x0, y0), fetch(x0 + 1, y0), fetch(x0, y0 + 1), fetch(x0 + 1, y0 + 1));
                for ch in 0..3 {
                    let top = a[ch] + (b[ch] - a[ch]) * fx;
                    let bottom = c[ch] + (d[ch] - c[ch]) * fx;
                    let v = round_half_up(top + (bottom - top) * fy);
                    self.out[ch * plane + y * CROP + x] = (v - 127.5) / 127.5;
                }
            }
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ChannelOrder;

    fn apply(m: &Affine, p: [f64; 2]) -> [f64; 2] {
        [m[0][0] * p[0] + m[0][1] * p[1] + m[0][2], m[1][0] * p[0] + m[1][1] * p[1] + m[1][2]]
    }

    #[test]
    fn recovers_a_known_similarity() {
        // dst = 2 * R(90 degrees) * src + (10, 20): a = 0, b = 2.
        let src = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 5.0], [-2.0, 4.0]];
        let dst: Vec<[f64; 2]> = src.iter().map(|p| [10.0 - 2.0 * p[1], 20.0 + 2.0 * p[0]]).collect();
        let m = similarity_transform(&src, &dst);
        let expected = [[0.0, -2.0, 10.0], [2.0, 0.0, 20.0]];
        for r in 0..2 {
            for c in 0..3 {
                assert!((m[r][c] - expected[r][c]).abs() < 1e-9, "{m:?}");
            }
        }
    }

    #[test]
    fn template_maps_onto_itself() {
        let m = similarity_transform(&ARCFACE_TEMPLATE, &ARCFACE_TEMPLATE);
        for p in ARCFACE_TEMPLATE {
            let q = apply(&m, p);
            assert!((q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9);
        }
    }

    #[test]
    fn inverse_undoes_the_transform() {
        let m = [[0.5, -0.25, 3.0], [0.25, 0.5, -7.0]];
        let p = apply(&invert(&m), apply(&m, [12.0, 34.0]));
        assert!((p[0] - 12.0).abs() < 1e-9 && (p[1] - 34.0).abs() < 1e-9);
    }

    #[test]
    fn warp_of_template_sized_face_is_identity() {
        // A 112x112 image whose landmarks sit on the template: the crop is the image itself.
        let data: Vec<u8> = (0..CROP * CROP).flat_map(|i| [(i % 251) as u8, 0, 255]).collect();
        let view = ImageView::new(&data, CROP, CROP, 3, ChannelOrder::Rgb, CROP * 3, "t").expect("view");
        let lm = ARCFACE_TEMPLATE.map(|p| [p[0] as f32, p[1] as f32]);
        let mut out = vec![0f32; 3 * CROP * CROP];
        let inside = warp_face(&view, &lm, &mut out);
        let i = 40 * CROP + 70;
        // Every pixel but the last row and column has all four samples inside.
        assert!(inside[i] && !inside[CROP * CROP - 1]);
        assert!((out[i] - ((i % 251) as f32 - 127.5) / 127.5).abs() < 1e-6);
        assert!((out[2 * CROP * CROP + i] - 1.0).abs() < 1e-6);
    }
}
