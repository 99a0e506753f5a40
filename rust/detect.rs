//! Face detection: letterbox resize, inference, decoding of the detector's grid, NMS. SCRFD
//! follows insightface's `scrfd.py` step for step so that boxes and landmarks agree with it;
//! YuNet follows OpenCV's `FaceDetectorYN`.

use ndarray::Array4;

use crate::error::{Error, Result};
use crate::image::{round_half_up, ImageView, PixelVisitor, Pixels};
use crate::pack::{DetectorKind, Normalization};
use crate::runtime::{Model, Output};

/// One detected face in the photo's pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Box corners `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Detector confidence in [0, 1].
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner (as seen in the picture), `[x, y]`.
    pub landmarks: [[f32; 2]; 5],
}

/// Black padding kept after a photo's short side when it is not padded to a square (see
/// [`Detector::candidates`]). The network sees past the photo's edge: with none kept, a face
/// cut by the edge got landmarks 5.3 px away and cosine 0.964 to the square pass's; with 64
/// px 1.0 px and 0.987; with 128 px 0.54 px and 0.9967 (the worst of 57 faces, measured on
/// ../shared/faces and the wheel's photos; every other face within 0.1 px).
pub const KEPT_PADDING: usize = 128;

/// A detector (SCRFD or YuNet) with the output layout read from the model.
pub struct Detector {
    model: Model,
    /// Feature-map strides, in the model's output order.
    strides: Vec<usize>,
    anchors_per_cell: usize,
    /// YuNet's fixed input canvas (width, height), from the graph; None for SCRFD.
    canvas: Option<(usize, usize)>,
}

impl Detector {
    /// Wraps a loaded model after checking it has the outputs of its kind, with landmarks.
    pub fn new(model: Model, kind: DetectorKind) -> Result<Self> {
        if kind == DetectorKind::YuNet {
            return Self::yunet(model);
        }
        let outputs = model.output_count();
        let (strides, anchors_per_cell) = match outputs {
            9 => (vec![8, 16, 32], 2),
            15 => (vec![8, 16, 32, 64, 128], 1),
            6 | 10 => {
                return Err(Error::model(format!(
                    "detector {} has no landmark outputs: facedb needs an SCRFD model with keypoints (_kps)",
                    model.path().display()
                )))
            }
            n => {
                return Err(Error::model(format!(
                    "{} is not an SCRFD detector: expected 9 or 15 outputs (scores, boxes, keypoints per stride), found {n}",
                    model.path().display()
                )))
            }
        };
        Ok(Detector { model, strides, anchors_per_cell, canvas: None })
    }

    /// YuNet: 12 outputs (cls, obj, bbox, kps at strides 8, 16, 32) on a fixed canvas.
    fn yunet(model: Model) -> Result<Self> {
        let shape = model.input_shape().to_vec();
        let canvas = match shape.as_slice() {
            [_, 3, h, w] if *h >= 32 && *w >= 32 && h % 32 == 0 && w % 32 == 0 => (*w as usize, *h as usize),
            _ => {
                return Err(Error::model(format!(
                    "{} is not a YuNet detector: expected a fixed input [1, 3, H, W] with sides multiples of 32, found {shape:?}",
                    model.path().display()
                )))
            }
        };
        if model.output_count() != 12 {
            return Err(Error::model(format!(
                "{} is not a YuNet detector: expected 12 outputs (cls, obj, bbox, kps per stride), found {}",
                model.path().display(),
                model.output_count()
            )));
        }
        Ok(Detector { model, strides: vec![8, 16, 32], anchors_per_cell: 1, canvas: Some(canvas) })
    }

    /// The model file this detector was loaded from.
    pub fn path(&self) -> &std::path::Path {
        self.model.path()
    }

    /// The largest pass side this detector takes: YuNet's fixed canvas, else none.
    pub fn max_side(&self) -> Option<usize> {
        self.canvas.map(|(w, h)| w.min(h))
    }

    /// Runs one pass with the photo's long side at `size` and returns the candidates scoring
    /// at least `threshold`, in the photo's coordinates, before NMS.
    ///
    /// With `square` the photo is padded to a `size` x `size` canvas, as insightface does.
    /// Otherwise the padding after the short side is cut to [`KEPT_PADDING`] pixels (rounded
    /// up to the coarsest stride): a 3:4 photo costs about 4/5 of a square, a 9:16 one 2/3.
    pub fn candidates(
        &self,
        image: &ImageView,
        size: usize,
        threshold: f32,
        square: bool,
    ) -> Result<Vec<Detection>> {
        if let Some(canvas) = self.canvas {
            // The photo's long side at `size`, on the graph's fixed canvas.
            let (tensor, scale) = letterbox(image, size, Canvas::Fixed(canvas), Normalization::OPENCV);
            let outputs = self.model.run(tensor.view())?;
            return self.decode_yunet(&outputs, canvas, scale, threshold);
        }
        let fit = if square {
            Canvas::Square
        } else {
            Canvas::Kept(self.strides.iter().copied().max().unwrap_or(32))
        };
        let (tensor, scale) = letterbox(image, size, fit, Normalization::SCRFD);
        let outputs = self.model.run(tensor.view())?;
        let (_, _, height, width) = tensor.dim();
        self.decode(&outputs, (width, height), scale, threshold)
    }

