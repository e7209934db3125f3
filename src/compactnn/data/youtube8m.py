"""YouTube-8M (2018 release) from its TFRecord files, streamed: no TensorFlow, no loading into
memory.

Format (what the dataset's starter code, github google/youtube-8m, reads):

* TFRecord framing, per record: ``uint64 length`` (little-endian), ``uint32 masked_crc32c
  (length bytes)``, ``length`` bytes of data, ``uint32 masked_crc32c(data)``, with
  ``masked(c) = ((c >> 15 | c << 17) + 0xa282ead8) mod 2³²``. Both checksums are verified
  here (the ``tfrecord`` package's reader skips them): a corrupt or truncated record is a
  :class:`~compactnn.data.DataError` naming the file and the record's index.
* Video level: ``tf.train.Example`` with ``id`` (bytes), ``labels`` (int64 list),
  ``mean_rgb`` (1,024 floats), ``mean_audio`` (128 floats); inputs are ``[mean_rgb,
  mean_audio]`` (1,152 floats), used as stored.
* Frame level: ``tf.train.SequenceExample`` with context ``id``, ``labels`` and feature lists
  ``rgb`` (per frame one bytes feature of 1,024 uint8) and ``audio`` (128 uint8), dequantized
  as the starter code's ``Dequantize``: ``q · 4/255 + 4/512 − 2`` (bin centres in [−2, 2]).
  A video's frames are truncated or zero-padded to ``max_frames`` (300, as the starter code's
  ``resize_axis``); the input is ``(max_frames, 1024 + 128 + 1)``: rgb, audio and a last
  column that is 1 on the video's frames and 0 on padding (the models pool over the frames
  it marks; the loop moves one tensor per batch, so the mask travels inside it).
* Targets: multi-hot ``uint8 (N, 3862)`` over the 2018 vocabulary (task ``multilabel``).

Parsing uses the ``tfrecord`` package's protobuf schema (``pip install
'compactnn[youtube8m]'``); :func:`write_video_tfrecord` / :func:`write_frame_tfrecord` write
files in the real format through its writer (tests, benchmarks).

Streaming and sharding (:class:`YouTube8MStream`, an ``IterableDataset`` of whole batches):
the files matching a pattern are sorted; the ``S = world_size × num_workers`` readers of a run
(DDP ranks × DataLoader workers) each get a disjoint share — file ``i`` goes to reader
``i mod S`` when there are at least ``S`` files, else record ``j`` (counted over all files in
order) to reader ``j mod S`` — so one pass reads every record exactly once over all readers.
Training: an epoch is a fixed number of steps, ``ceil(N_train / batch_size)``, the same on
every rank (DDP needs equal step counts); each reader cycles through its share as needed, every
cycle in a new random order (files, then a shuffle buffer), so an epoch reads about every
record once (exactly, when the shares divide evenly). Pass ``p`` of a run (epoch ``p``) has
the same order whatever torch's RNG, so a checkpoint taken mid-epoch resumes the pass in
progress at its next batch (the training loader's ``sampler`` holds the position).
Evaluation: one pass, in order. A worker's :class:`DataError` stays one line.
Data directory: ``DIR`` (or ``DIR/video``, ``DIR/frame``) holding ``train*.tfrecord`` and
``validate*.tfrecord``.
"""

from __future__ import annotations

import glob
import itertools
import math
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .._optional import require
from .idx import DataError

__all__ = ["AUDIO_FEATURES", "FRAME_INPUT", "MAX_FRAMES", "NUM_CLASSES", "RGB_FEATURES",
           "VIDEO_INPUT", "StreamingData", "YouTube8MStream", "count_records", "dequantize",
           "find_tfrecords", "masked_crc32c", "parse_frame", "parse_video", "read_records",
           "shard_of", "write_frame_tfrecord", "write_synthetic_shards", "write_video_tfrecord",
           "youtube8m_data"]

