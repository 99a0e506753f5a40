"""The service's recognition work: a fixed pool of threads sized to the cores, and the
recognizer run once for the faces of every request that arrived together.

An identify request runs in three steps. Its photo is decoded, its faces found and aligned
on one of the pool's threads; its aligned crops join the batch being collected, which the
batch thread hands to the recognizer when the window closes (``window_ms`` after the first
crops came) or it holds ``max_crops``; with its templates back, the request is answered
(the gallery search) on the pool again. No pool thread waits for a batch, so the pool keeps
detecting the next photos meanwhile, and no more photos are in flight than the pool has
threads: a burst of requests queues instead of thrashing the cores.

A batch that fails is run again one request at a time, so that one bad request gets its
error and the others their answers.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from facedb.engine import AlignedFaces, Face, FaceEngine
from facedb.errors import ConfigError

__all__ = ["DEFAULT_WINDOW_MS", "MAX_CROPS", "Recognition"]

#: How long a batch is held open for more requests after its first one, by default: not at
#: all; a batch then holds every request that queued while the recognizer ran the last one.
DEFAULT_WINDOW_MS = 0.0
#: Most crops in one recognizer batch (the engine's own batch bound).
MAX_CROPS = 32

T = TypeVar("T")


@dataclass
class _Pending:
    """One request's crops, waiting for their templates."""

    aligned: AlignedFaces
    done: Callable[[list[Face] | BaseException], None]


class Recognition:
    """Decoding, detection and the recognizer for the service's requests.

    Args:
        engine: the gallery's engine.
        pool: the threads for decoding, detection and answering (the service's); default: a
            pool of its own, one thread per core, shut down by :meth:`close`.
        window_ms: how long a recognizer batch waits for more requests after its first
            (0: no waiting; the batch holds the requests that queued while the recognizer
            ran the last one).
        max_crops: most faces in one recognizer batch.
    """

    def __init__(
        self,
        engine: FaceEngine,
        *,
        pool: ThreadPoolExecutor | None = None,
        window_ms: float = DEFAULT_WINDOW_MS,
        max_crops: int = MAX_CROPS,
    ) -> None:
        if not 0 <= window_ms <= 1000:
            raise ConfigError(f"the batch window must be between 0 and 1000 ms, got {window_ms}")
        if max_crops < 1:
            raise ConfigError(f"max_crops must be at least 1, got {max_crops}")
        self.engine = engine
        self.window = window_ms / 1000
        self.max_crops = max_crops
        self._own_pool = pool is None
        self.pool = pool or ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="facedb-work")
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._batches, name="facedb-batch", daemon=True)
        self._thread.start()
        #: Recognizer batches run and the crops they held (for the service's figures).
        self.batches = 0
        self.crops = 0

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on the pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    async def faces(self, photo: bytes) -> list[Face]:
        """The faces of an encoded photo with their templates, as ``engine.detect`` gives
        them, the templates made in a batch shared with other requests.

        Raises:
            ImageError: the photo cannot be read.
        """
        aligned = await self.run(self._locate, photo)
        if not aligned.detections:
            return []
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Face]] = loop.create_future()

        def done(result: list[Face] | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(_settle, answer, result)
            except RuntimeError:
                pass  # the event loop is gone (the server stopping): nobody waits any more

        self._queue.put(_Pending(aligned, done))
        return await answer

    def _locate(self, photo: bytes) -> AlignedFaces:
        """Decodes once, finds and aligns the faces (a pool thread)."""
        rgb = self.engine.decode(photo)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        return self.engine.align(bgr, self.engine.locate(bgr))

    def _batches(self) -> None:
        """The batch thread: collects pending requests for up to the window, then runs the
        recognizer once for all of them."""
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            crops = len(first.aligned)
            closes = time.monotonic() + self.window
            stop = False
            while crops < self.max_crops:
                left = closes - time.monotonic()
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                crops += len(item.aligned)
            try:
                self._embed(batch)
            except Exception as e:  # never the end of the batch thread: each request told
                for pending in batch:
                    pending.done(e)
            if stop:
                return

    def _embed(self, batch: list[_Pending]) -> None:
        """Runs the recognizer for a batch and hands each request its faces; a failed batch
        is run again one request at a time, so that only the bad one fails."""
        self.batches += 1
        self.crops += sum(len(p.aligned) for p in batch)
        try:
            results = self.engine.embed_aligned([p.aligned for p in batch])
        except Exception as e:
            if len(batch) == 1:
                batch[0].done(e)
            else:
                for pending in batch:
                    _embed_alone(pending, self.engine)
            return
        for pending, faces in zip(batch, results, strict=True):
            pending.done(faces)

    def close(self) -> None:
        """Finishes the batches under way and stops the threads."""
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._own_pool:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _embed_alone(pending: _Pending, engine: FaceEngine) -> None:
    """Runs one request's crops alone and hands it their faces or its error."""
    try:
        faces = engine.embed_aligned([pending.aligned])[0]
    except Exception as e:  # handed to the request, which raises it in its own handler
        pending.done(e)
    else:
        pending.done(faces)


def _settle(future: asyncio.Future[list[Face]], result: list[Face] | BaseException) -> None:
    """Completes a request's future on its event loop (unless the request went away)."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
