//! ArcFace recognition: aligned crops of all faces of a photo in one batch, L2-normalised.

use ndarray::{Array4, ArrayView4};

use crate::align::{warp_face, CROP};
use crate::detect::Detection;
use crate::error::{Error, Result};
use crate::image::ImageView;
use crate::pack::Normalization;
use crate::quality::{measure, CropQuality};
use crate::runtime::Model;

/// Largest number of faces run through the recognizer at once (bounds memory on crowds).
const MAX_BATCH: usize = 32;

/// The recognizer (ArcFace-style: an aligned 112x112 crop in, one template out).
pub struct Recognizer {
    model: Model,
    dimension: usize,
    /// How the model wants its crops (the engine's are ArcFace's).
    input: Normalization,
    /// Crops per run: 1 for a graph with a fixed batch of one (SFace), else [`MAX_BATCH`].
    batch: usize,
}

impl Recognizer {
    /// Wraps a loaded model after checking it looks like an ArcFace-style recognizer that
    /// takes its crops as `input` says.
    pub fn new(model: Model, input: Normalization) -> Result<Self> {
        let dimension = model.output_shapes().first().and_then(|s| s.last().copied()).unwrap_or(-1);
        if !is_recognizer(&model) || dimension <= 0 {
            return Err(Error::model(format!(
                "{} is not an ArcFace recognizer: expected one input of shape [N, 3, 112, 112] and one output, found input {:?} and {} outputs",
                model.path().display(),
                model.input_shape(),
                model.output_count()
            )));
        }
        let batch = if model.input_shape().first() == Some(&1) { 1 } else { MAX_BATCH };
        Ok(Recognizer { model, dimension: dimension as usize, input, batch })
    }

    /// Length of the templates this recognizer makes (512 for the insightface models).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The model file this recognizer was loaded from.
    pub fn path(&self) -> &std::path::Path {
        self.model.path()
    }

    /// One L2-normalised template per detection, in the same order, each with the sharpness
    /// and exposure of the aligned crop it was made from.
    /// `parts` > 1 spreads each batch over that many sessions at once (see
    /// [`Recognizer::run_spread`]).
    pub fn embed(
        &self,
        image: &ImageView,
        faces: &[Detection],
        parts: usize,
    ) -> Result<Vec<(Vec<f32>, CropQuality)>> {
        let mut templates = Vec::with_capacity(faces.len());
        for chunk in faces.chunks(MAX_BATCH) {
            let landmarks: Vec<[[f32; 2]; 5]> = chunk.iter().map(|f| f.landmarks).collect();
            let (batch, crops) = align(image, &landmarks);
            templates.extend(self.run_spread(batch.view(), parts)?.into_iter().zip(crops));
        }
        Ok(templates)
    }

    /// As [`Recognizer::run`], with the crops split into up to `parts` runs at once on the
    /// model's sessions (one photo's many faces on every core); the same templates.
    pub fn run_spread(&self, crops: ArrayView4<f32>, parts: usize) -> Result<Vec<Vec<f32>>> {
        let total = crops.shape()[0];
        let parts = parts.min(self.model.sessions()).min(total);
        if parts <= 1 {
            return self.run(crops);
        }
        let size = total.div_ceil(parts);
        let _spread = self.model.busy();
        let runs: Vec<Result<Vec<Vec<f32>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..total)
                .step_by(size)
                .map(|start| {
                    let chunk = crops.slice(ndarray::s![start..(start + size).min(total), .., .., ..]);
                    scope.spawn(move || self.run(chunk))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::model("a recognizer run panicked"))))
                .collect()
        });
        let mut templates = Vec::with_capacity(total);
        for run in runs {
            templates.extend(run?);
        }
        Ok(templates)
    }

    /// The templates of aligned crops (`[N, 3, 112, 112]`, as [`align`] makes them), one per
    /// crop, L2-normalised; run `MAX_BATCH` crops at a time.
    pub fn run(&self, crops: ArrayView4<f32>) -> Result<Vec<Vec<f32>>> {
        let shape = crops.shape();
        if shape[1..] != [3, CROP, CROP] {
            return Err(Error::Config {
                message: format!("aligned crops must have shape [N, 3, {CROP}, {CROP}], got {shape:?}"),
            });
        }
        let mut templates = Vec::with_capacity(shape[0]);
        let total = shape[0];
        let mut start = 0;
        while start < total {
            let n = self.batch.min(total - start);
            let chunk = crops.slice(ndarray::s![start..start + n, .., .., ..]);
            start += n;
            let outputs = if self.input.is_arcface() {
                self.model.run(chunk)?
            } else {
                self.model.run(converted(chunk, self.input).view())?
            };
            let out = outputs.first().ok_or_else(|| Error::model("recognizer returned no output"))?;
            if out.data.is_empty() || out.data.len() % n != 0 {
                return Err(Error::model(format!(
                    "recognizer {} returned {} values for {n} faces (shape {:?})",
                    self.model.path().display(),
                    out.data.len(),
                    out.shape
                )));
            }
            let dim = out.data.len() / n;
            if dim != self.dimension {
                return Err(Error::model(format!(
                    "recognizer {} made {dim}-d templates; its declared output is {}-d",
                    self.model.path().display(),
                    self.dimension
                )));
            }
            templates.extend(out.data.chunks(dim).map(normalized));
        }
        Ok(templates)
    }
}

