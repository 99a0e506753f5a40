//! The Python extension `facedb._native`: converts Python inputs into engine sources,
//! releases the GIL for all the work, and maps engine errors onto facedb's exception classes.
//! This is the only file of the crate that knows about Python.

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use ndarray::Array3;
use numpy::{
    PyArray1, PyArray2, PyArray3, PyArray4, PyArrayMethods, PyReadonlyArray2, PyReadonlyArrayDyn,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyTuple};

use crate::engine::{
    array_name, bytes_name, EngineConfig, Face, FaceEngine, Source, DEFAULT_COARSE_SIZE,
    DEFAULT_COARSE_THRESHOLD, DEFAULT_DET_SIZE, DEFAULT_DET_THRESHOLD, DEFAULT_NMS_THRESHOLD,
};
use crate::error::Error;
use crate::image::{ChannelOrder, DecodeLimits, ImageView, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS};
use crate::pack::Pack;
use crate::quality::CropQuality;
use crate::runtime::{ModelSources, RuntimePolicy};

/// The Python class for each engine error, looked up in `facedb.errors`.
fn exception_class(err: &Error) -> &'static str {
    match err {
        Error::ImageNotFound { .. } => "ImageNotFound",
        Error::Image { .. } => "ImageError",
        Error::ImageTooLarge { .. } => "ImageTooLarge",
        Error::NoFace { .. } => "NoFaceError",
        Error::Model { .. } => "ModelError",
        Error::Config { .. } => "ConfigError",
    }
}

fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    let message = err.to_string();
    let class = py.import("facedb.errors").and_then(|m| m.getattr(exception_class(err)));
    match class {
        Ok(class) => match class.call1((message.clone(),)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        },
        // facedb.errors is part of the package; without it, still raise something readable.
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| to_pyerr(py, &err))
    }
}

/// Runs engine work without the GIL; a panic becomes a ModelError instead of crossing into Python.
fn without_gil<T: Send>(py: Python<'_>, work: impl FnOnce() -> crate::Result<T> + Send) -> crate::Result<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(Error::model(format!("internal error in the face engine: {what}")))
        })
    })
}

/// A Python photo argument, held while the GIL is released.
enum Held<'py> {
    Path(PathBuf),
    Bytes(Bound<'py, PyBytes>, String),
    Buffer(Vec<u8>, String),
    /// A uint8 array whose rows can be read in place.
    Array {
        array: PyReadonlyArrayDyn<'py, u8>,
        layout: Layout,
        name: String,
    },
    /// A copy of an array whose pixels are not packed within rows (a flipped or column view).
    Copied {
        data: Array3<u8>,
        layout: Layout,
        name: String,
    },
    /// A photo argument of the right type whose contents the engine cannot use, and its name.
    Invalid(Error, String),
}

#[derive(Clone, Copy)]
struct Layout {
    width: usize,
    height: usize,
    channels: usize,
    row_stride: usize,
}

