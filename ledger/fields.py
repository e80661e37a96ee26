"""Field specifications shared by transaction payloads and result records.

A record class lists its fields once, as a tuple of specs; the same tuple
checks the values on construction (so a bad value from the node or from the
wire gives ``BadRecord``), writes them as canonical values, and reads them
back. Keeping one list per class keeps encoder and decoder from drifting.

Each spec has two checks. ``check`` takes what Python code builds (a flag
as a bool, a list field as a tuple or list). ``read`` takes decoded wire
values and accepts only what ``to_value`` writes: one value, one encoding.
A msgpack boolean where a flag's 0 / 1 is meant re-encodes to itself, so
the codec's byte-level canonical check cannot see it; accepting it gave one
order two valid byte strings and two transaction ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from ledger.codec import EncodableValue, Value, is_utf8
from ledger.errors import BadRecord
from ledger.types import HASH_SIZE, I64_MAX, I64_MIN

T = TypeVar("T")


def _bad(owner: str, name: str, want: str, got: object) -> BadRecord:
    shown = repr(got) if not isinstance(got, bytes | str) or len(got) <= 40 else type(got).__name__
    msg = f"{owner}.{name}: expected {want}, found {shown}"
    return BadRecord(msg, expected=want, found=got)


@dataclass(frozen=True, slots=True)
class IntField:
    """An int in [lo, hi] (default: signed 64-bit)."""

    name: str
    lo: int = I64_MIN
    hi: int = I64_MAX

    def check(self, value: object, owner: str) -> object:
        """Return the value if valid, else raise BadRecord."""
        if type(value) is not int or not self.lo <= value <= self.hi:
            raise _bad(owner, self.name, f"an int in [{self.lo}, {self.hi}]", value)
        return value

    read = check  # one form on the wire as in Python: no second check to run

    def to_value(self, value: object) -> EncodableValue:
        """Return the canonical form of a checked value."""
        return cast("int", value)


@dataclass(frozen=True, slots=True)
class BoolField:
    """A flag: a bool in Python, the int 0 or 1 on the wire (booleans are not canonical)."""

    name: str

    def check(self, value: object, owner: str) -> object:
        """Return the value as a bool if it is a bool, 0 or 1, else raise BadRecord."""
        if type(value) is bool:
            return value
        if type(value) is int and value in (0, 1):
            return bool(value)
        raise _bad(owner, self.name, "a bool (0 or 1)", value)

    def read(self, value: object, owner: str) -> object:
        """Return a decoded flag as a bool: only the ints 0 and 1 (a msgpack boolean is refused)."""
        if type(value) is int and value in (0, 1):
            return bool(value)
        raise _bad(owner, self.name, "the int 0 or 1 (a msgpack boolean is not canonical)", value)

    def to_value(self, value: object) -> EncodableValue:
        """Return 0 or 1."""
        return 1 if value else 0


@dataclass(frozen=True, slots=True)
class StrField:
    """A str of at most max_len characters, optionally from a fixed set."""

    name: str
    max_len: int = 64
    choices: frozenset[str] | None = None

    def check(self, value: object, owner: str) -> object:
        """Return the value if valid, else raise BadRecord."""
        checked = self.read(value, owner)
        if not is_utf8(cast("str", checked)):
            raise _bad(owner, self.name, "a string with a UTF-8 encoding", value)
        return checked

    def read(self, value: object, owner: str) -> object:
        """Return a decoded wire value if valid (decoded strs are always valid UTF-8)."""
        if type(value) is not str or len(value) > self.max_len:
            raise _bad(owner, self.name, f"a string of at most {self.max_len} characters", value)
        if self.choices is not None and value not in self.choices:
            raise _bad(owner, self.name, f"one of {sorted(self.choices)}", value)
        return value

    def to_value(self, value: object) -> EncodableValue:
        """Return the canonical form of a checked value."""
        return cast("str", value)


@dataclass(frozen=True, slots=True)
class BytesField:
    """Bytes of exactly ``size`` (default: a 32-byte hash) or, with size None, at most max_len."""

    name: str
    size: int | None = HASH_SIZE
    max_len: int = 1 << 20

    def check(self, value: object, owner: str) -> object:
        """Return the value if valid, else raise BadRecord."""
        if type(value) is not bytes:
            raise _bad(owner, self.name, "bytes", value)
        if self.size is not None and len(value) != self.size:
            raise _bad(owner, self.name, f"{self.size} bytes", f"{len(value)} bytes")
        if len(value) > self.max_len:
            raise _bad(owner, self.name, f"at most {self.max_len} bytes", f"{len(value)} bytes")
        return value

    read = check  # one form on the wire as in Python: no second check to run

    def to_value(self, value: object) -> EncodableValue:
        """Return the canonical form of a checked value."""
        return cast("bytes", value)


@dataclass(frozen=True, slots=True)
class IntListField:
    """A tuple of ints in [lo, hi], with exactly ``size`` items or at most max_len."""

    name: str
    size: int | None = None
    max_len: int = 1024
    lo: int = I64_MIN
    hi: int = I64_MAX

    def check(self, value: object, owner: str) -> object:
        """Return the value as a tuple if valid, else raise BadRecord."""
        want = f"{self.size} ints" if self.size is not None else f"at most {self.max_len} ints"
        if type(value) not in (list, tuple):
            raise _bad(owner, self.name, want, value)
        items = tuple(cast("Sequence[object]", value))
        if (self.size is not None and len(items) != self.size) or len(items) > self.max_len:
            raise _bad(owner, self.name, want, f"{len(items)} items")
        for item in items:
            if type(item) is not int or not self.lo <= item <= self.hi:
                raise _bad(owner, self.name, f"ints in [{self.lo}, {self.hi}]", item)
        return items

    def read(self, value: object, owner: str) -> object:
        """Return a decoded array of ints as a tuple (only an array: ``to_value`` writes one)."""
        if type(value) is not list:
            raise _bad(owner, self.name, "an array of ints", value)
        return self.check(value, owner)

    def to_value(self, value: object) -> EncodableValue:
        """Return the ints as a list."""
        return list(cast("tuple[int, ...]", value))


@dataclass(frozen=True, slots=True)
class SettlementListField:
    """A tuple of ``(account: 32 bytes, energy_wh: int, payment: int)`` triples."""

    name: str
    max_len: int = 100_000

    def check(self, value: object, owner: str) -> object:
        """Return the value as a tuple of tuples if valid, else raise BadRecord."""
        want = "a list of (account: 32 bytes, energy_wh: int, payment: int)"
        if type(value) not in (list, tuple):
            raise _bad(owner, self.name, want, value)
        rows = cast("Sequence[object]", value)
        if len(rows) > self.max_len:
            raise _bad(owner, self.name, f"at most {self.max_len} rows", f"{len(rows)} rows")
        checked = []
        for row in rows:
            if type(row) not in (list, tuple):
                raise _bad(owner, self.name, want, row)
            items = tuple(cast("Sequence[object]", row))
            if (
                len(items) != 3
                or type(items[0]) is not bytes
                or len(items[0]) != HASH_SIZE
                or type(items[1]) is not int
                or type(items[2]) is not int
                or not I64_MIN <= items[1] <= I64_MAX
                or not I64_MIN <= items[2] <= I64_MAX
            ):
                raise _bad(owner, self.name, want, row)
            checked.append(items)
        return tuple(checked)

    def read(self, value: object, owner: str) -> object:
        """Return decoded rows as a tuple of tuples (only arrays: ``to_value`` writes them)."""
        if type(value) is not list or any(type(row) is not list for row in value):
            raise _bad(owner, self.name, "an array of [account, energy_wh, payment] arrays", value)
        return self.check(value, owner)

    def to_value(self, value: object) -> EncodableValue:
        """Return the rows as lists."""
        return [list(row) for row in cast("tuple[tuple[bytes, int, int], ...]", value)]


FieldSpec = IntField | BoolField | StrField | BytesField | IntListField | SettlementListField


def check_fields(record: object, specs: tuple[FieldSpec, ...]) -> None:
    """Check (and normalise) every field of a frozen dataclass; call from ``__post_init__``.

    Raises:
        BadRecord: a field has the wrong type or is out of range.
    """
    owner = type(record).__name__
    for spec in specs:
        value = getattr(record, spec.name)
        checked = spec.check(value, owner)
        if checked is not value:
            object.__setattr__(record, spec.name, checked)


def fields_to_values(record: object, specs: tuple[FieldSpec, ...]) -> list[EncodableValue]:
    """Return a checked record's fields as canonical values, in spec order."""
    return [spec.to_value(getattr(record, spec.name)) for spec in specs]


