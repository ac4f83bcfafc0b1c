"""Untrusted files cost memory in proportion to what they honestly hold: a small file that
claims a big network, hides a compressed bomb, or declares a huge IDX array or picture is
refused before the memory is taken."""

import gzip
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

import engine
from engine import config, datasets, io

# The same allowance as the loader fuzzing (tests/test_io_fuzz_loaders.py): 64 times the
# file's size plus 4 MB for the interpreter's own bookkeeping.
def _peak_within_bound(load, path, errors):
    """Run ``load(path)``, expecting one of ``errors``; returns the message. Fails when
    the traced peak exceeds 64 × the file's size + 4 MB."""
    tracemalloc.start()
    try:
        with pytest.raises(errors) as caught:
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = 64 * path.stat().st_size + 4 * 2**20
    assert peak <= bound, f"{path.name}: peak {peak:,} bytes, bound {bound:,}"
    return str(caught.value)


def _model_members(tmp_path):
    """The members of a small saved model: {name: array}, metadata as a dict."""
    path = engine.Network([4, 3, 2], seed=0).save(tmp_path / "small.npz")
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return arrays, json.loads(str(arrays.pop("metadata")))


def _write_zip(path, arrays, meta, compress=zipfile.ZIP_STORED, extra=()):
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, arr in dict(arrays, metadata=np.array(json.dumps(meta))).items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr))
        for name, data in extra:
            zf.writestr(name, data)
    return path


def test_metadata_claiming_a_big_network_is_refused_before_allocating(tmp_path):
    arrays, meta = _model_members(tmp_path)
    path = _write_zip(tmp_path / "claims.npz", arrays, dict(meta, sizes=[4000, 4000, 2]))
    message = _peak_within_bound(engine.load, path, io.ModelFileError)
    assert "weights_0 should be float64 of shape (4000, 4000); found float64 of shape " \
           "(3, 4)" in message


def test_compressed_arrays_beyond_the_inflation_bound_are_refused(tmp_path):
    arrays, meta = _model_members(tmp_path)
    big = dict(meta, sizes=[1500, 1500, 2])
    zeros = {"weights_0": np.zeros((1500, 1500)), "biases_0": np.zeros((1500, 1)),
             "weights_1": np.zeros((2, 1500)), "biases_1": np.zeros((2, 1))}
    path = _write_zip(tmp_path / "bomb.npz", zeros, big, compress=zipfile.ZIP_DEFLATED)
    message = _peak_within_bound(engine.load, path, io.ModelFileError)
    assert f"more than {config.MODEL_MAX_INFLATION} times the file's size" in message


def test_unexpected_members_are_refused_before_decompression(tmp_path):
    arrays, meta = _model_members(tmp_path)
    path = _write_zip(tmp_path / "junk.npz", dict(arrays, junk=np.zeros(4_000_000)), meta,
                      compress=zipfile.ZIP_DEFLATED)
    # A bound this high lets the junk member pass the inflation check; the name check
    # must still come first.
    config_bound = config.MODEL_MAX_INFLATION
    try:
        config.MODEL_MAX_INFLATION = 10**6
        message = _peak_within_bound(engine.load, path, io.ModelFileError)
    finally:
        config.MODEL_MAX_INFLATION = config_bound
    assert "unexpected: ['junk']" in message


def test_a_member_that_is_not_an_array_is_a_model_file_error(tmp_path):
    arrays, meta = _model_members(tmp_path)
    path = _write_zip(tmp_path / "notes.npz", arrays, meta, extra=[("notes.txt", b"hello")])
    with pytest.raises(io.ModelFileError, match="member 'notes.txt' is not a .npy array"):
        engine.load(path)


def test_a_member_whose_header_disagrees_with_its_size_is_refused(tmp_path):
    arrays, meta = _model_members(tmp_path)
    path = _write_zip(tmp_path / "short.npz", {k: v for k, v in arrays.items()
                                               if k != "weights_0"}, meta)
    with zipfile.ZipFile(path, "a") as zf, zf.open("weights_0.npy", "w") as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f8", "fortran_order": False, "shape": (3, 4)})
        member.write(np.zeros(9).tobytes())  # the data of (3, 3), not (3, 4)
    with pytest.raises(io.ModelFileError, match=r"weights_0 declares shape \(3, 4\) of "
                                                r"float64, but its member holds 72 bytes"):
        engine.load(path)


def test_gzipped_idx_bomb_is_refused_before_it_is_read(tmp_path):
    n = 30_000  # 23.5 MB of zero images in a .gz of about 23 KB
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(n * 784), compresslevel=9))
    message = _peak_within_bound(datasets.read_idx, path, datasets.DataFormatError)
    assert "decompression bomb" in message


def test_idx_items_of_the_wrong_shape_are_refused_from_the_header(tmp_path):
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (2, 300, 300))
    path = tmp_path / "wide-idx3-ubyte"
    path.write_bytes(header + bytes(2 * 300 * 300))
    message = _peak_within_bound(
        lambda p: datasets.read_idx(p, magic=0x803, item_shape=(28, 28)), path,
        datasets.DataFormatError)
    assert "declares items of 300×300; expected 28×28" in message


def test_a_huge_digit_picture_is_refused_before_decoding(tmp_path):
    from PIL import Image

    side = int(np.sqrt(config.IMAGE_MAX_PIXELS)) + 100
    picture = Image.new("L", (side, side), 255)
    picture.paste(0, (side // 3, side // 3, 2 * side // 3, 2 * side // 3))  # a blot of ink
    path = tmp_path / "huge.png"
    picture.save(path)
    del picture
    message = _peak_within_bound(datasets.read_digit_image, path, datasets.DataFormatError)
    assert f"{side} × {side} pixels is more than a digit picture needs" in message