NUM_CLASSES = 3862  # the 2018 vocabulary
RGB_FEATURES, AUDIO_FEATURES = 1024, 128
VIDEO_INPUT = RGB_FEATURES + AUDIO_FEATURES
MAX_FRAMES = 300
FRAME_INPUT = VIDEO_INPUT + 1  # rgb, audio, frame mask
#: videos of the 2018 release (the 2nd YouTube-8M challenge): 3,888,919 in train*.tfrecord,
#: 1,112,356 in validate*.tfrecord (the same videos at both levels)
TRAIN_VIDEOS_2018, VALIDATE_VIDEOS_2018 = 3_888_919, 1_112_356
_WHAT = "YouTube-8M TFRecords"
_LEVELS = ("video", "frame")


def _crc32c():
    return require("crc32c", extra="youtube8m", what=_WHAT).crc32c


def _pb2():
    return require("tfrecord.example_pb2", extra="youtube8m", what=_WHAT)


def masked_crc32c(data: bytes, crc32c=None) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    c = (crc32c or _crc32c())(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path: str | os.PathLike, *, verify: bool = True) -> Iterator[bytes]:
    """The records of one TFRecord file, checksums verified; a truncated or corrupt record is
    a :class:`DataError` naming the file and the record's index (0-based)."""
    crc = _crc32c() if verify else None
    with open(path, "rb") as f:
        i = 0
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise DataError(f"{path}: record {i}: truncated (the file ends inside the "
                                "record's length header)")
            (length,) = struct.unpack("<Q", head[:8])
            (length_crc,) = struct.unpack("<I", head[8:])
            if verify and masked_crc32c(head[:8], crc) != length_crc:
                raise DataError(f"{path}: record {i}: corrupt (checksum of the length header "
                                "does not match)")
            data = f.read(length)
            tail = f.read(4)
            if len(data) < length or len(tail) < 4:
                raise DataError(f"{path}: record {i}: truncated (the file ends inside the "
                                f"record's {length} bytes of data or its checksum)")
            if verify and masked_crc32c(data, crc) != struct.unpack("<I", tail)[0]:
                raise DataError(f"{path}: record {i}: corrupt (checksum of the data does not "
                                "match)")
            yield data
            i += 1


def count_records(paths: Sequence[str | os.PathLike]) -> int:
    """Records in the files, from their length headers (checksums of the headers verified;
    seeks over the data)."""
    crc, total = _crc32c(), 0
    for path in paths:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            pos, i = 0, 0
            while pos < size:
                head = f.read(12)
                if len(head) < 12:
                    raise DataError(f"{path}: record {i}: truncated (the file ends inside the "
                                    "record's length header)")
                if masked_crc32c(head[:8], crc) != struct.unpack("<I", head[8:])[0]:
                    raise DataError(f"{path}: record {i}: corrupt (checksum of the length "
                                    "header does not match; not a TFRecord file?)")
                pos += 16 + struct.unpack("<Q", head[:8])[0]
                if pos > size:
                    raise DataError(f"{path}: record {i}: truncated (the file ends inside the "
                                    "record's data)")
                f.seek(pos)
                i += 1
            total += i
    return total


def dequantize(q: np.ndarray) -> np.ndarray:
    """The starter code's ``Dequantize(q, 2, -2)``: ``q · 4/255 + 4/512 − 2`` (float32)."""
    return q.astype(np.float32) * np.float32(4.0 / 255.0) + np.float32(4.0 / 512.0 - 2.0)


# --- parsing -------------------------------------------------------------------------------
def _feature(features, key: str, kind: str, where: str, level: str):
    if key not in features:
        has = ("id, labels, mean_rgb, mean_audio" if level == "video"
               else "context id, labels and feature lists rgb, audio")
        raise DataError(f"{where}: no feature {key!r} (a {level}-level record has {has})")
    f = features[key]
    if f.WhichOneof("kind") != kind:
        raise DataError(f"{where}: feature {key!r} is a {f.WhichOneof('kind')}, not a {kind}")
    return getattr(f, kind).value