def compile_checker(specs: tuple[FieldSpec, ...]) -> Callable[[Sequence[Value]], bool]:
    """Return a fast predicate: are these decoded values all valid for ``specs``?

    The audit checks every field of every transaction, and a loop over spec
    objects costs more than the rest of the decoding. This writes the checks
    out as one expression (as ``dataclasses`` does for ``__init__``), from
    the package's own constant specs only. It never raises: False means
    "take the slow path" (``check_values``), which names the bad field. List
    fields always take the slow path. Flags are accepted as the ints 0 / 1
    they are on the wire (``check_values`` turns them into bools).

    >>> check = compile_checker((IntField("n", 0, 9), StrField("s", 3, frozenset({"a"}))))
    >>> check([5, "a"]), check([10, "a"]), check([5, "b"]), check([5])
    (True, False, False, False)
    """
    terms = [f"len(v) == {len(specs)}"]
    constants: dict[str, object] = {}
    for i, spec in enumerate(specs):
        x = f"v[{i}]"
        if isinstance(spec, IntField):
            terms.append(f"type({x}) is int and {spec.lo} <= {x} <= {spec.hi}")
        elif isinstance(spec, StrField):
            terms.append(f"type({x}) is str and len({x}) <= {spec.max_len}")
            if spec.choices is not None:
                constants[f"choices_{i}"] = spec.choices
                terms.append(f"{x} in choices_{i}")
        elif isinstance(spec, BoolField):
            terms.append(f"type({x}) is int and ({x} == 0 or {x} == 1)")
        elif isinstance(spec, BytesField):
            terms.append(f"type({x}) is bytes and len({x}) <= {spec.max_len}")
            if spec.size is not None:
                terms.append(f"len({x}) == {spec.size}")
        else:
            terms.append("False")
    source = "def check(v):\n    return " + " and ".join(f"({term})" for term in terms) + "\n"
    namespace: dict[str, object] = {**constants}
    exec(source, namespace)  # generated from the package's constant specs only
    return cast("Callable[[Sequence[Value]], bool]", namespace["check"])


