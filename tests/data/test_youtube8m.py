"""YouTube-8M TFRecords: files in the real format (written by the ``tfrecord`` package) read
back exactly, checksums, one-line errors naming the file and record, sharding over DDP ranks ×
DataLoader workers (every record exactly once), frame padding and the training stream."""

import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("tfrecord", reason="the youtube8m extra (pip install 'compactnn[youtube8m]')")

from compactnn.data import DataError  # noqa: E402
from compactnn.data.youtube8m import (  # noqa: E402
    FRAME_INPUT,
    NUM_CLASSES,
    VIDEO_INPUT,
    StreamingData,
    YouTube8MStream,
    count_records,
    dequantize,
    find_tfrecords,
    masked_crc32c,
    parse_frame,
    parse_video,
    read_records,
    write_synthetic_shards,
    write_video_tfrecord,
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("yt8m")
    video = write_synthetic_shards(d / "video", "video", "train", shards=5, videos=7, seed=1)
    frame = write_synthetic_shards(d / "frame", "frame", "train", shards=3, videos=5, seed=2,
                                   frames=(0, 14))
    return d, video, frame


def test_masked_crc_matches_the_reference_values():
    import crc32c
    from tfrecord.writer import TFRecordWriter

    assert crc32c.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    for data in (b"", b"abc", bytes(range(256)) * 3):
        assert struct.pack("<I", masked_crc32c(data)) == TFRecordWriter.masked_crc(data)


def test_dequantize_is_the_starter_codes():
    q = np.array([0, 1, 128, 255], dtype=np.uint8)
    expected = [-2 + 4 / 512, -2 + 4 / 512 + 4 / 255, -2 + 4 / 512 + 128 * 4 / 255,
                2 + 4 / 512]  # Dequantize(q, 2, -2): q * 4/255 + 4/512 - 2
    np.testing.assert_allclose(dequantize(q), expected, rtol=0, atol=1e-6)
    assert dequantize(q).dtype == np.float32


def test_video_records_read_back_exactly(shards):
    d, video, _ = shards
    files = find_tfrecords(d / "video" / "train*.tfrecord")
    assert len(files) == 5 and count_records(files) == 35
    got = {}
    for f in files:
        for payload in read_records(f):
            vid, labels, x = parse_video(payload)
            got[vid] = (labels.tolist(), x)
    assert got.keys() == video.keys()
    for vid, (labels, rgb, audio) in video.items():
        assert got[vid][0] == labels
        np.testing.assert_array_equal(got[vid][1], np.concatenate([rgb, audio]))


def test_the_tfrecord_packages_reader_sees_the_same_records(shards):
    from tfrecord.reader import tfrecord_iterator

    d, _, _ = shards
    for f in find_tfrecords(d / "frame" / "train*.tfrecord"):
        assert [bytes(r) for r in tfrecord_iterator(f)] == list(read_records(f))


def test_frame_records_read_back_exactly_and_batches_pad_with_a_mask(shards):
    d, _, frame = shards
    files = find_tfrecords(d / "frame" / "train*.tfrecord")
    for f in files:
        for payload in read_records(f):
            vid, labels, rgb, audio = parse_frame(payload)
            assert labels.tolist() == frame[vid][0]
            np.testing.assert_array_equal(rgb, frame[vid][1])
            np.testing.assert_array_equal(audio, frame[vid][2])
    max_frames = 9  # some videos are longer (truncated), some shorter (padded), some empty
    stream = YouTube8MStream(files, "frame", 4, max_frames=max_frames)
    rows = [(x, y) for x, y in stream]
    x = torch.cat([r[0] for r in rows])
    y = torch.cat([r[1] for r in rows])
    assert x.shape == (15, max_frames, FRAME_INPUT) and y.shape == (15, NUM_CLASSES)
    order = sorted(frame)  # one pass in file order = sorted ids
    for i, vid in enumerate(order):
        labels, rgb, audio = frame[vid]
        t = min(len(rgb), max_frames)
        assert y[i].nonzero().flatten().tolist() == labels and y.dtype == torch.uint8
        np.testing.assert_array_equal(x[i, :t, :1024].numpy(), dequantize(rgb[:t]))
        np.testing.assert_array_equal(x[i, :t, 1024:1152].numpy(), dequantize(audio[:t]))
        assert (x[i, :t, -1] == 1).all() and (x[i, t:] == 0).all()


# --- errors -------------------------------------------------------------------------------
def _one_line(e):
    return "\n" not in str(e.value)


def _copy(tmp_path, src):
    dst = tmp_path / "bad.tfrecord"
    dst.write_bytes(src.read_bytes())
    return dst


def _offsets(path):
    """Byte offset of each record's header."""
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        out.append(pos)
        pos += 16 + struct.unpack("<Q", data[pos:pos + 8])[0]
    return out


@pytest.mark.parametrize("where,message", [("data", "checksum of the data"),
                                           ("length", "checksum of the length"),
                                           ("data_crc", "checksum of the data")])
def test_a_corrupt_record_names_the_file_and_the_record(shards, tmp_path, where, message):
    d, _, _ = shards
    bad = _copy(tmp_path, d / "video" / "train0002.tfrecord")
    start = _offsets(bad)[3]
    length = struct.unpack("<Q", bad.read_bytes()[start:start + 8])[0]
    pos = {"data": start + 12 + 100, "length": start + 1, "data_crc": start + 12 + length}[where]
    raw = bytearray(bad.read_bytes())
    raw[pos] ^= 0x10
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=f"{bad}: record 3: corrupt .*{message}") as e:
        list(read_records(bad))
    assert _one_line(e)
    stream = YouTube8MStream([str(bad)], "video", 2)  # the stream says so too
    with pytest.raises(DataError, match="record 3: corrupt"):
        list(stream)