impl<'py> Held<'py> {
    fn new(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            let name = bytes_name(bytes.as_bytes().len());
            return Ok(Held::Bytes(bytes.clone(), name));
        }
        if obj.is_instance_of::<PyByteArray>() || obj.is_instance_of::<PyMemoryView>() {
            let data: Vec<u8> = obj
                .call_method0("__bytes__")
                .or_else(|_| obj.py().import("builtins")?.getattr("bytes")?.call1((obj,)))?
                .extract()?;
            let name = bytes_name(data.len());
            return Ok(Held::Buffer(data, name));
        }
        if let Ok(array) = obj.cast::<PyUntypedArray>() {
            return Ok(Self::from_array(array));
        }
        let os = obj.py().import("os")?;
        if let Ok(path) = os.call_method1("fspath", (obj,)) {
            if let Ok(path) = path.extract::<PathBuf>() {
                return Ok(Held::Path(path));
            }
        }
        Err(PyTypeError::new_err(format!(
            "expected a photo as a path, bytes or a numpy uint8 array, got {}",
            obj.get_type().name()?
        )))
    }

    fn from_array(array: &Bound<'py, PyUntypedArray>) -> Self {
        let shape = array.shape().to_vec();
        let name = array_name(&shape);
        let invalid = |reason: String| Held::Invalid(Error::image(&name, reason), name.clone());
        let dtype = array.dtype().to_string();
        let Ok(typed) = array.cast::<numpy::PyArrayDyn<u8>>() else {
            return invalid(format!("expected a uint8 array, got dtype {dtype}"));
        };
        let (height, width, channels) = match shape.as_slice() {
            [h, w] => (*h, *w, 1),
            [h, w, c] if matches!(c, 1 | 3 | 4) => (*h, *w, *c),
            _ => return invalid("expected shape HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA)".into()),
        };
        if width == 0 || height == 0 {
            return invalid("image is empty".into());
        }
        let readonly = match typed.try_readonly() {
            Ok(r) => r,
            Err(e) => return invalid(format!("array cannot be read: {e}")),
        };
        let strides = typed.strides().to_vec();
        // Rows may be any positive distance apart; within a row, pixels and channels packed.
        let packed_rows = strides.len() >= 2
            && strides[0] > 0
            && strides[1] == channels as isize
            && (strides.len() == 2 || strides[2] == 1);
        if packed_rows {
            let row_stride = strides[0] as usize;
            return Held::Array {
                array: readonly,
                layout: Layout { width, height, channels, row_stride },
                name,
            };
        }
        let view = readonly.as_array();
        let data = match view.to_shape((height, width, channels)) {
            Ok(v) => v.as_standard_layout().into_owned(),
            Err(e) => return invalid(format!("array cannot be reshaped: {e}")),
        };
        Held::Copied { data, layout: Layout { width, height, channels, row_stride: width * channels }, name }
    }

    /// How errors name this photo: its path, `<N bytes>` or `<array HxWxC>`.
    fn name(&self) -> String {
        match self {
            Held::Path(p) => p.display().to_string(),
            Held::Bytes(_, name) | Held::Buffer(_, name) | Held::Invalid(_, name) => name.clone(),
            Held::Array { name, .. } | Held::Copied { name, .. } => name.clone(),
        }
    }

    /// The engine's view of this photo.
    fn source(&self) -> crate::Result<Source<'_>> {
        match self {
            Held::Path(p) => Ok(Source::Path(p)),
            Held::Bytes(b, name) => Ok(Source::Bytes(b.as_bytes(), name)),
            Held::Buffer(b, name) => Ok(Source::Bytes(b, name)),
            Held::Array { array, layout, name } => {
                // The base pointer of the first row; the view spans the rows from there on.
                let base = array.data() as *const u8;
                let len = layout.row_stride * (layout.height - 1) + layout.width * layout.channels;
                // SAFETY: numpy guarantees that `height` rows `row_stride` bytes apart, each holding
                // `width * channels` bytes, lie inside the array's allocation starting at its data
                // pointer (strides checked positive and packed within rows above). The readonly
                // borrow stays alive as long as `self`, and so the slice does too.
                let data = unsafe { std::slice::from_raw_parts(base, len) };
                view(data, layout, name)
            }
            Held::Copied { data, layout, name } => match data.as_slice() {
                Some(slice) => view(slice, layout, name),
                None => Err(Error::image(name, "array copy is not contiguous")),
            },
            Held::Invalid(e, _) => Err(e.clone()),
        }
    }
}

fn view<'a>(data: &'a [u8], l: &Layout, name: &'a str) -> crate::Result<Source<'a>> {
    let v = ImageView::new(data, l.width, l.height, l.channels, ChannelOrder::Bgr, l.row_stride, name)?;
    Ok(Source::Pixels(v, name))
}

/// (bbox float32[4], score, landmarks float32[5,2], embedding float32[D],
/// crop (sharpness, brightness, contrast, clipped))
type RawFace<'py> = (
    Bound<'py, PyArray1<f32>>,
    f32,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    (f64, f64, f64, f64),
);

/// (bbox float32[4], score, landmarks float32[5,2]): a face found, without its template.
type RawBox<'py> = (Bound<'py, PyArray1<f32>>, f32, Bound<'py, PyArray2<f32>>);

/// (sharpness, brightness, contrast, clipped) of an aligned crop.
type CropMeasures = (f64, f64, f64, f64);