def _labels(values, where: str) -> np.ndarray:
    labels = np.asarray(values, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{where}: labels outside [0, {NUM_CLASSES - 1}] (min {labels.min()}, "
                        f"max {labels.max()})")
    return labels


def parse_video(payload: bytes, where: str = "record") -> tuple[str, np.ndarray, np.ndarray]:
    """A video-level ``Example`` → ``(id, labels int64, inputs float32 (1152,))``."""
    pb = _pb2()
    try:
        ex = pb.Example.FromString(payload)
    except Exception as e:  # protobuf's DecodeError
        raise DataError(f"{where}: not a tf.train.Example ({e})") from None
    feats = ex.features.feature
    vid = _feature(feats, "id", "bytes_list", where, "video")
    labels = _labels(_feature(feats, "labels", "int64_list", where, "video"), where)
    parts = []
    for key, size in (("mean_rgb", RGB_FEATURES), ("mean_audio", AUDIO_FEATURES)):
        v = np.asarray(_feature(feats, key, "float_list", where, "video"), dtype=np.float32)
        if v.shape != (size,):
            raise DataError(f"{where}: {key} has {v.size} values, expected {size}")
        parts.append(v)
    return (vid[0].decode("utf-8", "replace") if vid else ""), labels, np.concatenate(parts)


def parse_frame(payload: bytes, where: str = "record"
                ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """A frame-level ``SequenceExample`` → ``(id, labels, rgb uint8 (T, 1024), audio uint8
    (T, 128))`` (quantized, as stored)."""
    pb = _pb2()
    try:
        ex = pb.SequenceExample.FromString(payload)
    except Exception as e:
        raise DataError(f"{where}: not a tf.train.SequenceExample ({e})") from None
    ctx = ex.context.feature
    vid = _feature(ctx, "id", "bytes_list", where, "frame")
    labels = _labels(_feature(ctx, "labels", "int64_list", where, "frame"), where)
    lists = ex.feature_lists.feature_list
    out = []
    for key, size in (("rgb", RGB_FEATURES), ("audio", AUDIO_FEATURES)):
        if key not in lists:
            raise DataError(f"{where}: no feature list {key!r} (a frame-level record has "
                            "context id, labels and feature lists rgb, audio)")
        frames = []
        for t, f in enumerate(lists[key].feature):
            if f.WhichOneof("kind") != "bytes_list" or len(f.bytes_list.value) != 1 or len(
                    f.bytes_list.value[0]) != size:
                raise DataError(f"{where}: frame {t} of {key!r} is not one bytes feature of "
                                f"{size} bytes")
            frames.append(f.bytes_list.value[0])
        out.append(np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), size))
    if len(out[0]) != len(out[1]):
        raise DataError(f"{where}: {len(out[0])} rgb frames but {len(out[1])} audio frames")
    return (vid[0].decode("utf-8", "replace") if vid else ""), labels, out[0], out[1]


# --- writing (tests, benchmarks) -----------------------------------------------------------
def _writer(path):
    return require("tfrecord.writer", extra="youtube8m", what=_WHAT).TFRecordWriter(str(path))


def write_video_tfrecord(path: str | os.PathLike, ids: Sequence[str],
                         labels: Sequence[Sequence[int]], rgb: np.ndarray,
                         audio: np.ndarray) -> None:
    """A video-level TFRecord file in the real format (through the ``tfrecord`` package)."""
    w = _writer(path)
    try:
        for i, vid in enumerate(ids):
            w.write({"id": (vid.encode(), "byte"), "labels": (list(labels[i]), "int"),
                     "mean_rgb": (np.asarray(rgb[i], np.float32).tolist(), "float"),
                     "mean_audio": (np.asarray(audio[i], np.float32).tolist(), "float")})
    finally:
        w.close()


def write_frame_tfrecord(path: str | os.PathLike, ids: Sequence[str],
                         labels: Sequence[Sequence[int]], rgb: Sequence[np.ndarray],
                         audio: Sequence[np.ndarray]) -> None:
    """A frame-level TFRecord file in the real format: per video, ``rgb[i]`` uint8 ``(T_i,
    1024)`` and ``audio[i]`` uint8 ``(T_i, 128)`` stored one bytes feature per frame."""
    w = _writer(path)
    try:
        for i, vid in enumerate(ids):
            w.write({"id": (vid.encode(), "byte"), "labels": (list(labels[i]), "int")},
                    {"rgb": ([r.tobytes() for r in np.asarray(rgb[i], np.uint8)], "byte"),
                     "audio": ([a.tobytes() for a in np.asarray(audio[i], np.uint8)], "byte")})
    finally:
        w.close()


