"""Output of the read commands: for people (tables) and for programs (JSON, CSV).

Every read command takes ``--json`` (one JSON document on stdout, nothing
else on stdout: notes go to stderr); the record lists (trades,
settlements, a slot's clearing) also export to CSV (``--csv FILE``, ``-``
for stdout). Byte strings (account ids, hashes, keys) are written as hex
in both.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from node.errors import ConfigError


def plain(value: Any) -> Any:
    """``value`` with byte strings as hex and tuples as lists: JSON-ready.

    >>> plain({"account": b"\\x01\\xff", "rows": (1, [b""])})
    {'account': '01ff', 'rows': [1, ['']]}
    """
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def print_json(document: Any, out: TextIO | None = None) -> None:
    """Write one JSON document (bytes as hex) and a newline to stdout."""
    stream = out or sys.stdout
    json.dump(plain(document), stream, indent=2, sort_keys=True)
    stream.write("\n")


def note(text: str) -> None:
    """A remark for people: on stderr, so that stdout stays one document."""
    print(text, file=sys.stderr)


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header line of ``columns`` (bytes as hex).

    >>> csv_text([{"a": 1, "b": b"\\x0a"}], ["a", "b"]).splitlines()
    ['a,b', '1,0a']
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: plain(v) for k, v in row.items()})
    return buffer.getvalue()


def write_csv(target: str, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write ``rows`` as CSV to the file ``target`` (``-``: stdout).

    Raises:
        ConfigError: the file cannot be written (with the reason).
    """
    text = csv_text(rows, columns)
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        Path(target).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        msg = f"cannot write CSV to {target}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON document on stdout instead of the table."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (bytes as hex) instead of the table",
    )


def add_csv_flag(parser: argparse.ArgumentParser) -> None:
    """``--csv FILE``: also write the records as CSV (``-``: to stdout, instead of the table)."""
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help="write the records as CSV to FILE, one row each ('-': to stdout, "
        "instead of the table)",
    )


def short(data: bytes, width: int = 12) -> str:
    """The first ``width`` hex digits of an id: enough to tell accounts apart in a table."""
    return data.hex()[:width]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, one line per row, columns as wide as their widest cell.

    >>> print(table(["name", "Wh"], [["alice", 1500], ["bob", -20]]))
    name     Wh
    alice  1500
    bob     -20
    """
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