fn crop_measures(c: CropQuality) -> CropMeasures {
    (f64::from(c.sharpness), f64::from(c.brightness), f64::from(c.contrast), f64::from(c.clipped))
}

fn face_to_py<'py>(py: Python<'py>, face: Face) -> PyResult<RawFace<'py>> {
    let landmarks: Vec<Vec<f32>> = face.landmarks.iter().map(|p| p.to_vec()).collect();
    Ok((
        PyArray1::from_slice(py, &face.bbox),
        face.score,
        PyArray2::from_vec2(py, &landmarks)?,
        PyArray1::from_vec(py, face.embedding),
        crop_measures(face.crop),
    ))
}

/// The compiled face engine behind `facedb.FaceEngine`.
#[pyclass(frozen, module = "facedb._native")]
struct Engine {
    engine: FaceEngine,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        *, pack="buffalo_s", detector=None, recognizer=None, ort_library=None, python=None,
        runtime="auto", openvino_library=None, cache_dir=None,
        det_size=DEFAULT_DET_SIZE as i64, det_threshold=DEFAULT_DET_THRESHOLD, det_square=false,
        coarse_size=DEFAULT_COARSE_SIZE.map(|s| s as i64), coarse_threshold=DEFAULT_COARSE_THRESHOLD,
        nms_threshold=DEFAULT_NMS_THRESHOLD, threads=None, sessions=None,
        max_pixels=DEFAULT_MAX_PIXELS as i64, max_bytes=DEFAULT_MAX_BYTES as i64
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        pack: &str,
        detector: Option<PathBuf>,
        recognizer: Option<PathBuf>,
        ort_library: Option<PathBuf>,
        python: Option<PathBuf>,
        runtime: &str,
        openvino_library: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        det_size: i64,
        det_threshold: f32,
        det_square: bool,
        coarse_size: Option<i64>,
        coarse_threshold: f32,
        nms_threshold: f32,
        threads: Option<i64>,
        sessions: Option<i64>,
        max_pixels: i64,
        max_bytes: i64,
    ) -> PyResult<Self> {
        let config = EngineConfig {
            pack: pack.parse::<Pack>()?,
            models: ModelSources { detector, recognizer, ort_library, openvino_library, python },
            det_size: count("det_size", det_size)?,
            det_threshold,
            det_square,
            coarse_size: coarse_size.map(|n| count("coarse_size", n)).transpose()?,
            coarse_threshold,
            nms_threshold,
            threads: threads.map(|n| count("threads", n)).transpose()?,
            sessions: sessions.map(|n| count("sessions", n)).transpose()?,
            limits: DecodeLimits {
                max_pixels: count("max_pixels", max_pixels)?,
                max_bytes: count("max_bytes", max_bytes)?,
            },
            runtime: RuntimePolicy::parse(runtime)?,
            cache_dir,
        };
        let engine = without_gil(py, || FaceEngine::new(config))?;
        Ok(Engine { engine })
    }

    /// Faces in one photo, sorted by the box's left edge, as tuples.
    fn detect<'py>(&self, py: Python<'py>, image: &Bound<'py, PyAny>) -> PyResult<Vec<RawFace<'py>>> {
        let held = Held::new(image)?;
        let source = held.source()?;
        let faces = without_gil(py, || self.engine.detect_source(&source))?;
        faces.into_iter().map(|f| face_to_py(py, f)).collect()
    }

    /// Faces of every photo, in input order; a failed photo gives its exception instance.
    #[pyo3(signature = (images, workers=0))]
    fn detect_many<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        workers: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut held = Vec::new();
        for item in images.try_iter()? {
            // A photo of the wrong type is the caller's mistake, a TypeError as in `detect`.
            held.push(Held::new(&item?)?);
        }
        let sources: Vec<crate::Result<Source>> = held.iter().map(|h| h.source()).collect();
        let results = without_gil(py, || {
            let ok: Vec<Source> = sources.iter().filter_map(|s| s.as_ref().ok().copied()).collect();
            let mut done = self.engine.detect_many(&ok, workers).into_iter();
            Ok(sources
                .into_iter()
                .map(|s| match s {
                    Ok(_) => done.next().unwrap_or_else(|| Err(Error::model("batch result missing"))),
                    Err(e) => Err(e),
                })
                .collect::<Vec<_>>())
        })?;
        let out = PyList::empty(py);
        for result in results {
            match result {
                Ok(faces) => {
                    let faces: Vec<RawFace> =
                        faces.into_iter().map(|f| face_to_py(py, f)).collect::<PyResult<_>>()?;
                    out.append(faces)?;
                }
                Err(e) => out.append(to_pyerr(py, &e).into_value(py))?,
            }
        }
        Ok(out)
    }

    /// The template of the photo's largest face; NoFaceError when there is none.
    fn embedding<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let held = Held::new(image)?;
        let source = held.source()?;
        let template = without_gil(py, || self.engine.embedding(&source))?;
        Ok(PyArray1::from_vec(py, template))
    }

    /// The faces of one photo without templates: (bbox float32[4], score, landmarks
    /// float32[5,2]) tuples, sorted by the box's left edge.
    fn locate<'py>(&self, py: Python<'py>, image: &Bound<'py, PyAny>) -> PyResult<Vec<RawBox<'py>>> {
        let held = Held::new(image)?;
        let source = held.source()?;
        let found = without_gil(py, || self.engine.locate(&source))?;
        found
            .into_iter()
            .map(|d| {
                let landmarks: Vec<Vec<f32>> = d.landmarks.iter().map(|p| p.to_vec()).collect();
                Ok((PyArray1::from_slice(py, &d.bbox), d.score, PyArray2::from_vec2(py, &landmarks)?))
            })
            .collect()
    }

    /// The aligned crops (float32[N,3,112,112]) of the faces with these landmarks
    /// (float32[N,5,2]) in one photo, and each crop's measures.
    fn align<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        landmarks: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<(Bound<'py, PyArray4<f32>>, Vec<CropMeasures>)> {
        let points = landmarks.as_array();
        if points.ndim() != 3 || points.shape()[1..] != [5, 2] {
            return Err(Error::Config {
                message: format!("landmarks must have shape (N, 5, 2), got {}", shape_text(points.shape())),
            }
            .into());
        }
        let faces: Vec<[[f32; 2]; 5]> =
            points.outer_iter().map(|face| std::array::from_fn(|i| [face[[i, 0]], face[[i, 1]]])).collect();
        let held = Held::new(image)?;
        let source = held.source()?;
        let (crops, measures) = without_gil(py, || self.engine.align(&source, &faces))?;
        Ok((PyArray4::from_owned_array(py, crops), measures.into_iter().map(crop_measures).collect()))
    }

    /// The unit templates (float32[N,D]) of aligned crops (float32[N,3,112,112]), made by
    /// `align` from any number of photos.
    fn embed_aligned<'py>(
        &self,
        py: Python<'py>,
        crops: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let view = crops.as_array();
        let shape = view.shape().to_vec();
        let Ok(crops4) = view.into_dimensionality::<ndarray::Ix4>() else {
            return Err(Error::Config {
                message: format!(
                    "aligned crops must have shape (N, 3, 112, 112), got {}",
                    shape_text(&shape)
                ),
            }
            .into());
        };
        let standard = crops4.as_standard_layout();
        let dim = self.engine.embedding_size();
        let templates = without_gil(py, || self.engine.embed_aligned(standard.view()))?;
        let flat: Vec<f32> = templates.into_iter().flatten().collect();
        let array = ndarray::Array2::from_shape_vec((flat.len() / dim.max(1), dim), flat)
            .map_err(|e| Error::model(format!("templates have the wrong size: {e}")))?;
        Ok(PyArray2::from_owned_array(py, array))
    }

    /// Decodes a photo (path or bytes) into an HxWx3 uint8 RGB array, EXIF orientation applied.
    fn decode<'py>(&self, py: Python<'py>, image: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let held = Held::new(image)?;
        let source = held.source()?;
        let decoded = without_gil(py, || match source {
            Source::Path(p) => self.engine.open(p),
            Source::Bytes(b, name) => self.engine.decode(b, name),
            Source::Pixels(..) => Err(Error::image("<array>", "decode takes a path or bytes, not an array")),
        })?;
        let (h, w) = (decoded.height(), decoded.width());
        let array = Array3::from_shape_vec((h, w, 3), decoded.as_rgb().to_vec())
            .map_err(|e| Error::model(format!("decoded image has the wrong size: {e}")))?;
        Ok(PyArray3::from_owned_array(py, array))
    }

    /// The detector's model file.
    #[getter]
    fn detector_path(&self) -> PathBuf {
        self.engine.detector_path().to_owned()
    }

    /// The recognizer's model file.
    #[getter]
    fn recognizer_path(&self) -> PathBuf {
        self.engine.recognizer_path().to_owned()
    }

    /// The pack whose models and preprocessing this engine runs.
    #[getter]
    fn pack(&self) -> &'static str {
        self.engine.config().pack.name()
    }

    /// Length of the templates.
    #[getter]
    fn embedding_size(&self) -> usize {
        self.engine.embedding_size()
    }

    /// The runtime of each model and why it was chosen: {"detector": (runtime, reason),
    /// "recognizer": (runtime, reason)}.
    #[getter]
    fn runtimes(&self) -> std::collections::BTreeMap<&'static str, (&'static str, String)> {
        self.engine
            .runtimes()
            .into_iter()
            .map(|(model, report)| (model, (report.runtime.name(), report.reason.clone())))
            .collect()
    }

    /// OpenVINO's library, when one was found.
    #[getter]
    fn openvino_library(&self) -> Option<PathBuf> {
        self.engine.config().models.openvino_library.clone()
    }

    /// The ONNX Runtime library in use.
    #[getter]
    fn ort_library(&self) -> Option<PathBuf> {
        self.engine.config().models.ort_library.clone()
    }

    fn __repr__(&self) -> String {
        let c = self.engine.config();
        format!(
            "Engine(detector={:?}, recognizer={:?}, runtime={:?}, det_size={}, det_threshold={}, det_square={}, coarse_size={:?}, threads={:?})",
            self.engine.detector_path(),
            self.engine.recognizer_path(),
            c.runtime.to_string(),
            c.det_size,
            c.det_threshold,
            if c.det_square { "True" } else { "False" },
            c.coarse_size,
            c.threads
        )
    }
}

