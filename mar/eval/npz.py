"""ADM's evaluator format, streamed: an .npz whose ``arr_0`` is uint8 (n, h, w, 3), written and read in row blocks.

An .npz is a zip of .npy files; numpy's format helpers write and read an .npy header, so rows can go into (or come
out of) the zip entry block by block and memory stays flat in n.
"""

import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def write_npz_rows(
    path: str | Path, blocks: Iterable[np.ndarray], count: int, row_shape: tuple, key: str = "arr_0"
) -> Path:
    """Writes ``count`` rows of ``row_shape`` (uint8), given as blocks (b, *row_shape), as ``key`` of an .npz.

    Written to a temporary name and renamed, so a crash never leaves a truncated file under ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
        "fortran_order": False,
        "shape": (count, *row_shape),
    }
    written = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open(f"{key}.npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array_header_1_0(entry, header)  # np.save's own header version
                for block in blocks:
                    block = np.ascontiguousarray(block, dtype=np.uint8)
                    if block.shape[1:] != tuple(row_shape):
                        raise ValueError(f"a block of shape {block.shape} does not hold rows of shape {row_shape}")
                    entry.write(block.tobytes())
                    written += len(block)
        if written != count:
            raise ValueError(f"{written} rows were given for an .npz of {count}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def _read_image_header(entry, path, key: str) -> tuple:
    """The shape (n, h, w, 3) of the .npy stream ``entry`` of uint8 images, left positioned at the first row."""
    major, _ = np.lib.format.read_magic(entry)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(entry)
    if dtype != np.uint8 or fortran or len(shape) != 4 or shape[3] != 3:
        raise ValueError(
            f"{path}: {key} is {dtype} {shape}{' (Fortran order)' if fortran else ''}, not uint8 RGB images; "
            "pass images as ADM's evaluator stores them (uint8, n x h x w x 3)"
        )
    return shape


@contextmanager
def _open_entry(path: str | Path, key: str):
    """The .npy stream of ``key`` inside the .npz at ``path``; ValueError naming the file when it is not there."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not an .npz (not a zip archive); pass one written by np.savez") from None
    with archive:
        if f"{key}.npy" not in archive.namelist():
            names = sorted(name.removesuffix(".npy") for name in archive.namelist())
            raise ValueError(
                f"{path} holds {names}, no {key!r}; pass an .npz whose {key} holds the images (n x h x w x 3)"
            )
        with archive.open(f"{key}.npy") as entry:
            yield entry


def npz_shape(path: str | Path, key: str = "arr_0") -> tuple:
    """The shape (n, h, w, 3) of the images ``key`` in an .npz, read from its header only; ValueError when not images."""
    with _open_entry(path, key) as entry:
        return _read_image_header(entry, path, key)


def read_npz_rows(path: str | Path, batch: int, key: str = "arr_0") -> Iterator[np.ndarray]:
    """The images ``key`` (uint8 (n, h, w, 3)) in blocks (b, h, w, 3) of at most ``batch``, without loading them all."""
    with _open_entry(path, key) as entry:
        shape = _read_image_header(entry, path, key)
        row_bytes = int(np.prod(shape[1:]))
        for start in range(0, shape[0], batch):
            rows = min(batch, shape[0] - start)
            yield np.frombuffer(bytearray(entry.read(rows * row_bytes)), dtype=np.uint8).reshape(
                rows, *shape[1:]
            )  # writable
