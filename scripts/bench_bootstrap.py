#!/usr/bin/env python3
"""Benchmark: `generator bootstrap` first run and no-op rerun against local real servers.

Starts Keycloak, PostgreSQL and SeaweedFS on 127.0.0.1 (tests/servers.py), creates a realm and an
admin user, then times `secrets init`, the first bootstrap, two no-op reruns and a dry run.
Usage: .venv/bin/python scripts/bench_bootstrap.py   (after `make setup-servers`)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.helpers import admin_env, build_file_tree, create_realm, generator, local_site  # noqa: E402
from tests.keys import age_key, sealing_pair, sops_rules  # noqa: E402
from tests.servers import KeycloakServer, PostgresServer, SeaweedServer  # noqa: E402


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-bootstrap-"))
    try:
        started = time.perf_counter()
        with KeycloakServer(work / "kc") as kc, PostgresServer(work / "pg") as pg, SeaweedServer(work / "s3") as s3:
            print(f"servers up in {time.perf_counter() - started:.1f}s (keycloak {kc.startup_seconds:.1f}s)")
            create_realm(kc, "thinkube", {"admin": None})
            root = work / "repo"
            key = age_key()
            cert, _ = sealing_pair(work / "keys")
            build_file_tree(root, {"sites/bench/site.yaml": local_site(kc, pg, s3, realm="thinkube"),
                                   ".sops.yaml": sops_rules([key.recipient])})
            shutil.copy(cert, root / "sites/bench/sealing-cert.pem")
            env = {"SOPS_AGE_KEY": key.identity, **admin_env(kc, pg, s3)}
            phases = [("secrets init", ("secrets", "init", "--site", "bench")),
                      ("bootstrap --dry-run (fresh)", ("bootstrap", "--site", "bench", "--dry-run")),
                      ("bootstrap (first run)", ("bootstrap", "--site", "bench")),
                      ("bootstrap (no-op rerun)", ("bootstrap", "--site", "bench")),
                      ("bootstrap (no-op rerun)", ("bootstrap", "--site", "bench")),
                      ("render (seals 7 keys)", ("render", "--site", "bench", "--no-validate"))]
            for label, args in phases:
                start = time.perf_counter()
                result = generator(root, *args, env=env)
                elapsed = time.perf_counter() - start
                last = result.out.strip().splitlines()[-1] if result.out.strip() else result.err.strip()
                print(f"{label:<30} {elapsed:6.2f}s  exit {result.code}  {last}")
                if result.code != 0:
                    print(result.text)
                    return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
