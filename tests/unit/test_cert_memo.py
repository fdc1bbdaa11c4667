"""A certificate's parse is remembered by the sha256 of its bytes; the expiry is still checked on every load."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

from generator.errors import UsageError
from generator.secrets.cert import check_validity, load_cert, parse_cert
from tests.keys import sealing_pair


def _memo(root: Path, cert: Path) -> Path:
    return root / ".generator/cache/certs" / f"{hashlib.sha256(cert.read_bytes()).hexdigest()}.json"


def test_a_remembered_parse_gives_the_same_certificate(tmp_path: Path) -> None:
    cert, _ = sealing_pair(tmp_path / "keys", days=10)
    parsed = parse_cert(cert.read_bytes(), cert, "c.pem")
    assert load_cert(cert, "c.pem", tmp_path) == parsed and not _memo(tmp_path, cert).exists()  # a read writes nothing
    assert load_cert(cert, "c.pem", tmp_path, remember=True) == parsed
    assert json.loads(_memo(tmp_path, cert).read_text())["fingerprint"] == parsed.fingerprint
    remembered = load_cert(cert, "c.pem", tmp_path)
    assert remembered.fingerprint == parsed.fingerprint
    assert remembered.not_after == parsed.not_after.replace(microsecond=0)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=11)
    with pytest.raises(UsageError, match="expired on"):
        check_validity(remembered, now=later)  # the expiry is checked against the day of the load


@pytest.mark.parametrize("memo", ['{"fingerprint": "zz", "notAfter": 1}', "{not json", '["a"]',
                                  '{"fingerprint": "' + "a" * 64 + '", "notAfter": "soon"}',
                                  '{"fingerprint": "' + "a" * 64 + '", "notAfter": 99999999999999999}'])
def test_a_corrupt_memo_is_parsed_again_and_rewritten(tmp_path: Path, memo: str) -> None:
    cert, _ = sealing_pair(tmp_path / "keys")
    parsed = parse_cert(cert.read_bytes(), cert, "c.pem")
    _memo(tmp_path, cert).parent.mkdir(parents=True)
    _memo(tmp_path, cert).write_text(memo)
    assert load_cert(cert, "c.pem", tmp_path, remember=True) == parsed
    assert json.loads(_memo(tmp_path, cert).read_text())["fingerprint"] == parsed.fingerprint


def test_a_private_key_is_refused_even_with_a_memo(tmp_path: Path) -> None:
    _, key = sealing_pair(tmp_path / "keys")
    _memo(tmp_path, key).parent.mkdir(parents=True)
    _memo(tmp_path, key).write_text(json.dumps({"fingerprint": "a" * 64, "notAfter": 4_000_000_000}))
    with pytest.raises(UsageError, match="holds a private key"):
        load_cert(key, "k.pem", tmp_path)