/// A count from Python as the engine's unsigned type; a negative one is a ConfigError naming
/// the argument (the ranges themselves are `EngineConfig::validate`'s).
fn count<T: TryFrom<i64>>(name: &str, value: i64) -> crate::Result<T> {
    T::try_from(value)
        .map_err(|_| Error::Config { message: format!("{name} must be a positive integer, got {value}") })
}

/// A Python shape as Python prints it: `(3,)`, `(2, 3)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// Cosine similarity of two float32 templates (1-D, one length), from -1 to 1.
#[pyfunction]
fn similarity(a: PyReadonlyArrayDyn<'_, f32>, b: PyReadonlyArrayDyn<'_, f32>) -> PyResult<f64> {
    let (x, y) = (a.as_array(), b.as_array());
    if x.ndim() != 1 || x.shape() != y.shape() {
        return Err(Error::Config {
            message: format!(
                "templates must be 1-D and of one length, got shapes {} and {}",
                shape_text(x.shape()),
                shape_text(y.shape())
            ),
        }
        .into());
    }
    Ok(crate::embed::cosine(&packed(&x), &packed(&y)))
}

/// An array's values as one slice, copied only when the array is not contiguous.
fn packed<'a>(v: &'a ndarray::ArrayViewD<'_, f32>) -> Cow<'a, [f32]> {
    match v.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(v.iter().copied().collect()),
    }
}

