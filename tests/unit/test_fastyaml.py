"""The fast YAML writer writes exactly what PyYAML writes, or hands the document back to PyYAML."""

from __future__ import annotations

import random

import yaml

from generator import fastyaml
from generator.loader import load_site_file
from generator.render import render_base, render_fleet, render_site
from generator.yamlio import _Dumper, dump
from tests.helpers import PROJECT

HOSTILE = [
    "", " ", "yes", "no", "on", "off", "true", "False", "null", "~", "NULL", "1", "-1", "0o17", "0x1F", "1_000",
    "1e3", ".5", ".inf", "-.inf", ".nan", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "12:30", "=", "<<",
    "- a", "-", "--", "---", "...", "? x", "a: b", "a:b", "a #b", "#x", "x#", "&a", "*a", "!t", "%p", "@x", "`x",
    "|", ">", "'q'", '"d"', "{a}", "[a]", "a, b", " lead", "trail ", "two  spaces", "tab\there", "é ü 漢", "\x07bell",
    "multi\nline", "multi\nline\n", "trailing\n\n", "\nlead break", " indented\nliteral\n", "a\n\nb\n", "a\r\nb",
    "Yes", "y", "N", "0b101", "0755", "1.5", "1.5e3", "1.", "0.", "1_2", "12-34", "v1.2.3", "a-", "a.", "a/", "NaN",
    "12:30:00", "1:2", "a:", "http://x", "a@b", "a=b", "+1", "1+1", "a,b", "1,000",
    "x" * 950, " ".join(["word"] * 300), "line\u2028sep", "wide\u00a0space", "emoji 🙂", "\ufeffbom",
]


def _reference(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def _same(data: object) -> bool:
    fast = fastyaml.dump(data)
    assert fast is None or fast == _reference(data), (data, fast, _reference(data))
    return fast is not None


def test_every_rendered_file_is_written_the_fast_way_and_identically() -> None:
    site = load_site_file(PROJECT / "sites/prod/site.yaml")
    files = {**render_base(), **render_site("prod", site), **render_fleet({"prod": site})}
    docs = [d for data in files.values() for d in yaml.safe_load_all(data) if d is not None]
    assert len(docs) > 30
    assert all(_same(d) for d in docs)  # none falls back: the speed is real for the generator's own output


def test_hostile_scalars_as_keys_values_and_items() -> None:
    covered = 0
    for text in HOSTILE:
        for data in ({"k": text}, {text or "empty": 1}, {"list": [text, {"k": text}, [text]]}, {"n": {"deep": [[text]]}}):
            covered += _same(data)
    assert covered > len(HOSTILE) * 2  # most are written the fast way; the rest fall back, never differ


def test_random_documents() -> None:
    rng = random.Random(13)
    scalars = [*HOSTILE, 0, 1, -7, 3.5, 1e20, float("inf"), True, False, None, 2**70]

    def make(depth: int) -> object:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice(scalars)
        if roll < 0.7:
            return {rng.choice(["a", "b-c", "d.e/f", "on", "x y"]) + str(i): make(depth + 1) for i in range(rng.randint(0, 4))}
        return [make(depth + 1) for _ in range(rng.randint(0, 4))]

    for _ in range(400):
        _same({"root": make(0)})


def test_plain_looking_text_is_written_as_pyyaml_writes_it() -> None:
    """The fast path for text without indicators or spaces: whatever the resolver reads back as a number, a
    boolean, null or a date is still quoted, as PyYAML quotes it."""
    rng = random.Random(7)
    alphabet = "aeinorstuyYNTF0123456789_./-xXbBoO:@=+,"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        assert _same({text: text, "l": [text]}) or not text[0].isalnum()


def test_dump_uses_it_and_falls_back() -> None:
    assert dump({"a": [1, {"b": "c"}]}) == "a:\n  - 1\n  - b: c\n"
    assert dump({"a": "needs \"double\" \x07 quotes"}) == _reference({"a": "needs \"double\" \x07 quotes"})
    assert fastyaml.dump({"a": "\x07"}) is None
