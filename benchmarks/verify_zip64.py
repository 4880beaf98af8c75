"""One-off check of the carry-over writer's zip64 path against torch.save (needs ~13 GB disk, ~5 GB RAM).

Records of 4 GiB or more, and records that start past 4 GiB, switch torch's writer (miniz) to zip64
headers, data descriptors and central-directory extras. Tests cannot afford such files, so this
script builds one, upgrades it with the carry-over writer and with ``torch.save``, and compares the
two files byte for byte (the serialization id, which torch only logs, excepted), then loads the
result with ``mmap=True`` and with torch's own offset arithmetic.

    python benchmarks/verify_zip64.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from pytest_ckpt_compat.files import writing

GIB = 1 << 30


def serialization_id_ranges(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of the serialization id record and its two CRC copies."""
    with zipfile.ZipFile(path) as archive:
        (info,) = [i for i in archive.infolist() if i.filename.endswith("/.data/serialization_id")]
    with open(path, "rb") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
        start = info.header_offset + 30 + name_len + extra_len
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    central = size - len(tail) + tail.rfind(b"PK\x01\x02", 0, tail.rfind(info.filename.encode()))
    return [
        (start, start + info.file_size),
        (start + info.file_size + 4, start + info.file_size + 8),
        (central + 16, central + 20),
    ]


def same_bytes(a: Path, b: Path, skip: list[tuple[int, int]]) -> bool:
    if a.stat().st_size != b.stat().st_size:
        print(f"sizes differ: {a.stat().st_size} vs {b.stat().st_size}")
        return False
    chunk = 64 << 20
    with open(a, "rb") as fa, open(b, "rb") as fb:
        pos = 0
        while True:
            x, y = bytearray(fa.read(chunk)), bytearray(fb.read(chunk))
            if not x:
                return True
            for lo, hi in skip:
                lo, hi = max(lo, pos), min(hi, pos + len(x))
                if lo < hi:
                    x[lo - pos : hi - pos] = bytes(hi - lo)
                    y[lo - pos : hi - pos] = bytes(hi - lo)
            if x != y:
                first = next(i for i in range(len(x)) if x[i] != y[i])
                print(f"first difference at byte {pos + first}")
                return False
            pos += len(x)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the ~13 GB of temp files")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ckpt-compat-zip64-", dir=args.workdir))
    try:
        src, fast, ref = work / "src.ckpt", work / "fast.ckpt", work / "ref.ckpt"
        big = torch.zeros(4 * GIB + 100, dtype=torch.uint8)
        big[0], big[-1] = 3, 7
        ckpt = {
            "pytorch-lightning_version": "1.5.10",
            "state_dict": {
                "before": torch.arange(5.0),
                "big": big,
                "after": torch.arange(3.0),
                "empty": torch.zeros(0),
            },
        }
        with open(src, "wb") as fh:  # a file object: archive name "archive", as our writer uses
            torch.save(ckpt, fh)
        del big, ckpt
        loaded = torch.load(src, mmap=True, weights_only=True, map_location="cpu")
        loaded["pytorch-lightning_version"] = "2.6.6"
        loaded["state_dict"]["added"] = torch.ones(4)
        start = time.perf_counter()
        report = writing._save_checkpoint(loaded, fast, source=src)
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        with open(ref, "wb") as fh:
            torch.save(loaded, fh)
        ref_s = time.perf_counter() - start
        print(f"carry-over: {report}  {fast_s:.1f} s;  torch.save: {ref_s:.1f} s")
        ok = report.mode == "carry-over" and report.copied_records == 3
        ok &= same_bytes(fast, ref, serialization_id_ranges(fast) + serialization_id_ranges(ref))
        with zipfile.ZipFile(fast) as archive:
            names = [i.filename for i in archive.infolist()]
        print("records:", names)
        from torch.utils.serialization import config

        for calculate in (False, True):
            config.load.calculate_storage_offsets = calculate
            again = torch.load(fast, mmap=True, weights_only=True)
            sd = again["state_dict"]
            ok &= sd["big"].numel() == 4 * GIB + 100 and int(sd["big"][0]) == 3 and int(sd["big"][-1]) == 7
            ok &= torch.equal(sd["after"], torch.arange(3.0)) and torch.equal(sd["added"], torch.ones(4))
            ok &= sd["empty"].numel() == 0 and again["pytorch-lightning_version"] == "2.6.6"
            del again, sd
        config.load.calculate_storage_offsets = False
        print("zip64 carry-over identical to torch.save:", "OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