def check_values(specs: tuple[FieldSpec, ...], values: Sequence[Value], what: str) -> list[object]:
    """Check decoded values against specs (in order) and return them normalised.

    Each value must be exactly what the spec's ``to_value`` writes (see the
    module docstring): re-encoding the record gives the received bytes.

    Raises:
        BadRecord: wrong number of values, or a value of the wrong type or range.
    """
    if len(values) != len(specs):
        msg = f"{what}: expected {len(specs)} fields, found {len(values)}"
        raise BadRecord(msg, expected=len(specs), found=len(values))
    checked = [spec.read(value, what) for spec, value in zip(specs, values, strict=True)]
    return checked


def record_from_values(
    cls: type[T], specs: tuple[FieldSpec, ...], values: Sequence[Value], what: str
) -> T:
    """Build a frozen dataclass ``cls`` from decoded values in spec order.

    Raises:
        BadRecord: wrong number of values, or a value of the wrong type or range.
    """
    return build_checked(cls, specs, check_values(specs, values, what))


def build_checked(cls: type[T], specs: tuple[FieldSpec, ...], checked: Sequence[object]) -> T:
    """Build a frozen dataclass from values already returned by ``check_values``.

    ``__init__`` and ``__post_init__`` are bypassed so that each value is
    checked once (decoding is on the audit's hot path).
    """
    record = cls.__new__(cls)
    for spec, value in zip(specs, checked, strict=True):
        object.__setattr__(record, spec.name, value)
    return record