@pytest.mark.parametrize("cut", [5, 40, 2])
def test_a_truncated_file_names_the_record(shards, tmp_path, cut):
    d, _, _ = shards
    bad = _copy(tmp_path, d / "video" / "train0001.tfrecord")
    start = _offsets(bad)[6]
    bad.write_bytes(bad.read_bytes()[:start + cut])
    with pytest.raises(DataError, match=f"{bad}: record 6: truncated") as e:
        list(read_records(bad))
    assert _one_line(e)
    with pytest.raises(DataError, match="truncated"):
        count_records([bad])


def test_no_matching_files_and_missing_features_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no TFRecord files match .*train\\*.tfrecord") as e:
        find_tfrecords(tmp_path / "train*.tfrecord")
    assert _one_line(e)
    from tfrecord.writer import TFRecordWriter

    path = tmp_path / "train0.tfrecord"
    w = TFRecordWriter(str(path))
    w.write({"id": (b"x", "byte"), "labels": ([1], "int"), "mean_rgb": ([0.0] * 1024, "float")})
    w.write({"id": (b"y", "byte"), "labels": ([1], "int"), "mean_rgb": ([0.0] * 10, "float"),
             "mean_audio": ([0.0] * 128, "float")})
    w.write({"id": (b"z", "byte"), "labels": ([NUM_CLASSES], "int"),
             "mean_rgb": ([0.0] * 1024, "float"), "mean_audio": ([0.0] * 128, "float")})
    w.close()
    records = list(read_records(path))
    for i, msg in enumerate(["no feature 'mean_audio'", "mean_rgb has 10 values, expected 1024",
                             "labels outside \\[0, 3861\\]"]):
        with pytest.raises(DataError, match=msg) as e:
            parse_video(records[i], f"{path}: record {i}")
        assert _one_line(e) and f"record {i}" in str(e.value)
    with pytest.raises(DataError, match="not a tf.train.SequenceExample|no feature list"):
        parse_frame(records[0], "r")  # a video-level record is no frame-level one
    with pytest.raises(DataError, match="record 0: no feature 'mean_audio'"):
        list(YouTube8MStream([str(path)], "video", 4))