def write_synthetic_shards(directory: str | os.PathLike, level: str, split: str = "train", *,
                           shards: int = 2, videos: int = 16, seed: int = 0,
                           classes: int = 20, frames: tuple[int, int] = (1, 12)) -> dict:
    """``shards`` files ``<split>NNNN.tfrecord`` of ``videos`` synthetic videos each, in the
    real format of ``level``: 1–3 labels among the first ``classes`` classes, features that
    reveal them (a learnable signal; ``rgb[0]`` is the video's index, so tests can tell
    records apart), frame counts drawn from ``frames`` (inclusive; frame level). Returns
    ``{id: (labels, rgb, audio)}`` as written (frame level: the quantized uint8 frames)."""
    if level not in _LEVELS:
        raise ValueError(f"level must be 'video' or 'frame', got {level!r}")
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict = {}
    for s in range(shards):
        ids, labels, rgbs, audios = [], [], [], []
        for v in range(videos):
            k = s * videos + v
            lab = sorted(set(rng.integers(0, classes, int(rng.integers(1, 4))).tolist()))
            if level == "video":
                rgb = (0.1 * rng.standard_normal(RGB_FEATURES)).astype(np.float32)
                rgb[1:][lab] += 1.0
                rgb[0] = k
                audio = (0.1 * rng.standard_normal(AUDIO_FEATURES)).astype(np.float32)
            else:
                t = int(rng.integers(frames[0], frames[1] + 1))
                rgb = rng.integers(100, 156, (t, RGB_FEATURES), dtype=np.uint8)
                rgb[:, 1:][:, lab] = 230
                rgb[:, 0] = k % 256
                audio = rng.integers(0, 256, (t, AUDIO_FEATURES), dtype=np.uint8)
            vid = f"{split}{s:04d}-{v:04d}"
            ids.append(vid)
            labels.append(lab)
            rgbs.append(rgb)
            audios.append(audio)
            written[vid] = (lab, rgb, audio)
        path = directory / f"{split}{s:04d}.tfrecord"
        if level == "video":
            write_video_tfrecord(path, ids, labels, np.stack(rgbs), np.stack(audios))
        else:
            write_frame_tfrecord(path, ids, labels, rgbs, audios)
    return written


# --- streaming -----------------------------------------------------------------------------
def find_tfrecords(pattern: str | os.PathLike) -> list[str]:
    """The files matching a glob pattern, sorted; none is a :class:`DataError`."""
    files = sorted(p for p in glob.glob(str(pattern)) if os.path.isfile(p))
    if not files:
        raise DataError(f"no TFRecord files match {pattern}")
    return files


def shard_of(num_files: int, num_shards: int) -> str:
    """How :class:`YouTube8MStream` splits: ``"file"`` (whole files) when every reader gets
    one, else ``"record"``."""
    return "file" if num_files >= num_shards else "record"


