//! OpenVINO as a second runtime (cargo feature `openvino`). The C library (`libopenvino_c`,
//! shipped by the `openvino` wheel beside its CPU plugin) is opened at run time, once per
//! process, as ort opens ONNX Runtime's: a build needs neither the library nor a download.
//!
//! Each session is a model compiled for the CPU with one stream of `threads` threads, fp32
//! (on CPUs with bf16 units OpenVINO would otherwise lower the precision and the templates
//! would no longer match ONNX Runtime's), without pinning (the detector's and the
//! recognizer's sessions share the cores with decoding).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ::openvino::{CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape, Tensor};
use ndarray::ArrayView4;

use crate::error::{Error, Result};
use crate::runtime::Output;

/// A loaded OpenVINO library: its path and version. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenVino {
    library: PathBuf,
    version: String,
    /// OpenVINO's own cache of compiled models (CACHE_DIR): a model compiles in about 30 ms
    /// from it instead of 160 (the recognizer, measured here), and an engine compiles it once
    /// per session.
    cache: Option<PathBuf>,
}

impl OpenVino {
    /// The `libopenvino_c` file in use.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// OpenVINO's build number, e.g. `2026.4.1-...`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The same library, compiling models through a cache in `dir` (None: no cache).
    pub fn with_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.cache = dir;
        self
    }
}

/// The process-wide library: openvino-sys keeps the first one it loads and ignores another.
static LOADED: OnceLock<std::result::Result<OpenVino, String>> = OnceLock::new();

/// Loads OpenVINO's C library from `library` (once per process).
pub fn load(library: &Path) -> Result<OpenVino> {
    let wanted = library
        .canonicalize()
        .map_err(|e| Error::model(format!("OpenVINO library {} cannot be opened: {e}", library.display())))?;
    let loaded = LOADED.get_or_init(|| {
        openvino_sys::library::load_from(wanted.clone())
            .map_err(|e| format!("cannot load OpenVINO from {}: {e}", wanted.display()))?;
        // A Core proves the library and its CPU plugin work before anything relies on them.
        let core =
            Core::new().map_err(|e| format!("cannot start OpenVINO from {}: {e}", wanted.display()))?;
        drop(core);
        Ok(OpenVino { library: wanted.clone(), version: ::openvino::version().build_number, cache: None })
    });
    match loaded {
        Ok(ov) if ov.library == wanted => Ok(ov.clone()),
        Ok(ov) => Err(Error::model(format!(
            "OpenVINO is already loaded from {} in this process; cannot switch to {}",
            ov.library.display(),
            wanted.display()
        ))),
        Err(message) => Err(Error::model(message.clone())),
    }
}

/// One compiled model and its infer request: a session of [`crate::runtime::Model`].
pub struct Request {
    request: InferRequest,
    /// Kept alive as long as its request.
    compiled: CompiledModel,
    shapes: Shapes,
}

/// The declared shapes of a compiled model (-1 for a dynamic dimension).
pub struct Shapes {
    pub input: Vec<i64>,
    pub outputs: Vec<Vec<i64>>,
}

/// Compiles the ONNX file `path` for the CPU with `threads` threads.
pub fn compile(runtime: &OpenVino, path: &Path, threads: usize) -> Result<Request> {
    let failed = |e: String| Error::model(format!("OpenVINO cannot load model {}: {e}", path.display()));
    let text = path.to_str().ok_or_else(|| failed("the path is not UTF-8".into()))?;
    let mut core = Core::new().map_err(|e| failed(e.to_string()))?;
    let threads = threads.max(1).to_string();
    let properties = [
        (RwPropertyKey::InferenceNumThreads, threads.as_str()),
        (RwPropertyKey::NumStreams, "1"),
        (RwPropertyKey::HintPerformanceMode, "LATENCY"),
        (RwPropertyKey::HintInferencePrecision, "f32"),
        (RwPropertyKey::HintEnableCpuPinning, "NO"),
    ];
    core.set_properties(&DeviceType::CPU, properties).map_err(|e| failed(e.to_string()))?;
    if let Some(dir) = runtime.cache.as_ref().and_then(|d| d.to_str()) {
        // Only a speed-up: a cache that cannot be used leaves the compilation as it was.
        core.set_property(&DeviceType::CPU, &RwPropertyKey::CacheDir, dir).ok();
    }
    let model = core.read_model_from_file(text, "").map_err(|e| failed(e.to_string()))?;
    let mut compiled = core.compile_model(&model, DeviceType::CPU).map_err(|e| failed(e.to_string()))?;
    let dims = |shape: ::openvino::PartialShape| -> Vec<i64> {
        shape.get_dimensions().iter().map(|d| if d.is_dynamic() { -1 } else { d.get_min() }).collect()
    };
    let input = compiled
        .get_input_by_index(0)
        .and_then(|n| n.get_partial_shape())
        .map(dims)
        .map_err(|e| failed(e.to_string()))?;
    let count = compiled.get_output_size().map_err(|e| failed(e.to_string()))?;
    let outputs = (0..count)
        .map(|i| compiled.get_output_by_index(i).and_then(|n| n.get_partial_shape()).map(dims))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    let request = compiled.create_infer_request().map_err(|e| failed(e.to_string()))?;
    Ok(Request { request, compiled, shapes: Shapes { input, outputs } })
}

impl Request {
    /// The declared shapes of the model's first input and of its outputs.
    pub fn shapes(&self) -> &Shapes {
        &self.shapes
    }

    /// Runs the model on one float tensor and copies out every output, in the model's order.
    pub fn run(&mut self, input: ArrayView4<f32>, path: &Path) -> Result<Vec<Output>> {
        let failed =
            |e: String| Error::model(format!("inference with {} on OpenVINO failed: {e}", path.display()));
        let dims: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let shape = Shape::new(&dims).map_err(|e| failed(e.to_string()))?;
        let mut tensor = Tensor::new(ElementType::F32, &shape).map_err(|e| failed(e.to_string()))?;
        let packed = input.as_standard_layout();
        let values = packed.as_slice().ok_or_else(|| failed("input is not contiguous".into()))?;
        let data = tensor.get_data_mut::<f32>().map_err(|e| failed(e.to_string()))?;
        if data.len() != values.len() {
            return Err(failed(format!("tensor holds {} values, input {}", data.len(), values.len())));
        }
        data.copy_from_slice(values);
        self.request.set_input_tensor(&tensor).map_err(|e| failed(e.to_string()))?;
        self.request.infer().map_err(|e| failed(e.to_string()))?;
        let count = self.compiled.get_output_size().map_err(|e| failed(e.to_string()))?;
        (0..count)
            .map(|i| {
                let out = self.request.get_output_tensor_by_index(i).map_err(|e| failed(e.to_string()))?;
                let shape = out.get_shape().map_err(|e| failed(e.to_string()))?.get_dimensions().to_vec();
                let data = out.get_data::<f32>().map_err(|e| failed(e.to_string()))?.to_vec();
                Ok(Output { shape, data })
            })
            .collect()
    }
}