def test_a_video_level_model_input_is_1152_floats(tmp_path):
    write_video_tfrecord(tmp_path / "v.tfrecord", ["a"], [[3]], np.ones((1, 1024)),
                         np.full((1, 128), 2.0))
    (x, y), = list(YouTube8MStream([str(tmp_path / "v.tfrecord")], "video", 8))
    assert x.shape == (1, VIDEO_INPUT) and x[0, :1024].eq(1).all() and x[0, 1024:].eq(2).all()
    assert y[0].nonzero().flatten().tolist() == [3]


# --- sharding -----------------------------------------------------------------------------
def _ids(stream, shard, shards):
    return [r[0] for r in stream.records(shard, shards)]


@pytest.mark.parametrize("world,workers", [(1, 1), (2, 1), (2, 2), (3, 2), (4, 4)])
def test_every_record_goes_to_exactly_one_rank_and_worker(shards, world, workers):
    d, video, _ = shards
    files = find_tfrecords(d / "video" / "train*.tfrecord")  # 5 files: by file, or by record
    for subset in (files, files[:2]):
        stream = YouTube8MStream(subset, "video", 4)
        seen = Counter()
        for rank in range(world):
            for worker in range(workers):
                seen.update(_ids(stream, rank * workers + worker, world * workers))
        expected = {vid for vid in video if any(vid.startswith(f"train{i:04d}")
                                                for i in range(len(subset)))}
        assert set(seen) == expected and set(seen.values()) == {1}


def test_dataloader_workers_and_ranks_read_disjoint_shares_that_cover_the_set(shards):
    """Through real DataLoader worker processes: rgb[0] is each video's index."""
    d, video, _ = shards
    files = find_tfrecords(d / "video" / "train*.tfrecord")
    seen = []
    for rank in range(2):
        stream = YouTube8MStream(files, "video", 3, rank=rank, world_size=2)
        for x, _ in DataLoader(stream, batch_size=None, num_workers=2):
            seen += x[:, 0].long().tolist()
    assert sorted(seen) == list(range(len(video)))


def test_the_training_stream_yields_the_same_number_of_full_batches_on_every_rank(shards):
    d, video, _ = shards
    data = StreamingData("youtube8m-video", "video",
                         find_tfrecords(d / "video" / "train*.tfrecord"),
                         find_tfrecords(d / "video" / "train000[01].tfrecord"), source=str(d))
    assert data.num_train == len(video) == 35
    counts = []
    for rank in range(3):
        loaders = data.loaders(6, 8, seed=0, rank=rank, world_size=3, num_workers=2)
        train = loaders["train"]
        assert len(train) == 6  # ceil(35 / 6) steps per epoch on every rank
        for _epoch in range(2):
            batches = list(train)
            counts.append(len(batches))
            assert all(x.shape == (2, VIDEO_INPUT) for x, _ in batches)  # 6 / 3 ranks
    assert counts == [6] * 6
    # a global batch the ranks cannot share equally would make the schedule's count wrong
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        data.loaders(7, 8, seed=0, rank=0, world_size=3)
    # one pass of a single process: shuffled, but each record once while the pass lasts
    stream = YouTube8MStream(data.train_files, "video", 5, steps=7, seed=3, shuffle_buffer=8)
    torch.manual_seed(0)
    first = torch.cat([x[:, 0] for x, _ in stream]).long().tolist()
    assert len(first) == 35 and sorted(first) == list(range(35)) and first != sorted(first)
    torch.manual_seed(1)
    again = torch.cat([x[:, 0] for x, _ in stream]).long().tolist()
    assert again != first and sorted(again) == sorted(first)  # another order per pass


