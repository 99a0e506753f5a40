//! facedb's engine: find faces in photos, align them and turn each into a template.
//!
//! ```no_run
//! use facedb::{EngineConfig, FaceEngine, Source};
//! let engine = FaceEngine::new(EngineConfig::default())?;
//! let faces = engine.detect_source(&Source::Path("group.jpg".as_ref()))?;
//! for face in &faces {
//!     println!("{:?} {:.2}", face.bbox, face.score);
//! }
//! # Ok::<(), facedb::Error>(())
//! ```

pub mod align;
#[cfg_attr(not(feature = "openvino"), allow(dead_code))]
pub mod choice;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod error;
pub mod hamming;
pub mod image;
#[cfg(feature = "openvino")]
pub mod openvino;
pub mod pack;
pub mod quality;
pub mod runtime;

#[cfg(feature = "python")]
mod python;

pub use crate::choice::RuntimeReport;
pub use crate::detect::Detection;
pub use crate::embed::similarity;
pub use crate::engine::{EngineConfig, Face, FaceEngine, Source};
pub use crate::error::{Error, Result};
pub use crate::image::{ChannelOrder, DecodeLimits, Image, ImageView};
pub use crate::pack::Pack;
pub use crate::quality::CropQuality;
pub use crate::runtime::{ModelSources, RuntimeChoice, RuntimeKind, RuntimePolicy};