/// A 2-D uint8 array whose rows are read in place: C-contiguous, or a ConfigError naming it.
fn code_rows<'py>(name: &str, array: &Bound<'py, PyAny>) -> crate::Result<PyReadonlyArray2<'py, u8>> {
    let wrong = |what: String| Error::Config { message: format!("{name} must be {what}") };
    let Ok(untyped) = array.cast::<PyUntypedArray>() else {
        return Err(wrong("a numpy uint8 array".into()));
    };
    let described = format!("dtype {}, shape {}", untyped.dtype(), shape_text(untyped.shape()));
    let Ok(typed) = untyped.cast::<PyArray2<u8>>() else {
        return Err(wrong(format!("a 2-D uint8 array, got {described}")));
    };
    if !typed.is_c_contiguous() {
        return Err(wrong(format!("C-contiguous (np.ascontiguousarray), got a strided {described}")));
    }
    typed.try_readonly().map_err(|e| wrong(format!("readable, got {e}")))
}

/// Distances int32[q, k] and rows int64[q, k].
type Nearest<'py> = (Bound<'py, PyArray2<i32>>, Bound<'py, PyArray2<i64>>);

/// The k nearest codes of each query by Hamming distance: (distances int32[q, k], rows
/// int64[q, k]), sorted by (distance, row), -1 and 2**31 - 1 where fewer than k codes.
#[pyfunction]
#[pyo3(signature = (codes, queries, k, threads = 0))]
fn knn_hamming<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
    queries: &Bound<'py, PyAny>,
    k: i64,
    threads: i64,
) -> PyResult<Nearest<'py>> {
    let (k, threads): (usize, usize) = (count("k", k)?, count("threads", threads)?);
    let (codes, queries) = (code_rows("codes", codes)?, code_rows("queries", queries)?);
    let (width, query_width) = (codes.shape()[1], queries.shape()[1]);
    if width != query_width {
        return Err(Error::Config {
            message: format!("codes are {width} bytes wide but queries {query_width}"),
        }
        .into());
    }
    let q = queries.shape()[0];
    // C-contiguous, checked by code_rows, so the slices are the rows in order.
    let (code_bytes, query_bytes) =
        (codes.as_slice().map_err(to_config)?, queries.as_slice().map_err(to_config)?);
    let found = without_gil(py, || crate::hamming::knn(code_bytes, query_bytes, width, k, threads))?;
    let distances = PyArray1::from_vec(py, found.distances).reshape([q, k])?;
    let rows = PyArray1::from_vec(py, found.rows).reshape([q, k])?;
    Ok((distances, rows))
}

