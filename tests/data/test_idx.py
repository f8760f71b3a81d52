"""IDX reader (MNIST / Fashion-MNIST format): decoding, gzip, truncation and bad magic."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from convcoach.data.idx import find_idx, read_idx
from convcoach.errors import ConfigError


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """A hand-written IDX file: 0, 0, dtype code, ndim, big-endian dims, big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


def test_raw_uint8_idx_decodes_to_the_written_array(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(idx_bytes(IMAGES, 0x08))
    out = read_idx(path)
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, IMAGES)


def test_gzip_idx_decodes_to_the_same_array(tmp_path):
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(IMAGES, 0x08)))
    np.testing.assert_array_equal(read_idx(path), IMAGES)


def test_one_dimensional_label_file_decodes(tmp_path):
    labels = np.array([7, 0, 9, 3], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(idx_bytes(labels, 0x08))
    out = read_idx(path)
    assert out.shape == (4,)
    assert out.tolist() == [7, 0, 9, 3]


def test_big_endian_int32_idx_decodes_values(tmp_path):
    values = np.array([[1, -2], [70000, 3]], dtype=">i4")
    path = tmp_path / "ints-idx2"
    path.write_bytes(idx_bytes(values, 0x0C))
    assert read_idx(path).tolist() == [[1, -2], [70000, 3]]


def test_truncated_data_raises_config_error_naming_file(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(idx_bytes(IMAGES, 0x08)[:-5])
    with pytest.raises(ConfigError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message.replace(str(path), "")  # the tmp path itself may say "truncated"
    assert "header promises 24 data bytes, found 19" in message


def test_truncated_header_raises_config_error_naming_file(tmp_path):
    path = tmp_path / "header-only"
    path.write_bytes(idx_bytes(IMAGES, 0x08)[:9])  # magic + one and a bit of three dims
    with pytest.raises(ConfigError, match="truncated IDX header") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_raises_config_error_naming_file_and_truncated(tmp_path):
    path = tmp_path / "images-idx3-ubyte.gz"
    data = gzip.compress(idx_bytes(np.arange(600, dtype=np.uint8) % 251, 0x08))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message.replace(str(path), "")  # the tmp path itself may say "truncated"


def test_bad_magic_number_raises(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ConfigError, match="bad magic number") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_unknown_dtype_code_is_bad_magic(tmp_path):
    path = tmp_path / "bad-dtype"
    path.write_bytes(bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ConfigError, match="bad magic number"):
        read_idx(path)


def test_missing_file_raises_config_error_naming_it(tmp_path):
    path = tmp_path / "absent-idx"
    with pytest.raises(ConfigError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_find_idx_prefers_gzip_then_raw(tmp_path):
    assert find_idx(tmp_path, "stem") is None
    (tmp_path / "stem").write_bytes(b"")
    assert find_idx(tmp_path, "stem") == tmp_path / "stem"
    (tmp_path / "stem.gz").write_bytes(b"")
    assert find_idx(tmp_path, "stem") == tmp_path / "stem.gz"