class YouTube8MStream(IterableDataset):
    """Batches ``(inputs float32, targets uint8 (B, 3862))`` of one level (``"video"``:
    inputs ``(B, 1152)``; ``"frame"``: ``(B, max_frames, 1153)``, see the module docstring),
    read from ``files`` by reader ``rank × num_workers + worker`` of ``world_size ×
    num_workers`` (each reads a disjoint share).

    ``steps`` (training): each rank yields exactly ``steps`` batches per pass (its workers
    split them), cycling through its share as often as needed; every cycle is a permutation
    of the share (files in a random order, records mixed through a buffer of
    ``shuffle_buffer``, drained at the cycle's end), drawn from ``seed``, the reader and a
    per-pass seed (``pass_index``, set by the training DataLoader of
    :meth:`StreamingData.loaders`, which numbers its passes; else the DataLoader's seed in a
    worker, else torch's generator). ``skip``: global batches of the pass not to yield (a
    resume mid-epoch: the pass continues where it stopped). Records left in
    the buffer when a pass ends are skipped in that pass. ``steps=None`` (evaluation): one
    pass over the share in file order."""

    def __init__(self, files: Sequence[str], level: str, batch_size: int, *, rank: int = 0,
                 world_size: int = 1, steps: int | None = None, seed: int = 0,
                 max_frames: int = MAX_FRAMES, shuffle_buffer: int | None = None) -> None:
        if level not in _LEVELS:
            raise ValueError(f"level must be 'video' or 'frame', got {level!r}")
        if batch_size < 1 or max_frames < 1:
            raise ValueError("batch_size and max_frames must be positive")
        self.files, self.level, self.batch_size = list(files), level, batch_size
        self.rank, self.world_size, self.steps, self.seed = rank, world_size, steps, seed
        self.max_frames = max_frames
        self.shuffle_buffer = (shuffle_buffer if shuffle_buffer is not None
                               else (4096 if level == "video" else 256))
        #: set by the training DataLoader (:func:`StreamingData.loaders`): the pass to read
        #: (its shuffle, the same on every rank) and the global batches of it to skip (resume)
        self.pass_index: int | None = None
        self.skip = 0

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("an evaluation stream has no length")
        return self.steps

    def _reader(self) -> tuple[int, int, int, int]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return self.rank * workers + worker, self.world_size * workers, worker, workers

    def records(self, shard: int, num_shards: int, order_seed: int | None = None
                ) -> Iterator[tuple]:
        """Parsed records of reader ``shard`` of ``num_shards`` (one pass); files in sorted
        order, or shuffled with ``order_seed``."""
        parse = parse_video if self.level == "video" else parse_frame
        if shard_of(len(self.files), num_shards) == "file":
            mine = [(i, f) for i, f in enumerate(self.files) if i % num_shards == shard]
            if order_seed is not None:
                perm = np.random.default_rng(order_seed).permutation(len(mine))
                mine = [mine[k] for k in perm]
            for _, path in mine:
                for j, payload in enumerate(read_records(path)):
                    yield parse(payload, f"{path}: record {j}")
        else:
            g = 0
            for path in self.files:
                for j, payload in enumerate(read_records(path)):
                    if g % num_shards == shard:
                        yield parse(payload, f"{path}: record {j}")
                    g += 1

    def _batch(self, items: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
        y = np.zeros((len(items), NUM_CLASSES), dtype=np.uint8)
        for i, it in enumerate(items):
            y[i, it[1]] = 1
        if self.level == "video":
            x = np.stack([it[2] for it in items])
        else:
            x = np.zeros((len(items), self.max_frames, FRAME_INPUT), dtype=np.float32)
            for i, (_, _, rgb, audio) in enumerate(items):
                t = min(len(rgb), self.max_frames)
                x[i, :t, :RGB_FEATURES] = dequantize(rgb[:t])
                x[i, :t, RGB_FEATURES:VIDEO_INPUT] = dequantize(audio[:t])
                x[i, :t, VIDEO_INPUT] = 1.0
        return torch.from_numpy(x), torch.from_numpy(y)

    def __iter__(self):
        shard, shards, worker, workers = self._reader()
        if self.steps is None:  # evaluation: one pass, in order
            items: list[tuple] = []
            for rec in self.records(shard, shards):
                items.append(rec)
                if len(items) == self.batch_size:
                    yield self._batch(items)
                    items = []
            if items:
                yield self._batch(items)
            return
        # a resumed pass: the DataLoader asks worker 0 first, so worker w plays the part of
        # worker (w + skip) mod W of the whole pass (its share, quota and place in the order)
        worker = (worker + self.skip) % workers
        shard = self.rank * workers + worker
        lo, hi = _split(self.steps, worker, workers)
        quota = hi - lo
        skip = _worker_skip(self.skip, worker, workers, self.steps)
        if quota == 0:
            return
        # each pass a fresh order, different per reader (and reproducible from the seed)
        pass_seed = self.pass_index if self.pass_index is not None else self._pass_seed()
        rng = np.random.default_rng([self.seed, shard, pass_seed])
        batch: list[tuple] = []

        def emit(rec):  # add to the batch; a full batch is yielded (or skipped: a resume)
            nonlocal batch, skip
            batch.append(rec)
            if len(batch) == self.batch_size:
                full, batch = batch, []
                if skip:
                    skip -= 1
                    return False
                return self._batch(full)
            return None

        def cycle():  # one pass over the share, permuted through the shuffle buffer
            buf: list[tuple] = []
            seen = 0
            for rec in self.records(shard, shards, order_seed=int(rng.integers(2 ** 63))):
                seen += 1
                buf.append(rec)
                if len(buf) > self.shuffle_buffer:  # a random buffered record goes out
                    k = int(rng.integers(len(buf)))
                    buf[k], buf[-1] = buf[-1], buf[k]
                    yield buf.pop()
            if seen == 0:
                raise DataError(f"reader {shard} of {shards} (rank {self.rank}, worker "
                                f"{worker}) has no records: fewer records than processes x "
                                f"workers in {self.files[0]}...")
            for k in rng.permutation(len(buf)):  # the cycle's end: drain the buffer
                yield buf[k]

        while True:  # cycles over the share until this reader's quota of batches is met
            for rec in cycle():
                out = emit(rec)
                if out is not None:
                    if out is not False:
                        yield out
                    quota -= 1
                    if quota == 0:
                        return

    def _pass_seed(self) -> int:
        """Differs between passes: the DataLoader's per-iteration seed in a worker, else a draw
        from torch's (seeded) generator."""
        info = get_worker_info()
        if info is not None:
            return int(info.seed) % 2 ** 63
        return int(torch.randint(0, 2 ** 62, ()).item())


def _worker_skip(skipped: int, worker: int, workers: int, steps: int) -> int:
    """Of the first ``skipped`` batches a DataLoader yields, those of ``worker``: it takes
    the workers' batches in turn (worker ``g mod W`` gives batch ``g``) until the workers with
    the smaller quota of ``steps`` (:func:`_split`) run out."""
    q = steps // workers
    if skipped <= q * workers:
        return skipped // workers + (worker < skipped % workers)
    return q + (worker < skipped - q * workers)


def _split(n: int, i: int, k: int) -> tuple[int, int]:
    q, r = divmod(n, k)
    lo = i * q + min(i, r)
    return lo, lo + q + (i < r)


# --- the data set runs train on -------------------------------------------------------------
@dataclass
class StreamingData:
    """A streamed data set (what :func:`compactnn.runs.run` trains on instead of an in-memory
    :class:`~compactnn.data.Dataset`): its files, sizes and :meth:`loaders`."""

    name: str
    level: str
    train_files: list[str]
    test_files: list[str]
    source: str
    num_classes: int = NUM_CLASSES
    task: str = "multilabel"
    notes: list[str] = field(default_factory=list)
    max_frames: int = MAX_FRAMES
    augment: None = None
    _num_train: int | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (VIDEO_INPUT,) if self.level == "video" else (self.max_frames, FRAME_INPUT)

    @property
    def in_features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def num_train(self) -> int:
        """Training records (counted from the files' length headers, once)."""
        if self._num_train is None:
            self._num_train = count_records(self.train_files)
        return self._num_train

    def summary(self) -> str:
        return (f"{self.name}: {len(self.train_files)} train files ({self.num_train} records), "
                f"{len(self.test_files)} evaluation files, input {self.input_shape}, "
                f"{self.num_classes} classes (streamed from {self.source})")

    def sizes(self) -> dict:
        return {"train": self.num_train, "train_files": len(self.train_files),
                "test_files": len(self.test_files)}

    def loaders(self, batch_size: int, eval_batch_size: int, seed: int, *, rank: int = 0,
                world_size: int = 1, num_workers: int = 0, pin_memory: bool = False) -> dict:
        """``{"train", "test"}`` DataLoaders for rank ``rank`` of ``world_size``:
        ``batch_size`` is the global batch (each rank reads ``batch_size / world_size``, which
        must be a whole number: the schedule counts examples as steps × ``batch_size``); an
        epoch is ``ceil(records / batch_size)`` steps on every rank. Evaluation: each rank one
        pass over its share."""
        if batch_size % world_size:
            raise ValueError(f"the global batch size ({batch_size}) must be a multiple of the "
                             f"number of processes ({world_size}) for a streamed data set")
        local = batch_size // world_size
        steps = max(1, -(-self.num_train // batch_size))
        kw = dict(rank=rank, world_size=world_size, max_frames=self.max_frames)
        train = YouTube8MStream(self.train_files, self.level, local, steps=steps, seed=seed, **kw)
        test = YouTube8MStream(self.test_files, self.level, max(1, eval_batch_size), **kw)
        dl = dict(batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                  persistent_workers=False)
        return {"train": _TrainLoader(train, **dl), "test": _Loader(test, **dl)}


def _one_line_errors(batches: Iterator) -> Iterator:
    """``batches``, a :class:`DataError` raised in a DataLoader worker re-raised as the
    worker's own one-line message (the DataLoader wraps it in a traceback)."""
    try:
        yield from batches
    except DataError as e:
        lines = str(e).splitlines()
        if len(lines) > 1 and lines[0].startswith("Caught DataError"):
            raise DataError(lines[-1].split("DataError: ", 1)[-1]) from None
        raise


class _Loader(DataLoader):
    """A DataLoader whose workers' :class:`DataError` stay one line (naming file and record)."""

    def __iter__(self):
        return _one_line_errors(super().__iter__())


class _Position:
    """The training loader's resumable position (what ``fit`` checkpoints as the sampler's
    state): the pass in progress; :meth:`resume` replays it without its first batches."""

    def __init__(self, loader: _TrainLoader) -> None:
        self.loader = loader

    def __iter__(self):  # what the DataLoader draws per batch (ignored by an IterableDataset)
        return itertools.repeat(None)

    def state_dict(self) -> dict:
        return {"pass": self.loader.pass_index}

    def resume(self, state: dict, batches_done: int) -> None:
        """Mid-epoch (``batches_done > 0``) the next pass replays pass ``state["pass"]`` from
        batch ``batches_done`` on; else the next pass follows it."""
        p = int(state["pass"])
        self.loader.pass_index, self.loader.skip = (p - 1, batches_done) if batches_done \
            else (p, 0)


class _TrainLoader(_Loader):
    """A DataLoader over a training :class:`YouTube8MStream` that numbers its passes (pass
    ``p`` reads the same order on every rank and in every run with the seed, whatever the
    workers' seeds) and can resume one in the middle: its ``sampler`` is a :class:`_Position`."""

    def __init__(self, stream: YouTube8MStream, **kw) -> None:
        self.pass_index, self.skip = 0, 0
        super().__init__(stream, **kw)
        self._position = _Position(self)

    @property
    def sampler(self):
        return self.__dict__.get("_position") or self.__dict__["_sampler"]

    @sampler.setter
    def sampler(self, value) -> None:  # DataLoader's own (an infinite sampler of None)
        self.__dict__["_sampler"] = value

    def __iter__(self):
        self.pass_index += 1  # before the workers copy the stream
        self.dataset.pass_index, self.dataset.skip = self.pass_index, self.skip
        self.skip = 0
        return super().__iter__()


def _level_dir(data_dir: Path, level: str) -> Path:
    sub = data_dir / level
    return sub if sub.is_dir() else data_dir


def youtube8m_data(name: str, data_dir: str | os.PathLike | None, level: str) -> StreamingData:
    """The streamed data set ``name`` of ``level`` in ``data_dir`` (or ``data_dir/level``):
    ``train*.tfrecord`` for training, ``validate*.tfrecord`` for evaluation."""
    if data_dir is None:
        data_dir = os.environ.get("COMPACTNN_DATA")
        if not data_dir:
            raise DataError(f"{name}: the data cannot be downloaded here: pass --data-dir DIR "
                            "(with train*.tfrecord and validate*.tfrecord, or DIR/"
                            f"{level}/ holding them)")
        data_dir = Path(data_dir) / "youtube8m"
    d = _level_dir(Path(data_dir), level)
    train = find_tfrecords(d / "train*.tfrecord")
    test = find_tfrecords(d / "validate*.tfrecord")
    _pb2(), _crc32c()  # the extra is installed (else a one-line hint, before training)
    return StreamingData(name=name, level=level, train_files=train, test_files=test,
                         source=str(d))
