#!/usr/bin/env python3
"""Benchmark: render N sites, re-render with no change, validate; compare with plain kustomize.

Prints wall time per phase and the number of files written by the no-op re-render (must be 0).
Usage: .venv/bin/python scripts/bench_render.py [N ...]   (default: 1 50 200)
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from generator.tools import require  # noqa: E402


def fingerprint(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for rel in ("base", "overlays", "deploy", "kustomization.yaml"):
        base = root / rel
        files = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for path in files:
            out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def bench(count: int) -> dict[str, float | int]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-{count}-"))
    try:
        prod = (PROJECT / "sites/prod/site.yaml").read_text()
        for i in range(count):
            site = root / "sites" / f"site{i:03d}"
            site.mkdir(parents=True)
            (site / "site.yaml").write_text(prod.replace("example.com", f"s{i}.example.com"))
        gen = [sys.executable, "-m", "generator"]
        render = timed([*gen, "render", "--all", "--no-validate"], root)
        before = fingerprint(root)
        rerender = timed([*gen, "render", "--all", "--no-validate"], root)
        after = fingerprint(root)
        written = sum(1 for p in after if after[p] != before.get(p))
        validate = timed([*gen, "validate", "--all"], root)
        kubectl = str(require("kubectl"))
        overlays = sorted((root / "overlays").iterdir())
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda d: subprocess.run([kubectl, "kustomize", str(d)], check=True, capture_output=True),
                          overlays))
        kustomize = time.perf_counter() - start
        return {"sites": count, "files": len(after), "render_s": render, "noop_rerender_s": rerender,
                "noop_files_written": written, "validate_s": validate, "plain_kustomize_overlays_s": kustomize}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    counts = [int(a) for a in sys.argv[1:]] or [1, 50, 200]
    print(f"{'sites':>5} {'files':>6} {'render':>8} {'no-op':>8} {'written':>7} {'validate':>9} {'kustomize':>10}")
    failed = False
    for count in counts:
        r = bench(count)
        print(f"{r['sites']:>5} {r['files']:>6} {r['render_s']:>7.2f}s {r['noop_rerender_s']:>7.2f}s "
              f"{r['noop_files_written']:>7} {r['validate_s']:>8.2f}s {r['plain_kustomize_overlays_s']:>9.2f}s")
        failed |= r["noop_files_written"] != 0
    print("validate = kustomize build of every overlay and deploy dir + one strict kubeconform run; "
          "kustomize = plain `kubectl kustomize` of the overlays only (4 in parallel)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
