"""Guest operations as scenario files write them, decoded into ``GuestOp`` objects.

An operation is a one-key mapping: ``- ack: 32``, ``- write: {reg: ISENABLER,
intid: 32}``. A scalar value fills the operation's main field (``ack: 32`` is
``ack: {expect: 32}``); no value (``- wfi:``) takes every default. Three forms
expand at load time: ``for`` (a loop over an INTID range, ``$var`` in the body
replaced by each value), ``repeat`` (the body ``count`` times) and ``call`` (a
template: the scenario's own or config/templates.yaml's). Every error names
the path of the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from vgic_actors.guest import (
    Ack,
    Dir,
    Eoir,
    GuestOp,
    Mmio,
    SetEoiMode,
    SetGroupEnable,
    SetPmr,
    Store,
    WaitFor,
    WaitSet,
)
from vgic_actors.guest.cpuif_ops import (
    AprRead,
    AprWrite,
    Hppir,
    Iar,
    Mask,
    ResetStats,
    Rpr,
    SetBpr,
    Unmask,
    Wfi,
    WfiUntil,
)
from vgic_actors.guest.host import LowerLine
from vgic_actors.guest.its import ItsCommand, SetLpiConfig
from vgic_actors.guest.poll import Poll
from vgic_actors.guest.program import LAST
from vgic_actors.guest.sgi import SendSgi
from vgic_actors.guest.sysreg import READABLE, WRITABLE, IarSpin, IccRead, IccWrite
from vgic_actors.guest.timer import TimerRead, TimerWrite
from vgic_actors.scenario import expr
from vgic_actors.scenario.schema import Base, Byte
from vgic_actors.scenario.source import MISSING, child_path, describe

IntId = Annotated[int, Meta(ge=0, le=0xFFFFFF)]
Group = Literal[0, 1]
GicdReg = Literal["ISPENDR", "ICPENDR", "ISACTIVER", "ICACTIVER", "ISENABLER", "ICENABLER",
                  "IPRIORITYR", "ICFGR", "IGROUPR", "IROUTER", "ITARGETSR", "SGIR", "SPENDSGIR",
                  "CPENDSGIR"]
ItsCmd = Literal["MAPD", "MAPC", "MAPTI", "MAPI", "INT", "INV", "INVALL", "DISCARD", "MOVI",
                 "CLEAR", "SYNC"]
MAX_EXPANDED_OPS = 100_000
MAX_DECODED = 2 * MAX_EXPANDED_OPS
"""Items one list may decode while expanding: loops inside loops are bounded by the work
they do, not only by what they produce (a ``repeat: {count: 0}`` inside a ``for``)."""


class OpError(Exception):
    """A malformed operation: where, what was expected, what was found."""

    def __init__(self, path: str, expected: str, got: str, *, at_key: bool = False) -> None:
        super().__init__(f"{path}: expected {expected}, got {got}")
        self.path, self.expected, self.got, self.at_key = path, expected, got, at_key


# --- the operation specs -------------------------------------------------------------------


class GroupEnableSpec(Base):
    enable: bool = True
    group: Group | None = None


class EoiModeSpec(Base):
    eoimode: Literal[0, 1]


class PmrSpec(Base):
    value: Byte


class BprSpec(Base):
    value: Annotated[int, Meta(ge=0, le=7)]
    group: Group | None = None


class AckSpec(Base):
    expect: IntId | Literal["any"] = "any"
    group: Group | None = None


class IarSpec(Base):
    expect: IntId | Literal["any"] = "any"
    group: Group | None = None
    eret_if_spurious: bool = False


class EoirSpec(Base):
    intid: IntId | Literal["last"] = "last"
    group: Group | None = None


class DirSpec(Base):
    intid: IntId | Literal["last"] = "last"
    from_var: str | None = None


class ReadSpec(Base):
    expect: int | None = None
    group: Group | None = None


class AprSpec(Base):
    group: Group = 1
    n: Annotated[int, Meta(ge=0, le=3)] = 0
    expect: int | None = None


class AprWriteSpec(Base):
    value: Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
    group: Group = 1
    n: Annotated[int, Meta(ge=0, le=3)] = 0


class NoArgs(Base):
    pass


class WfiUntilSpec(Base):
    acks: Annotated[int, Meta(ge=1)]


class StoreSpec(Base):
    var: str
    value: int | Literal["last_ack"] = 0


class WaitSpec(Base):
    var: str
    value: int


class WaitSetSpec(Base):
    var: str


class GicdWriteSpec(Base):
    reg: GicdReg
    intid: IntId
    value: int = 0


class GicdReadSpec(Base):
    reg: GicdReg
    intid: IntId | Literal["last"]
    expect: int | None = None


class SpinIarSpec(Base):
    group: Group = 1
    expect: IntId | Literal["any"] = "any"
    max: Annotated[int, Meta(ge=1, le=100_000)] = 1000


class PollSpec(Base):
    reg: GicdReg
    intid: IntId
    until: int
    max: Annotated[int, Meta(ge=1, le=10_000)] = 100


class IccSpec(Base):
    """``icc: {reg: ICC_..._EL1, value: V}`` writes, ``{reg, expect, mask}`` reads; IAR,
    EOIR and DIR take ``intid``/``expect`` as their own operations do."""

    reg: str
    value: Annotated[int, Meta(ge=0, le=0xFFFF_FFFF)] | None = None
    expect: int | Literal["any"] | None = None
    mask: Annotated[int, Meta(ge=0, le=0xFFFF_FFFF)] = 0xFFFF_FFFF
    intid: IntId | Literal["last"] = "last"


_ICC_ACK = {"ICC_IAR0_EL1": 0, "ICC_IAR1_EL1": 1}
_ICC_EOI = {"ICC_EOIR0_EL1": 0, "ICC_EOIR1_EL1": 1}
ICC_REGS = sorted({*READABLE, *WRITABLE, *_ICC_ACK, *_ICC_EOI, "ICC_DIR_EL1"})


def _icc(arg: Any, path: str) -> GuestOp:
    """Decode ``icc``: a read (``expect``) or write (``value``) of one ICC register."""
    if isinstance(arg, str):
        arg = {"reg": arg}
    spec: IccSpec = convert(arg, IccSpec, path)
    rpath = child_path(path, "reg")
    if spec.reg not in ICC_REGS:
        raise OpError(rpath, "an ICC register (" + ", ".join(ICC_REGS) + ")", repr(spec.reg))
    expect = None if spec.expect == "any" else spec.expect
    intid = _opt(spec.intid)
    if spec.reg in _ICC_ACK:
        return Iar(expect, _ICC_ACK[spec.reg])
    if spec.reg in _ICC_EOI:
        return Eoir(intid, _ICC_EOI[spec.reg])
    if spec.reg == "ICC_DIR_EL1":
        return Dir(intid)
    if spec.value is not None:
        if spec.reg not in WRITABLE:
            raise OpError(rpath, "a writable ICC register (" + ", ".join(WRITABLE) + ")",
                          f"{spec.reg!r} with a value")
        if spec.expect is not None:
            raise OpError(child_path(path, "expect"), "value (a write) or expect (a read), "
                          "not both", "both")
        return IccWrite(spec.reg, spec.value)
    return IccRead(spec.reg, expect, spec.mask)


class TimerSpec(Base):
    ctl: Annotated[int, Meta(ge=0, le=3)] | None = None
    cval: Annotated[int, Meta(ge=0, le=(1 << 63) - 1)] | Literal["now"] | None = None
    delay: Annotated[int, Meta(ge=0, le=1 << 40)] | None = None


def _timer(s: TimerSpec) -> GuestOp:
    if s.cval == "now":
        return TimerWrite(s.ctl, None, 0)
    return TimerWrite(s.ctl, s.cval, s.delay)


class TimerReadSpec(Base):
    expect: Annotated[int, Meta(ge=0, le=7)] | None = None
    wait_istatus: bool = False


class SgiSpec(Base):
    intid: Annotated[int, Meta(ge=0, le=15)]
    targets: list[Annotated[int, Meta(ge=0, le=7)]] = msgspec.field(default_factory=list)
    irm: bool = False


class ItsSpec(Base):
    cmd: ItsCmd
    device: Annotated[int, Meta(ge=0)] = 0
    event: Annotated[int, Meta(ge=0)] = 0
    intid: Annotated[int, Meta(ge=0)] = 0
    collection: Annotated[int, Meta(ge=0)] = 0
    target: Annotated[int, Meta(ge=0, le=7)] = 0
    valid: bool = True
    size: Annotated[int, Meta(ge=1, le=32)] = 16


class LpiConfigSpec(Base):
    intid: Annotated[int, Meta(ge=8192, le=65535)]
    enable: bool = True
    priority: Byte = 0xA0


def _opt(value: int | str) -> int | None:
    return None if isinstance(value, str) else value


@dataclass(frozen=True)
class OpKind:
    """One operation name: its spec, the field a scalar fills, and how to build it."""

    spec: Any
    shorthand: str | None
    build: Callable[[Any], GuestOp]
    intid_field: str | None = None  # checked against the VM's INTIDs at load time
    gicd: bool = False  # the INTID names a GICD/GICR register field
    custom: Callable[[Any, str], GuestOp] | None = None  # decodes the argument itself


OPS: dict[str, OpKind] = {
    "group_enable": OpKind(GroupEnableSpec, "enable",
                           lambda s: SetGroupEnable(group=s.group, enable=s.enable)),
    "eoimode": OpKind(EoiModeSpec, "eoimode", lambda s: SetEoiMode(bool(s.eoimode))),
    "pmr": OpKind(PmrSpec, "value", lambda s: SetPmr(s.value)),
    "bpr": OpKind(BprSpec, "value", lambda s: SetBpr(s.value, s.group)),
    "ack": OpKind(AckSpec, "expect", lambda s: Ack(_opt(s.expect), s.group), "expect"),
    "iar": OpKind(IarSpec, "expect", lambda s: Iar(_opt(s.expect), s.group, s.eret_if_spurious),
                  "expect"),
    "eoir": OpKind(EoirSpec, "intid", lambda s: Eoir(_opt(s.intid), s.group), "intid"),
    "dir": OpKind(DirSpec, "intid", lambda s: Dir(_opt(s.intid), s.from_var), "intid"),
    "hppir": OpKind(ReadSpec, "expect", lambda s: Hppir(s.expect, s.group)),
    "rpr": OpKind(ReadSpec, "expect", lambda s: Rpr(s.expect)),
    "apr": OpKind(AprSpec, "expect", lambda s: AprRead(s.group, s.n, s.expect)),
    "apr_write": OpKind(AprWriteSpec, "value", lambda s: AprWrite(s.group, s.n, s.value)),
    "wfi": OpKind(NoArgs, None, lambda _: Wfi()),
    "wfi_until": OpKind(WfiUntilSpec, "acks", lambda s: WfiUntil(s.acks)),
    "mask": OpKind(NoArgs, None, lambda _: Mask()),
    "reset_stats": OpKind(NoArgs, None, lambda _: ResetStats()),
    "unmask": OpKind(NoArgs, None, lambda _: Unmask()),
    "store": OpKind(StoreSpec, None, lambda s: Store(
        s.var, 0 if s.value == "last_ack" else s.value, last_ack=s.value == "last_ack")),
    "wait": OpKind(WaitSpec, None, lambda s: WaitFor(s.var, s.value)),
    "wait_set": OpKind(WaitSetSpec, "var", lambda s: WaitSet(s.var)),
    "sgi": OpKind(SgiSpec, "intid",
                  lambda s: SendSgi(s.intid, tuple(s.targets), s.irm)),
    "its": OpKind(ItsSpec, "cmd", lambda s: ItsCommand(
        s.cmd, device_id=s.device, event_id=s.event, intid=s.intid, collection=s.collection,
        target=s.target, valid=s.valid, size=s.size)),
    "lpi_config": OpKind(LpiConfigSpec, "intid",
                         lambda s: SetLpiConfig(s.intid, s.enable, s.priority)),
    "write": OpKind(GicdWriteSpec, None,
                    lambda s: Mmio(s.reg, s.intid, write=True, value=s.value), "intid",
                    gicd=True),
    "poll": OpKind(PollSpec, None, lambda s: Poll(s.reg, s.intid, s.until, s.max), "intid",
                   gicd=True),
    "icc": OpKind(NoArgs, "reg", lambda _: Wfi(), custom=_icc),
    "timer": OpKind(TimerSpec, "ctl", _timer),
    "timer_read": OpKind(TimerReadSpec, "expect", lambda s: TimerRead(s.expect, s.wait_istatus)),
    "read": OpKind(GicdReadSpec, None,
                   lambda s: Mmio(s.reg, LAST if s.intid == "last" else s.intid, write=False,
                                  expect=s.expect), "intid", gicd=True),
    "spin_iar": OpKind(SpinIarSpec, "group",
                       lambda s: IarSpin(s.group, _opt(s.expect), s.max)),
    "lower_line": OpKind(NoArgs, None, lambda _: LowerLine()),
}
"""Every operation a guest program may use, by name (docs/scenarios.md lists them)."""


def register_op(name: str, kind: OpKind) -> None:
    """Add an operation (device and host modules register theirs)."""
    if name in OPS or name in _FORMS:
        raise ValueError(f"operation {name!r} is already defined")
    OPS[name] = kind


# --- expansion and decoding ----------------------------------------------------------------


class ForSpec(Base):
    var: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    do: list[Any]
    from_: int | None = msgspec.field(default=None, name="from")
    to: int | None = None
    step: Annotated[int, Meta(ge=1)] = 1
    in_: list[int] | None = msgspec.field(default=None, name="in")


class RepeatSpec(Base):
    count: Annotated[int, Meta(ge=0, le=10_000)]
    do: list[Any]


class CallSpec(Base):
    template: str
    with_: dict[str, Any] = msgspec.field(default_factory=dict, name="with")  # checked by _call


_FORMS = ("for", "repeat", "call")
_VAR = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


class _Work:
    """The items decoded so far while expanding one list of operations."""

    def __init__(self) -> None:
        self.done = 0

    def spend(self, path: str) -> None:
        self.done += 1
        if self.done > MAX_DECODED:
            raise OpError(path, f"at most {MAX_DECODED} operations decoded while expanding "
                          "(loops inside loops?)", "more")


@dataclass(frozen=True)
class DecodedOp:
    """A guest operation with the path it came from (for later semantic errors)."""

    op: GuestOp
    path: str
    intid: int | None
    field: str = "intid"
    gicd: bool = False  # a GICD/GICR register access (INTIDs below 1020 only)


def convert(value: Any, spec: Any, path: str) -> Any:
    """msgspec.convert with errors turned into OpError at the full path."""
    try:
        return msgspec.convert(value, spec)
    except msgspec.ValidationError as exc:
        raise op_error_from_msgspec(str(exc), path, value, spec) from None


def allowed_values(spec: type[Any] | None, rel: str) -> str:
    """What the field at ``rel`` (``.a.b``) of Struct ``spec`` accepts, for error messages."""
    if spec is None:
        return "an allowed value"
    info: Any = msgspec.inspect.type_info(spec)
    for name in re.findall(r"\.([^.\[]+)", rel):
        if not isinstance(info, msgspec.inspect.StructType):
            return "an allowed value"
        info = next((f.type for f in info.fields if f.encode_name == name), None)
    parts: list[str] = []
    for option in _options(info):
        if isinstance(option, msgspec.inspect.LiteralType):
            parts += [repr(v) if isinstance(v, str) else str(v) for v in option.values]
        elif isinstance(option, msgspec.inspect.IntType):
            parts.insert(0, "an integer")
        elif isinstance(option, msgspec.inspect.BoolType):
            parts.insert(0, "true/false")
        elif isinstance(option, msgspec.inspect.StrType):
            parts.insert(0, "text")
    return "one of " + ", ".join(parts) if parts else "an allowed value"


def _options(info: Any) -> list[Any]:
    if isinstance(info, msgspec.inspect.UnionType):
        return [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
    return [info] if info is not None else []


def op_error_from_msgspec(message: str, base: str, value: Any,
                          spec: type[Any] | None = None) -> OpError:
    """Turn msgspec's ``Expected X, got Y - at `$.a`'' into an OpError under ``base``."""
    text, _, at = message.partition(" - at `")
    if at.startswith("key` in `"):  # a mapping key of the wrong type
        rel = at[len("key` in `"):].rstrip("`")[1:]
        return OpError(base + rel, "keys of the right type ("
                       + re.sub(r"^Expected `(.+?)`.*", r"\1", text) + ")", "a key "
                       + re.sub(r".*got `(.+?)`.*", r"of type \1", text))
    rel = at.rstrip("`")[1:] if at else ""
    path = base + rel
    missing = re.match(r"Object missing required field `(.+)`", text)
    if missing:
        return OpError(path, f"field {missing.group(1)!r}", "nothing")
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        return OpError(child_path(path, unknown.group(1)), "one of the known fields",
                       f"unknown field {unknown.group(1)!r}", at_key=True)
    found = _lookup(value, rel)
    if text.startswith("Invalid enum value"):
        return OpError(path, allowed_values(spec, rel), describe(found))
    expected = re.sub(r"^Expected ", "", text.split(", got")[0]).replace("`", "")
    expected = expected.replace(" | null", "").replace("int", "an integer", 1)
    expected = expected.replace("bool", "true or false").replace("str", "text")
    return OpError(path, expected.replace("object", "a mapping").replace("array", "a list"),
                   describe(found))