    /// That one stride's outputs hold as many values as the input size says: (what, values,
    /// expected) each; a ModelError naming them otherwise.
    fn check_outputs(
        &self,
        stride: usize,
        (width, height): (usize, usize),
        parts: &[(&str, &[f32], usize)],
    ) -> Result<()> {
        if parts.iter().all(|(_, values, want)| values.len() == *want) {
            return Ok(());
        }
        let got: Vec<String> =
            parts.iter().map(|(what, v, want)| format!("{} {what} (expected {want})", v.len())).collect();
        Err(Error::model(format!(
            "detector {} output for stride {stride} at input {width}x{height} has {} values",
            self.model.path().display(),
            got.join(", ")
        )))
    }

    /// OpenCV's `FaceDetectorYN::postProcess`: per stride and cell, score sqrt(cls x obj)
    /// (each clamped to [0, 1]), box centre (cell + offset) x stride and side exp(v) x stride,
    /// landmarks (cell + offset) x stride.
    fn decode_yunet(
        &self,
        outputs: &[Output],
        (width, height): (usize, usize),
        scale: f64,
        threshold: f32,
    ) -> Result<Vec<Detection>> {
        let levels = self.strides.len();
        let mut found = Vec::new();
        for (level, &stride) in self.strides.iter().enumerate() {
            let cols = width / stride;
            let cells = cols * (height / stride);
            let (cls, obj, boxes, kps) = (
                &outputs[level].data,
                &outputs[level + levels].data,
                &outputs[level + 2 * levels].data,
                &outputs[level + 3 * levels].data,
            );
            self.check_outputs(
                stride,
                (width, height),
                &[
                    ("score", cls, cells),
                    ("objectness", obj, cells),
                    ("box", boxes, cells * 4),
                    ("keypoint", kps, cells * 10),
                ],
            )?;
            let s = stride as f32;
            for i in 0..cells {
                let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
                if score.is_nan() || score < threshold {
                    continue;
                }
                let (c, r) = ((i % cols) as f32, (i / cols) as f32);
                let d = &boxes[i * 4..i * 4 + 4];
                let k = &kps[i * 10..i * 10 + 10];
                let back = |v: f32| (f64::from(v) / scale) as f32;
                let (cx, cy) = ((c + d[0]) * s, (r + d[1]) * s);
                let (w, h) = (d[2].exp() * s, d[3].exp() * s);
                let mut landmarks = [[0f32; 2]; 5];
                for (j, point) in landmarks.iter_mut().enumerate() {
                    *point = [back((k[2 * j] + c) * s), back((k[2 * j + 1] + r) * s)];
                }
                let bbox = [back(cx - w / 2.0), back(cy - h / 2.0), back(cx + w / 2.0), back(cy + h / 2.0)];
                if bbox.iter().chain(landmarks.iter().flatten()).all(|v| v.is_finite()) {
                    found.push(Detection { bbox, score, landmarks });
                }
            }
        }
        Ok(found)
    }

    fn decode(
        &self,
        outputs: &[Output],
        (width, height): (usize, usize),
        scale: f64,
        threshold: f32,
    ) -> Result<Vec<Detection>> {
        let levels = self.strides.len();
        let mut found = Vec::new();
        for (level, &stride) in self.strides.iter().enumerate() {
            let cells = width / stride;
            let anchors = cells * (height / stride) * self.anchors_per_cell;
            let (scores, boxes, kps) =
                (&outputs[level].data, &outputs[level + levels].data, &outputs[level + 2 * levels].data);
            self.check_outputs(
                stride,
                (width, height),
                &[("score", scores, anchors), ("box", boxes, anchors * 4), ("keypoint", kps, anchors * 10)],
            )?;
            let s = stride as f32;
            for (i, &score) in scores.iter().enumerate() {
                if score < threshold {
                    continue;
                }
                let cell = i / self.anchors_per_cell;
                let cx = ((cell % cells) * stride) as f32;
                let cy = ((cell / cells) * stride) as f32;
                let d = &boxes[i * 4..i * 4 + 4];
                let k = &kps[i * 10..i * 10 + 10];
                let back = |v: f32| (f64::from(v) / scale) as f32;
                let mut landmarks = [[0f32; 2]; 5];
                for (j, point) in landmarks.iter_mut().enumerate() {
                    *point = [back(cx + k[2 * j] * s), back(cy + k[2 * j + 1] * s)];
                }
                found.push(Detection {
                    bbox: [
                        back(cx - d[0] * s),
                        back(cy - d[1] * s),
                        back(cx + d[2] * s),
                        back(cy + d[3] * s),
                    ],
                    score,
                    landmarks,
                });
            }
        }
        Ok(found)
    }
}

