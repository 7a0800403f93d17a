"""The control-channel messages of docs/fork-server.md section 2, parsed and formatted.

Pure functions on bytes: no sockets, no processes. A message is one SOCK_SEQPACKET
packet of at most MAX_MESSAGE bytes of UTF-8 text; its first line is the type, every
further line is KEY=VALUE, every line ends in "\\n". parse_message() turns a packet into
one of the message classes below or raises ProtocolError naming what is wrong;
format_message() is its inverse and refuses (ValueError) to build a message that
parse_message() would reject.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Optional, Tuple, Union

PROTOCOL_VERSION = 1
MAX_MESSAGE = 65536             # bytes in one packet, the whole message
MAX_FDS = 1                     # SCM_RIGHTS fds a SPAWN may carry

SLOT_MAX = 4095
GENERATION_MAX = 2**64 - 1      # memward keeps generations in a uint64_t
PID_MAX = 2**31 - 1             # a positive pid_t
ERRNO_MAX = 4095                # Linux errnos are below 4096 (MAX_ERRNO)

_KEY = re.compile(r"[A-Z0-9_]+")
# Decimal, no sign, no spaces, no leading zero (docs/fork-server.md section 2): one
# spelling per number, so that C's strtoul and Python's int() cannot disagree.
_NUMBER = re.compile(r"0|[1-9][0-9]{0,19}")


class ProtocolError(ValueError):
    """A malformed message: what was wrong, in words fit for a log line."""


@dataclasses.dataclass(frozen=True)
class Spawn:
    """memward -> template: fork one worker."""
    slot: int
    generation: int
    cgroup: bool                                # a leaf directory fd is attached
    env: Tuple[Tuple[str, str], ...] = ()       # (NAME, VALUE) in the order sent

    TYPE = "SPAWN"


@dataclasses.dataclass(frozen=True)
class Ready:
    """template -> memward: the application is loaded."""
    protocol: int = PROTOCOL_VERSION
    runtime: Optional[str] = None

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


Message = Union[Spawn, Ready, Spawned, SpawnFailed]
_TYPES = {cls.TYPE: cls for cls in (Spawn, Ready, Spawned, SpawnFailed)}


# ------------------------------------------------------------------------ parsing

def _number(fields: Dict[str, str], key: str, low: int, high: int) -> int:
    if key not in fields:
        raise ProtocolError("missing required key %s" % key)
    text = fields[key]
    if not _NUMBER.fullmatch(text):
        raise ProtocolError("%s=%r is not a decimal number" % (key, text[:40]))
    value = int(text)
    if not low <= value <= high:
        raise ProtocolError("%s=%s is out of range %d..%d" % (key, text, low, high))
    return value


def _env_pair(value: str) -> Tuple[str, str]:
    name, sep, rest = value.partition("=")
    if not sep or not name:
        raise ProtocolError("ENV=%r is not NAME=VALUE" % value[:60])
    return name, rest


def parse_message(data: bytes) -> Message:
    """Parses one packet; raises ProtocolError when it is malformed (section 2).

    Malformed: more than MAX_MESSAGE bytes, a NUL byte, invalid UTF-8, a last line
    without "\\n" (which includes the empty packet), an unknown type, a line without
    '=', a key that is not [A-Z0-9_]+, a key that appears twice (ENV excepted), a
    missing required key, a value out of range. Unknown keys are ignored.
    """
    if len(data) > MAX_MESSAGE:
        raise ProtocolError("message of %d bytes, more than %d" % (len(data), MAX_MESSAGE))
    if b"\0" in data:
        raise ProtocolError("NUL byte at offset %d" % data.index(b"\0"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError("not UTF-8: %s" % e) from None
    if not text.endswith("\n"):
        raise ProtocolError("empty message" if not text
                            else "last line does not end in \\n")
    lines = text[:-1].split("\n")
    kind = lines[0]
    cls = _TYPES.get(kind)
    if cls is None:
        raise ProtocolError("unknown message type %r" % kind[:40])

    fields: Dict[str, str] = {}
    env: List[Tuple[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        key, sep, value = line.partition("=")
        if not sep:
            raise ProtocolError("line %d has no '=': %r" % (number, line[:60]))
        if not _KEY.fullmatch(key):
            raise ProtocolError("line %d: key %r is not [A-Z0-9_]+" % (number, key[:40]))
        if key == "ENV":
            env.append(_env_pair(value))
        elif key in fields:
            raise ProtocolError("key %s appears twice" % key)
        else:
            fields[key] = value

    if cls is Spawn:
        cgroup = _number(fields, "CGROUP", 0, 1)
        return Spawn(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                     generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                     cgroup=bool(cgroup), env=tuple(env))
    if cls is Ready:
        return Ready(protocol=_number(fields, "PROTOCOL", PROTOCOL_VERSION, PROTOCOL_VERSION),
                     runtime=fields.get("RUNTIME"))
    if cls is Spawned:
        return Spawned(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                       generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                       pid=_number(fields, "PID", 1, PID_MAX))
    return SpawnFailed(slot=_number(fields, "SLOT", 0, SLOT_MAX),
                       generation=_number(fields, "GENERATION", 1, GENERATION_MAX),
                       errno=_number(fields, "ERRNO", 1, ERRNO_MAX),
                       message=fields.get("MESSAGE"))


# --------------------------------------------------------------------- formatting

def _check(value: int, name: str, low: int, high: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("%s=%r is out of range %d..%d" % (name, value, low, high))
    return str(value)


def one_line(text: str, limit: int = 4000) -> str:
    """Free text (a MESSAGE, a RUNTIME) made safe for one value: no newline, no NUL,
    at most `limit` characters."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\0", "")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_message(message: Message) -> bytes:
    """The packet for `message`. Free-text values are flattened with one_line();
    anything else parse_message() would reject raises ValueError."""
    lines = [message.TYPE]
    if isinstance(message, Spawn):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX),
                  "CGROUP=" + ("1" if message.cgroup else "0")]
        for name, value in message.env:
            if not name or "=" in name or any(c in name + value for c in "\n\0"):
                raise ValueError("ENV %r=%r cannot be sent" % (name, value))
            lines.append("ENV=%s=%s" % (name, value))
    elif isinstance(message, Ready):
        lines.append("PROTOCOL=" + _check(message.protocol, "PROTOCOL",
                                          PROTOCOL_VERSION, PROTOCOL_VERSION))
        if message.runtime is not None:
            lines.append("RUNTIME=" + one_line(message.runtime, 200))
    elif isinstance(message, Spawned):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX),
                  "PID=" + _check(message.pid, "PID", 1, PID_MAX)]
    elif isinstance(message, SpawnFailed):
        lines += ["SLOT=" + _check(message.slot, "SLOT", 0, SLOT_MAX),
                  "GENERATION=" + _check(message.generation, "GENERATION", 1, GENERATION_MAX),
                  "ERRNO=" + _check(message.errno, "ERRNO", 1, ERRNO_MAX)]
        if message.message is not None:
            lines.append("MESSAGE=" + one_line(message.message))
    else:
        raise ValueError("not a message: %r" % (message,))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if len(data) > MAX_MESSAGE:
        raise ValueError("message of %d bytes, more than %d" % (len(data), MAX_MESSAGE))
    return data