def test_a_reader_without_records_is_an_error(tmp_path):
    write_video_tfrecord(tmp_path / "train0.tfrecord", ["a"], [[1]], np.zeros((1, 1024)),
                         np.zeros((1, 128)))
    stream = YouTube8MStream([str(tmp_path / "train0.tfrecord")], "video", 1, rank=1,
                             world_size=2, steps=1)
    with pytest.raises(DataError, match="has no records"):
        list(stream)


@pytest.mark.parametrize("world,workers", [(1, 0), (1, 2), (2, 3)])
def test_a_training_pass_resumes_mid_epoch_with_the_rest_of_the_same_batches(shards, world,
                                                                             workers):
    """A checkpoint mid-epoch (``fit`` saves ``loader.sampler.state_dict()``) resumes the pass
    in progress at the next batch: not from the stream's start, not a new shuffle."""
    d, video, _ = shards
    files = find_tfrecords(d / "video" / "train*.tfrecord")
    data = StreamingData("youtube8m-video", "video", files, files[:1], source=str(d))

    def ids(loader):
        return [x[:, 0].long().tolist() for x, _ in loader]

    for rank in range(world):
        kw = dict(seed=5, rank=rank, world_size=world, num_workers=workers)
        full = data.loaders(4 * world, 8, **kw)["train"]
        epochs = [ids(full) for _ in range(3)]
        assert epochs[0] != epochs[1]  # a new order every pass
        for done in (1, 4, len(full) - 1):
            torch.manual_seed(123)  # the order does not depend on torch's RNG
            run = data.loaders(4 * world, 8, **kw)["train"]
            assert ids(run) == epochs[0]
            state = run.sampler.state_dict()  # mid-epoch 2 after `done` batches
            resumed = data.loaders(4 * world, 8, **kw)["train"]
            resumed.sampler.resume({"pass": state["pass"] + 1}, done)
            assert ids(resumed) == epochs[1][done:]
            assert ids(resumed) == epochs[2]  # and the next epoch follows
            between = data.loaders(4 * world, 8, **kw)["train"]  # an end-of-epoch checkpoint
            between.sampler.resume(state, 0)
            assert ids(between) == epochs[1]


def test_counting_names_the_record_of_its_file_and_refuses_a_non_tfrecord_file(shards,
                                                                               tmp_path):
    d, _, _ = shards
    good = find_tfrecords(d / "video" / "train*.tfrecord")[:2]  # 14 records before the bad one
    bad = _copy(tmp_path, d / "video" / "train0002.tfrecord")
    bad.write_bytes(bad.read_bytes()[:_offsets(bad)[6] + 5])
    with pytest.raises(DataError, match=f"{bad}: record 6: truncated") as e:
        count_records([*good, bad])  # record 6 of its file, not the 20th record counted
    assert _one_line(e)
    text = tmp_path / "train9.tfrecord"
    text.write_text("not a TFRecord file, just some text that is long enough\n")
    with pytest.raises(DataError, match=f"{text}: record 0: corrupt .*not a TFRecord") as e:
        count_records([text])
    assert _one_line(e)


def test_an_error_in_a_dataloader_worker_stays_one_line_naming_file_and_record(shards,
                                                                              tmp_path):
    d, _, _ = shards
    files = find_tfrecords(d / "video" / "train*.tfrecord")
    bad = _copy(tmp_path, Path(files[1]))
    raw = bytearray(bad.read_bytes())
    raw[_offsets(bad)[2] + 12 + 50] ^= 0x10
    bad.write_bytes(bytes(raw))
    data = StreamingData("youtube8m-video", "video", [files[0], str(bad)], [str(bad)],
                         source=str(d))
    for split in ("train", "test"):
        loader = data.loaders(4, 4, seed=0, num_workers=1)[split]
        with pytest.raises(DataError, match=f"^{bad}: record 2: corrupt") as e:
            list(loader)
        assert _one_line(e)