/// The canvas a photo is letterboxed onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Canvas {
    /// `size` x `size`, as insightface pads.
    Square,
    /// The short side is the resized photo's plus [`KEPT_PADDING`], rounded up to this
    /// multiple (and at most `size`).
    Kept(usize),
    /// A fixed (width, height), as a graph with a fixed input declares it.
    Fixed((usize, usize)),
}

/// Resizes the photo into the top-left of a canvas keeping its aspect ratio, as insightface
/// does (the long side becomes `size`, the short one is truncated with int(); cv2
/// INTER_LINEAR without antialiasing, rounded to 8 bits), and normalises to an NCHW tensor
/// as `input` says, padding black.
/// Returns the tensor and the scale from photo to canvas pixels.
pub(crate) fn letterbox(
    image: &ImageView,
    size: usize,
    canvas: Canvas,
    input: Normalization,
) -> (Array4<f32>, f64) {
    let (w, h) = (image.width(), image.height());
    let ratio = h as f64 / w as f64;
    let (new_w, new_h) = if ratio > 1.0 {
        (((size as f64 / ratio) as usize).max(1), size)
    } else {
        (size, ((size as f64 * ratio) as usize).max(1))
    };
    let fit = |side: usize| match canvas {
        Canvas::Kept(m) if m > 0 => (side + KEPT_PADDING).div_ceil(m).saturating_mul(m).min(size).max(side),
        _ => size,
    };
    let (canvas_w, canvas_h) = match canvas {
        Canvas::Fixed((cw, ch)) => (cw.max(new_w), ch.max(new_h)),
        _ => (fit(new_w), fit(new_h)),
    };
    let scale = new_h as f64 / h as f64;
    let pad = (0.0 - input.mean) / input.std;
    let mut tensor = Array4::<f32>::from_elem((1, 3, canvas_h, canvas_w), pad);
    if let Some(out) = tensor.as_slice_mut() {
        image.visit(Resize { out, canvas_w, plane: canvas_w * canvas_h, new_w, new_h, input });
    }
    (tensor, scale)
}

/// Sampling positions of cv2's INTER_LINEAR along one axis: (index, weight of the next).
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let pos = (d as f64 + 0.5) * scale - 0.5;
            let mut i = pos.floor();
            let mut frac = (pos - i) as f32;
            if i < 0.0 {
                i = 0.0;
                frac = 0.0;
            }
            let mut i = i as usize;
            if i >= src - 1 {
                i = src - 1;
                frac = 0.0;
            }
            (i, (i + 1).min(src - 1), frac)
        })
        .collect()
}

struct Resize<'o> {
    out: &'o mut [f32],
    canvas_w: usize,
    plane: usize,
    new_w: usize,
    new_h: usize,
    input: Normalization,
}

impl PixelVisitor for Resize<'_> {
    type Output = ();

    fn visit<P: Pixels>(self, px: &P) {
        let xs = linear_taps(px.width(), self.new_w);
        let ys = linear_taps(px.height(), self.new_h);
        let (first, rest) = self.out.split_at_mut(self.plane);
        let (green, last) = rest.split_at_mut(self.plane);
        let (red, blue) = if self.input.bgr { (last, first) } else { (first, last) };
        let Normalization { mean, std, .. } = self.input;
        for (dy, &(y0, y1, fy)) in ys.iter().enumerate() {
            let row = dy * self.canvas_w..dy * self.canvas_w + self.new_w;
            let planes = [&mut red[row.clone()], &mut green[row.clone()], &mut blue[row]];
            for (dx, &(x0, x1, fx)) in xs.iter().enumerate() {
                let (a, b, c, d) = (px.rgb(x0, y0), px.rgb(x1, y0), px.rgb(x0, y1), px.rgb(x1, y1));
                for ch in 0..3 {
                    let top = a[ch] + (b[ch] - a[ch]) * fx;
                    let bottom = c[ch] + (d[ch] - c[ch]) * fx;
                    let v = round_half_up(top + (bottom - top) * fy);
                    planes[ch][dx] = (v - mean) / std;
                }
            }
        }
    }
}

