"""The control-channel messages of docs/fork-server.md section 2, parsed and formatted.

Pure functions on bytes: no sockets, no processes. A message is one SOCK_SEQPACKET
packet of at most MAX_MESSAGE bytes of UTF-8 text; its first line is the type, every
further line is KEY=VALUE, lines end in "\\n". parse_message() turns a packet into one of
the message classes below or raises ProtocolError naming what is wrong; format_message()
is its inverse and refuses (ValueError) to build a message that parse_message() would
reject. Bytes that are not UTF-8 are not refused (section 2): they come through as
surrogate escapes (errors="surrogateescape"), so an ENV value reaches os.environ as
the bytes memward sent.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Optional, Tuple, Union

PROTOCOL_VERSION = 1
MAX_MESSAGE = 65536             # bytes in one packet, the whole message
MAX_FDS = 1                     # SCM_RIGHTS fds a SPAWN may carry
MAX_ENV = 64                    # ENV lines in one SPAWN
MAX_RUNTIME = 127               # bytes of RUNTIME memward keeps
MAX_TEXT = 255                  # bytes of MESSAGE memward keeps

SLOT_MAX = 4095
GENERATION_MAX = 2**64 - 1      # memward keeps generations in a uint64_t
PID_MIN = 2                     # pid 1 is init (or memward as PID 1): never a worker
PID_MAX = 2**31 - 1             # a positive pid_t
ERRNO_MAX = 4095                # Linux errnos are below 4096 (MAX_ERRNO)

_KEY = re.compile(r"[A-Z0-9_]+")
# ASCII decimal digits, no sign, space or prefix (section 2); leading zeros are digits.
# Not int() alone: it takes "+1", " 1", "1_0" and non-ASCII digits.
_NUMBER = re.compile(r"[0-9]+")


class ProtocolError(ValueError):
    """A malformed message: what was wrong, in words fit for a log line."""


@dataclasses.dataclass(frozen=True)
class Spawn:
    """memward -> template: fork one worker."""
    slot: int
    generation: int
    cgroup: bool                                # a leaf directory fd is attached
    env: Tuple[Tuple[str, str], ...] = ()       # (NAME, VALUE) in the order sent
    place: bool = False                         # memward places the intermediate (PLACE)

    TYPE = "SPAWN"


@dataclasses.dataclass(frozen=True)
class Ready:
    """template -> memward: the application is loaded."""
    protocol: int = PROTOCOL_VERSION
    runtime: Optional[str] = None
    place: bool = False                         # takes SPAWN with PLACE=1

    TYPE = "READY"


@dataclasses.dataclass(frozen=True)
class Spawned:
    """template -> memward: the answer to a SPAWN that worked."""
    slot: int
    generation: int
    pid: int

    TYPE = "SPAWNED"


@dataclasses.dataclass(frozen=True)
class SpawnFailed:
    """template -> memward: the answer to a SPAWN that could not be carried out."""
    slot: int
    generation: int
    errno: int
    message: Optional[str] = None

    TYPE = "SPAWN_FAILED"


@dataclasses.dataclass(frozen=True)
class Place:
    """template -> memward: move `pid` (the intermediate) into the SPAWN's leaf."""
    slot: int
    generation: int
    pid: int

    TYPE = "PLACE"


@dataclasses.dataclass(frozen=True)
class Placed:
    """memward -> template: the answer to a PLACE; errno 0 when the process is in its
    leaf, else why memward could not move it."""
    slot: int
    generation: int
    errno: int = 0

    TYPE = "PLACED"


Message = Union[Spawn, Ready, Spawned, SpawnFailed, Place, Placed]
_TYPES = {cls.TYPE: cls for cls in (Spawn, Ready, Spawned, SpawnFailed, Place, Placed)}


# ------------------------------------------------------------------------ parsing

def _number(fields: Dict[str, str], key: str, low: int, high: int) -> int:
    if key not in fields:
        raise ProtocolError("missing required key %s" % key)
    text = fields[key]
    if not _NUMBER.fullmatch(text):
        raise ProtocolError("%s=%r is not a decimal number" % (key, text[:40]))
    digits = text.lstrip("0") or "0"
    if len(digits) > 20 or not low <= int(digits) <= high:
        raise ProtocolError("%s=%s is out of range %d..%d" % (key, text[:40], low, high))
    return int(digits)


def _env_pair(value: str) -> Tuple[str, str]:
    name, sep, rest = value.partition("=")
    if not sep or not name:
        raise ProtocolError("ENV=%r is not NAME=VALUE" % value[:60])
    return name, rest


# The keys each type defines: these may appear once (ENV repeats); any other key is
# ignored however often it appears, so that later versions can add keys.
_KEYS = {
    "SPAWN": {"SLOT", "GENERATION", "CGROUP", "ENV", "PLACE"},
    "READY": {"PROTOCOL", "RUNTIME", "PLACE"},
    "SPAWNED": {"SLOT", "GENERATION", "PID"},
    "SPAWN_FAILED": {"SLOT", "GENERATION", "ERRNO", "MESSAGE"},
    "PLACE": {"SLOT", "GENERATION", "PID"},
    "PLACED": {"SLOT", "GENERATION", "ERRNO"},
}


def _flag(fields: Dict[str, str], key: str) -> bool:
    """An optional 0/1 key; absent is 0."""
    value = fields.get(key, "0")
    if value not in ("0", "1"):
        raise ProtocolError("%s=%r is neither 0 nor 1" % (key, value[:40]))
    return value == "1"