def _lookup(value: Any, rel: str) -> Any:
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", rel):
        key: Any = part[0] or int(part[1])
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return value


def _substitute(value: Any, env: Mapping[str, int], path: str) -> Any:
    """``$name`` and ``$expr`` values replaced by their integers where every variable they
    use is bound in ``env``; the others stay for an inner ``for`` or template to bind
    (`_unbound` reports what is left at an operation)."""
    if isinstance(value, str):
        if not expr.is_expression(value):
            return value
        name = expr.plain_name(value)
        if name is not None:
            return env.get(name, value)
        try:
            if expr.names(value) - set(env) and expr.names(value):
                return value
            return expr.evaluate(value, env)
        except expr.ExprError as exc:
            raise OpError(path, exc.expected, exc.got) from None
    if isinstance(value, list):
        return [_substitute(v, env, child_path(path, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, env, child_path(path, k)) for k, v in value.items()}
    return value


def _unbound(value: Any, path: str, env: Mapping[str, int]) -> None:
    """An operation's fields hold no ``$`` value left unbound (OpError at its path)."""
    if expr.is_expression(value):
        plain = expr.plain_name(value)
        used = sorted(({plain} if plain is not None else expr.names(value)) - set(env))
        bound = ", ".join(sorted(env)) or "none"
        raise OpError(path, f"a variable bound by an enclosing for or template argument "
                      f"(here: {bound})", f"{used[0]} in {value!r}" if used else repr(value))
    if isinstance(value, list):
        for i, v in enumerate(value):
            _unbound(v, child_path(path, i), env)
    elif isinstance(value, dict):
        for k, v in value.items():
            _unbound(v, child_path(path, k), env)


def decode_ops(items: Any, path: str, templates: Mapping[str, tuple[list[Any], str]],
               env: Mapping[str, int] | None = None, depth: int = 0,
               work: _Work | None = None) -> list[DecodedOp]:
    """Decode a list of operation items at ``path`` (expanding loops and templates)."""
    work = work or _Work()
    if not isinstance(items, list):
        raise OpError(path, "a list of operations", describe(items))
    if depth > 16:
        raise OpError(path, "templates nested at most 16 deep", "deeper nesting (a cycle?)")
    out: list[DecodedOp] = []
    plain = _plain(items)
    for i, item in enumerate(items):
        ipath = child_path(path, i)
        work.spend(ipath)
        if not plain:
            item = _substitute(item, env or {}, ipath)
        if not isinstance(item, dict) or len(item) != 1:
            raise OpError(ipath, "an operation: a mapping with one key such as 'ack: 32'",
                          describe(item) if not isinstance(item, dict)
                          else f"{len(item)} keys")
        ((name, arg),) = item.items()
        apath = child_path(ipath, name)
        if name in _FORMS:
            out += _expand(name, arg, apath, templates, env or {}, depth, work)
        elif name in OPS:
            out.append(_decode_one(OPS[name], arg, apath, env or {}, plain))
        else:
            known = ", ".join(sorted([*OPS, *_FORMS]))
            raise OpError(ipath, f"an operation name ({known})", repr(name))
        if len(out) > MAX_EXPANDED_OPS:
            raise OpError(ipath, f"at most {MAX_EXPANDED_OPS} operations after expansion",
                          "more")
    return out


def _plain(items: Any) -> bool:
    """No ``$`` value and no ``for`` anywhere in ``items`` (the soak's generated programs):
    then substituting, expanding and looking for unbound values would each walk the data
    to return it unchanged. One ``repr`` in C instead; a false alarm takes those walks."""
    text = repr(items)
    return "$" not in text and "'for'" not in text


def _decode_one(kind: OpKind, arg: Any, path: str, env: Mapping[str, int],
                plain: bool = False) -> DecodedOp:
    if kind.custom is not None:
        if not plain:
            arg = _expand_values(arg, path, env)
            _unbound(arg, path, env)
        return DecodedOp(kind.custom(arg, path), path, None)
    if arg is None:
        arg = {}
    elif not isinstance(arg, dict):
        if kind.shorthand is None:
            raise OpError(path, "a mapping of fields", describe(arg))
        arg = {kind.shorthand: arg}
    if not plain:
        arg = _expand_values(arg, path, env)
        _unbound(arg, path, env)
    spec = convert(arg, kind.spec, path)
    intid = getattr(spec, kind.intid_field, None) if kind.intid_field else None
    return DecodedOp(kind.build(spec), path, intid if isinstance(intid, int) else None,
                     kind.intid_field or "intid", kind.gicd)


def _expand(form: str, arg: Any, path: str, templates: Mapping[str, tuple[list[Any], str]],
            env: Mapping[str, int], depth: int, work: _Work) -> list[DecodedOp]:
    if form == "repeat":
        rep: RepeatSpec = convert(arg, RepeatSpec, path)
        body = decode_ops(rep.do, child_path(path, "do"), templates, env, depth + 1, work)
        if len(body) * rep.count > MAX_EXPANDED_OPS:
            raise OpError(path, f"at most {MAX_EXPANDED_OPS} operations after expansion",
                          f"{rep.count} x {len(body)}")
        return body * rep.count
    if form == "call":
        return _call(arg, path, templates, env, depth, work)
    loop: ForSpec = convert(arg, ForSpec, path)
    out: list[DecodedOp] = []
    for value in _loop_values(loop, path):
        out += decode_ops(loop.do, child_path(path, "do"), templates,
                          {**env, loop.var: value}, depth + 1, work)
        if len(out) > MAX_EXPANDED_OPS:
            raise OpError(path, f"at most {MAX_EXPANDED_OPS} operations after expansion",
                          "more")
    return out


def _loop_values(loop: ForSpec, path: str) -> list[int]:
    """The values a ``for`` binds its variable to, in order (bounded)."""
    if (loop.in_ is None) == (loop.from_ is None or loop.to is None):
        raise OpError(path, "either 'in: [values]' or both 'from' and 'to'",
                      "neither" if loop.in_ is None else "both")
    if loop.in_ is not None:
        return loop.in_
    first, last = loop.from_ or 0, loop.to or 0
    if (last - first) // loop.step >= MAX_EXPANDED_OPS:
        raise OpError(child_path(path, "to"), f"a loop of at most {MAX_EXPANDED_OPS} "
                      f"values ((to - from) / step < {MAX_EXPANDED_OPS})", str(last))
    return list(range(first, last + 1, loop.step))


def _expand_values(value: Any, path: str, env: Mapping[str, int]) -> Any:
    """An operation's fields with each ``{for: {...}}`` item of a list replaced by the
    values its ``do`` list gives for each value of its variable (a route table of N
    entries: ``entries: [{for: {var: g, from: 0, to: 31, do: [{gsi: $g, pin: $g}]}}]``);
    at most MAX_EXPANDED_OPS values per list."""
    if isinstance(value, dict):
        return {k: _expand_values(v, child_path(path, k), env) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for i, item in enumerate(value):
        ipath = child_path(path, i)
        if not (isinstance(item, dict) and len(item) == 1 and "for" in item):
            out.append(_expand_values(item, ipath, env))
            continue
        fpath = child_path(ipath, "for")
        loop: ForSpec = convert(item["for"], ForSpec, fpath)
        for x in _loop_values(loop, fpath):
            inner = {**env, loop.var: x}
            dpath = child_path(fpath, "do")
            out += _expand_values(_substitute(loop.do, inner, dpath), dpath, inner)
            if len(out) > MAX_EXPANDED_OPS:
                raise OpError(ipath, f"at most {MAX_EXPANDED_OPS} values after expansion",
                              "more")
    return out


def _call(arg: Any, path: str, templates: Mapping[str, tuple[list[Any], str]],
          env: Mapping[str, int], depth: int, work: _Work) -> list[DecodedOp]:
    """``call``: the template's body with its arguments: each ``with`` key one the body uses
    (``$name``), an integer; every ``$name`` it uses given here or by an enclosing loop."""
    call: CallSpec = convert({"template": arg} if isinstance(arg, str) else arg, CallSpec, path)
    if call.template not in templates:
        known = ", ".join(sorted(templates)) or "none defined"
        raise OpError(child_path(path, "template"), f"a template name ({known})",
                      repr(call.template))
    body, where = templates[call.template]
    params = template_params(body, templates)
    for name, value in call.with_.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise OpError(child_path(child_path(path, "with"), name),
                          f"an integer (argument {name} of {call.template})", describe(value))
    try:  # a template that is itself malformed is reported where it is, not at the call
        decoded = decode_ops(body, where, templates, {**env, **call.with_}, depth + 1, work)
    except OpError as exc:
        if not exc.expected.startswith("a variable bound by"):
            if not where.startswith("$"):  # a built-in template: say where, report here
                raise OpError(path, f"a call that expands cleanly: in {exc.path}, "
                              f"expected {exc.expected}", exc.got) from None
            raise
        decoded = None
    listed = ", ".join(sorted(params)) or "none"
    for name in call.with_:
        apath = child_path(child_path(path, "with"), name)
        if name not in params:
            raise OpError(apath, f"an argument of template {call.template} ({listed})",
                          repr(name), at_key=True)
    missing = sorted(params - set(call.with_) - set(env))
    if missing:
        raise OpError(path, f"argument {missing[0]} of template {call.template} "
                      f"(with: {{{missing[0]}: N}})", "nothing")
    if decoded is None:  # an unbound variable no argument explains: report it in place
        return decode_ops(body, where, templates, {**env, **call.with_}, depth + 1, work)
    return decoded


def template_params(body: Any, templates: Mapping[str, tuple[list[Any], str]],
                    seen: frozenset[str] = frozenset()) -> set[str]:
    """The ``$names`` a template body uses and does not bind itself (``for`` variables),
    including those of the templates it calls without passing them."""
    found: set[str] = set()

    def visit(value: Any, bound: frozenset[str]) -> None:
        if isinstance(value, str):
            m = _VAR.match(value)
            if m and m.group(1) not in bound:
                found.add(m.group(1))
            elif expr.is_expression(value):
                found.update(expr.names(value) - bound)
        elif isinstance(value, list):
            for item in value:
                visit(item, bound)
        elif isinstance(value, dict):
            loop, call = value.get("for"), value.get("call")
            if len(value) == 1 and isinstance(loop, dict):
                visit({k: v for k, v in loop.items() if k != "do"}, bound)
                if isinstance(loop.get("var"), str):  # else malformed: decoding says so
                    visit(loop.get("do"), bound | {loop["var"]})
                return
            if len(value) == 1 and call is not None:
                name = call if isinstance(call, str) else (
                    call.get("template") if isinstance(call, dict) else None)
                given = call.get("with") if isinstance(call, dict) else None
                given = given if isinstance(given, dict) else {}
                if isinstance(name, str) and name in templates and name not in seen:
                    inner = template_params(templates[name][0], templates, seen | {name})
                    found.update(n for n in inner - set(given) if n not in bound)
                visit(list(given.values()), bound)
                return
            for item in value.values():
                visit(item, bound)

    visit(body, frozenset())
    return found