/// Greedy non-maximum suppression as insightface computes it (areas with +1 pixel):
/// keeps the best-scoring box and drops those overlapping it by more than `iou`.
pub fn nms(mut candidates: Vec<Detection>, iou: f32) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let area = |d: &Detection| (d.bbox[2] - d.bbox[0] + 1.0) * (d.bbox[3] - d.bbox[1] + 1.0);
    let mut kept: Vec<Detection> = Vec::new();
    for cand in candidates {
        let overlaps = kept.iter().any(|k| {
            let w = (k.bbox[2].min(cand.bbox[2]) - k.bbox[0].max(cand.bbox[0]) + 1.0).max(0.0);
            let h = (k.bbox[3].min(cand.bbox[3]) - k.bbox[1].max(cand.bbox[1]) + 1.0).max(0.0);
            let inter = w * h;
            inter / (area(k) + area(&cand) - inter) > iou
        });
        if !overlaps {
            kept.push(cand);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ChannelOrder;

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection { bbox, score, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_separate_boxes() {
        let kept = nms(
            vec![
                det([0.0, 0.0, 9.0, 9.0], 0.6),
                det([1.0, 1.0, 10.0, 10.0], 0.9),
                det([50.0, 50.0, 59.0, 59.0], 0.7),
            ],
            0.4,
        );
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
    }

    #[test]
    fn nms_keeps_boxes_at_exactly_the_threshold() {
        // Two 10x10 boxes (areas 100 with the +1 convention) overlapping by 4x10:
        // IoU = 40 / 160 = 0.25, kept at threshold 0.25 and dropped below it.
        let boxes = vec![det([0.0, 0.0, 9.0, 9.0], 0.9), det([6.0, 0.0, 15.0, 9.0], 0.8)];
        assert_eq!(nms(boxes.clone(), 0.25).len(), 2);
        assert_eq!(nms(boxes, 0.2).len(), 1);
    }

    #[test]
    fn linear_taps_match_cv2_for_halving() {
        // Halving: destination pixel d samples source 2d + 0.5, i.e. the mean of 2d and 2d+1.
        let taps = linear_taps(8, 4);
        assert_eq!(taps[1], (2, 3, 0.5));
        // Upscaling clamps at both borders.
        let taps = linear_taps(2, 4);
        assert_eq!(taps[0], (0, 1, 0.0));
        assert_eq!(taps[3], (1, 1, 0.0));
    }

    #[test]
    fn letterbox_cuts_the_padding_after_the_short_side() {
        // 640x320 at 640: resized 640x320, then 128 rows of black kept (rounded up to 32).
        let data = vec![255u8; 640 * 640 * 3];
        let view = ImageView::new(&data, 640, 320, 3, ChannelOrder::Rgb, 640 * 3, "t").expect("view");
        let (t, scale) = letterbox(&view, 640, Canvas::Kept(32), Normalization::SCRFD);
        assert_eq!((t.dim(), scale), ((1, 3, 448, 640), 1.0));
        assert_eq!(t[[0, 0, 319, 639]], (255.0 - 127.5) / 128.0);
        assert_eq!(t[[0, 0, 320, 0]], -127.5 / 128.0);
        // A tall one keeps its padding on the right; a nearly square one stays square.
        let tall = ImageView::new(&data, 320, 640, 3, ChannelOrder::Rgb, 320 * 3, "t").expect("view");
        assert_eq!(letterbox(&tall, 640, Canvas::Kept(32), Normalization::SCRFD).0.dim(), (1, 3, 640, 448));
        let wide = ImageView::new(&data, 640, 600, 3, ChannelOrder::Rgb, 640 * 3, "t").expect("view");
        assert_eq!(letterbox(&wide, 640, Canvas::Kept(32), Normalization::SCRFD).0.dim(), (1, 3, 640, 640));
        assert_eq!(letterbox(&view, 640, Canvas::Square, Normalization::SCRFD).0.dim(), (1, 3, 640, 640));
    }

    #[test]
    fn letterbox_pads_and_scales() {
        // A 4x2 white image into 8x8: resized to 8x4 at the top, the rest padded with zeros.
        let data = [255u8; 4 * 2 * 3];
        let view = ImageView::new(&data, 4, 2, 3, ChannelOrder::Rgb, 12, "t").expect("view");
        let (t, scale) = letterbox(&view, 8, Canvas::Square, Normalization::SCRFD);
        assert_eq!(scale, 2.0);
        let white = (255.0 - 127.5) / 128.0;
        let pad = -127.5 / 128.0;
        assert_eq!(t[[0, 0, 0, 7]], white);
        assert_eq!(t[[0, 2, 3, 0]], white);
        assert_eq!(t[[0, 1, 4, 0]], pad);
    }
}