def parse_message(data: bytes) -> Message:
    """Parses one packet; raises ProtocolError when it is malformed (section 2).

    Malformed: more than MAX_MESSAGE bytes, a NUL byte, an unknown type (the empty
    packet's type is ""), a line without '=' (an empty line too), a key that is not
    [A-Z0-9_]+, a key the type defines appearing twice, more than MAX_ENV ENV lines, a
    missing required key, a value out of range. A last line without "\\n" is
    accepted; unknown keys are ignored; bytes that are not UTF-8 are kept as
    surrogate escapes.
    """
    if len(data) > MAX_MESSAGE:
        raise ProtocolError("message of %d bytes, more than %d" % (len(data), MAX_MESSAGE))
    if b"\0" in data:
        raise ProtocolError("NUL byte at offset %d" % data.index(b"\0"))
    text = data.decode("utf-8", "surrogateescape")
    lines = (text[:-1] if text.endswith("\n") else text).split("\n")
    kind = lines[0]
    cls = _TYPES.get(kind)
    if cls is None:
        raise ProtocolError("empty message" if not text
                            else "unknown message type %r" % kind[:40])

    defined = _KEYS[kind]
    fields: Dict[str, str] = {}
    env: List[Tuple[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        key, sep, value = line.partition("=")
        if not sep:
            raise ProtocolError("line %d has no '=': %r" % (number, line[:60]))
        if not _KEY.fullmatch(key):
            raise ProtocolError("line %d: key %r is not [A-Z0-9_]+" % (number, key[:40]))
        if key not in defined:
            continue
        if key == "ENV":
            if len(env) == MAX_ENV:
                raise ProtocolError("more than %d ENV lines" % MAX_ENV)
            env.append(_env_pair(value))
        elif key in fields:
            raise ProtocolError("key %s appears twice" % key)
        else:
            fields[key] = value

    if cls is Spawn:
        if fields.get("CGROUP", "0") not in ("0", "1"):
            raise ProtocolError("CGROUP=%r is neither 0 nor 1" % fields["CGROUP"][:40])
        _number(fields, "CGROUP", 0, 1)                 # required
        place = _flag(fields, "PLACE")
        if place and fields["CGROUP"] == "1":
            raise ProtocolError("SPAWN with both CGROUP=1 and PLACE=1")
        return Spawn(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                     generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                     cgroup=fields["CGROUP"] == "1", env=tuple(env), place=place)
    if cls is Ready:
        return Ready(protocol=_number(fields, "PROTOCOL", PROTOCOL_VERSION, PROTOCOL_VERSION),
                     runtime=fields.get("RUNTIME"), place=_flag(fields, "PLACE"))
    if cls is Place:
        return Place(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                     generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                     pid=_number(fields, "PID", PID_MIN, PID_MAX))
    if cls is Placed:
        return Placed(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                      generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                      errno=_number(fields, "ERRNO", 1, ERRNO_MAX) if "ERRNO" in fields else 0)
    if cls is Spawned:
        return Spawned(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                       generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                       pid=_number(fields, "PID", PID_MIN, PID_MAX))
    return SpawnFailed(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                       generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                       errno=_number(fields, "ERRNO", 1, ERRNO_MAX),
                       message=fields.get("MESSAGE"))


# --------------------------------------------------------------------- formatting

def _check(value: int, name: str, low: int, high: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("%s=%r is out of range %d..%d" % (name, value, low, high))
    return str(value)


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    """Free text (a MESSAGE, a RUNTIME) made safe for one value: no newline, no NUL, at
    most `limit` bytes of UTF-8 (memward keeps no more), cut with "..." when longer."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\0", "")
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode("utf-8", "ignore") + "..."


def format_message(message: Message) -> bytes:
    """The packet for `message`. Free-text values are flattened with one_line();
    anything else parse_message() would reject raises ValueError."""
    lines = [message.TYPE]
    if isinstance(message, Spawn):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX),
                  "CGROUP=" + ("1" if message.cgroup else "0")]
        if message.place:
            if message.cgroup:
                raise ValueError("SPAWN with both cgroup and place")
            lines.append("PLACE=1")
        if len(message.env) > MAX_ENV:
            raise ValueError("%d ENV lines, more than %d" % (len(message.env), MAX_ENV))
        for name, value in message.env:
            if not name or "=" in name or any(c in name + value for c in "\n\0"):
                raise ValueError("ENV %r=%r cannot be sent" % (name, value))
            lines.append("ENV=%s=%s" % (name, value))
    elif isinstance(message, Ready):
        lines.append("PROTOCOL=" + _check(message.protocol, "PROTOCOL",
                                          PROTOCOL_VERSION, PROTOCOL_VERSION))
        if message.runtime is not None:
            lines.append("RUNTIME=" + one_line(message.runtime, MAX_RUNTIME))
        if message.place:
            lines.append("PLACE=1")
    elif isinstance(message, (Spawned, Place)):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX),
                  "PID=" + _check(message.pid, "PID", PID_MIN, PID_MAX)]
    elif isinstance(message, Placed):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX)]
        if message.errno != 0:
            lines.append("ERRNO=" + _check(message.errno, "ERRNO", 1, ERRNO_MAX))
    elif isinstance(message, SpawnFailed):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX),
                  "ERRNO=" + _check(message.errno, "ERRNO", 1, ERRNO_MAX)]
        if message.message is not None:
            lines.append("MESSAGE=" + one_line(message.message))
    else:
        raise ValueError("not a message: %r" % (message,))
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    if len(data) > MAX_MESSAGE:
        raise ValueError("message of %d bytes, more than %d" % (len(data), MAX_MESSAGE))
    return data