/// The aligned crops of faces given by their five landmarks (`[N, 3, 112, 112]`, normalised
/// for the recognizer), each with the sharpness and exposure of its face part.
pub fn align(image: &ImageView, landmarks: &[[[f32; 2]; 5]]) -> (Array4<f32>, Vec<CropQuality>) {
    let mut batch = Array4::<f32>::zeros((landmarks.len(), 3, CROP, CROP));
    let mut crops = Vec::with_capacity(landmarks.len());
    for (i, points) in landmarks.iter().enumerate() {
        let mut slot = batch.index_axis_mut(ndarray::Axis(0), i);
        crops.push(match slot.as_slice_mut() {
            Some(out) => {
                let inside = warp_face(image, points, out);
                measure(out, &inside)
            }
            None => CropQuality::default(),
        });
    }
    (batch, crops)
}

/// ArcFace-normalised RGB crops turned into what a recognizer wants (`input`).
fn converted(crops: ArrayView4<f32>, input: Normalization) -> Array4<f32> {
    let mut out = Array4::<f32>::zeros(crops.raw_dim());
    for (mut to, from) in out.outer_iter_mut().zip(crops.outer_iter()) {
        for ch in 0..3 {
            let source = if input.bgr { 2 - ch } else { ch };
            let plane = from.index_axis(ndarray::Axis(0), source);
            to.index_axis_mut(ndarray::Axis(0), ch)
                .zip_mut_with(&plane, |o, &v| *o = (v * 127.5 + 127.5 - input.mean) / input.std);
        }
    }
    out
}

/// Whether a model has the recognizer's shape: one output, input [N, 3, 112, 112].
pub(crate) fn is_recognizer(model: &Model) -> bool {
    let shape = model.input_shape();
    model.output_count() == 1
        && shape.len() == 4
        && shape[1..].iter().zip([3, 112, 112]).all(|(&d, want)| d == want || d < 0)
}

/// `v / |v|`; an all-zero vector stays zero.
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

/// Cosine similarity of two templates (their dot product when both are unit length).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    cosine(a, b) as f32
}

/// Cosine similarity computed and returned in f64: the one implementation, behind
/// [`similarity`] and Python's `facedb.similarity`.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_has_unit_length() {
        let v = normalized(&[3.0, 4.0]);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn crops_are_turned_into_bgr_0_to_255() {
        let mut crops = Array4::<f32>::zeros((1, 3, 2, 2));
        crops[[0, 0, 0, 0]] = 1.0; // red 255
        crops[[0, 2, 0, 0]] = -1.0; // blue 0
        let out = converted(crops.view(), Normalization::OPENCV);
        assert_eq!(out[[0, 0, 0, 0]], 0.0); // blue first
        assert_eq!(out[[0, 2, 0, 0]], 255.0);
        assert_eq!(out[[0, 1, 0, 0]], 127.5);
    }

    #[test]
    fn similarity_is_cosine() {
        assert!((similarity(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(similarity(&[1.0, 0.0], &[0.0, 5.0]).abs() < 1e-6);
        assert_eq!(similarity(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