fn to_config(e: impl std::fmt::Display) -> Error {
    Error::Config { message: e.to_string() }
}

/// How errors name a photo argument: its path, `<N bytes>` or `<array HxWxC>`.
#[pyfunction]
fn photo_name(image: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(Held::new(image)?.name())
}

/// (code, facedb.errors class name) of every kind of engine error, for the tests.
#[pyfunction]
fn error_kinds() -> Vec<(&'static str, &'static str)> {
    Error::one_of_each().iter().map(|e| (e.code(), exception_class(e))).collect()
}

/// The shortest decimal that is this f32, as a Python float: 0.7 rather than 0.699999988.
fn decimal(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(similarity, m)?)?;
    m.add_function(wrap_pyfunction!(photo_name, m)?)?;
    m.add_function(wrap_pyfunction!(error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(knn_hamming, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The engine's defaults, EngineConfig's one copy, for facedb.FaceEngine's signature.
    m.add("PACKS", Pack::ALL.iter().map(|p| p.name()).collect::<Vec<_>>())?;
    // Each pack's detector defaults: (det_threshold, coarse_size, coarse_threshold).
    let defaults = PyDict::new(m.py());
    for pack in Pack::ALL {
        let (det, coarse, coarse_threshold) = pack.detector_defaults();
        defaults.set_item(pack.name(), (decimal(det), coarse, decimal(coarse_threshold)))?;
    }
    m.add("PACK_DEFAULTS", defaults)?;
    m.add("DEFAULT_DET_SIZE", DEFAULT_DET_SIZE)?;
    m.add("DEFAULT_DET_THRESHOLD", decimal(DEFAULT_DET_THRESHOLD))?;
    m.add("DEFAULT_COARSE_SIZE", DEFAULT_COARSE_SIZE)?;
    m.add("DEFAULT_COARSE_THRESHOLD", decimal(DEFAULT_COARSE_THRESHOLD))?;
    m.add("DEFAULT_NMS_THRESHOLD", decimal(DEFAULT_NMS_THRESHOLD))?;
    m.add("DEFAULT_MAX_PIXELS", DEFAULT_MAX_PIXELS)?;
    m.add("DEFAULT_MAX_BYTES", DEFAULT_MAX_BYTES)?;
    let _ = PyTuple::empty(m.py());
    Ok(())
}
