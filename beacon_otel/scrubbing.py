"""Remove secrets from span attributes and log fields before they leave the process.

One :class:`Scrubber` serves traces and logs alike, so a token hidden in a span is hidden in the
matching log line too. Only values are replaced, never names: ``api_key=[scrubbed]`` still tells the
reader which field held a secret, just not what it was.

This runs on every log line and every span attribute, and almost none of them hold a secret. A
substring pre-check (``in`` on the lower-cased text, far cheaper than a case-insensitive regular
expression) therefore decides whether the rules run at all, and each rule has a cheap precondition
of its own. Everything is compiled once; the verdicts on names are cached, since the same attribute
and field names come back on every span and every log line.

URL parameters are judged as the server reads them: names percent-decoded (``api%5Fkey``, ``+`` as a
space), a query string encoded inside a parameter or a path (``next=%2Fcb%3Ftoken%3D...``) as well
as a plain one, and ``;name=value`` path parameters (``/app;jsessionid=...``). A PEM private key
block is hidden whole wherever it appears. :meth:`Scrubber.scrub_trace_state` hides secret-looking
members of a W3C ``tracestate`` in what is exported; what is propagated downstream is never changed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = ["REDACTED", "Scrubber"]

REDACTED: Final = "[scrubbed]"

_FLAGS: Final = re.IGNORECASE | re.ASCII | re.VERBOSE

# A name (field, header, query parameter) whose value is a secret. Qualifiers may come first ("x-",
# "db_", "client_", "http.request.header."), but the name must END in a secret word, so "tokens",
# "max_tokens", "token_count", "monkey" and "keyboard" are not secret. A bare "key" is not either
# (cache keys, dict keys, Kafka message keys); only in a URL query string does it name an API key.
# "pass" and "pw" are secret as whole words only ("db_pass", "smtp.pw"; not "passport", "compass").
# Session cookies by their usual names are ("sessionid", "JSESSIONID", "PHPSESSID"); "session_id"
# and OTel's "session.id" are not: applications log those as correlation ids.
_SECRET_NAME: Final = r"""
    (?:
        (?:[a-z0-9]+[-_.])*
        (?:
            [a-z0-9]*(?:password|passwd|passphrase|secrets?|token|apikey|credentials?
                        |authorization|cookies?|signature|sessionid|sessid)
          | (?:api|access|private|secret|client|signing|encryption|master|account|subscription
               |session|auth)[-_.]?key
          | pwd|pw|pass|auth|sig|jwt|session
        )
    )
"""
_SECRET_NAME_RE: Final = re.compile(_SECRET_NAME, _FLAGS)
# Attribute and field names may hold other characters ("database password"); the last run of name
# characters is what counts.
_NOT_NAME_CHARS: Final = re.compile(r"[^\w.\-]+", re.ASCII)

# Header names are judged more broadly, by a word anywhere ("x-goog-upload-token-id"), but "tokens"
# is spared for the LLM providers' rate-limit headers ("x-ratelimit-remaining-tokens").
_SECRET_HEADER_WORD: Final = re.compile(r"token(?!s) | secret | password | passwd | api[-_]?key", _FLAGS)
_HEADER_ATTRIBUTE_PREFIXES: Final = ("http.request.header.", "http.response.header.")

# Besides the secret names, in a URL query: Google's `key`, Azure's SAS `sas` (its `sig` is a
# secret name already) and OAuth's authorisation `code`.
_QUERY_ONLY_NAMES: Final = frozenset({"key", "sas", "code"})

# --- rules for free text ------------------------------------------------------------------------

# scheme://user:password@host, for any scheme. The user name stays: it helps debugging and is not
# the secret. The password runs to the LAST "@" before the host, for DSNs with an unescaped "@";
# and when "/", "?" or "#" comes before any "@" (postgresql://u:pa/ss#w?rd@db/x), to the last "@"
# followed by a host, short of any "//" (which would start the next URL: this keeps the search
# linear). Then `host:8080/p?mail=a@b` is not a password: what follows the ":" is a port when it
# is digits up to the "?" or "#", or (maybe none) up to the "/".
_URL_PASSWORD: Final = re.compile(
    r"""
    (?<![a-z0-9+.\-]) [a-z][a-z0-9+.\-]*:// (?!\[) [^:/?\#@\s"']* :
    (?P<val>
        [^/?\#\s"']+ (?=@)
      | (?!\d*/|\d+[?\#]) [^/?\#@\s"']* (?:[?\#]|/(?!/)) (?:[^\s"'/]|/(?!/))*
        (?=@[^@/?\#\s"']*(?:[/?\#\s"']|$))
    )
    """,
    _FLAGS,
)

# A PEM private key, BEGIN line to END line (to the end of the text if it was cut short); the body
# may span lines, or hold "\n" escapes in JSON. Hidden whole: the block is the secret.
_PEM_PRIVATE_KEY: Final = re.compile(
    r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[^-]|-(?!----END))*+"
    r"(?:-----END[^\-\r\n]{0,64}-----)?"
)

# URL parameters: `?name=`, `&name=`, `;name=` (a path parameter), and the same with the separators
# percent-encoded once or more (`%3Fname%3D`, `%253Fname%253D`: a URL inside a parameter). Only the
# separator, the name and the "=" are matched; the value is measured by one of the expressions
# below, so that a parameter inside a value that is not secret is still found. The name may hold
# escapes, but not an escaped separator.
_PARAM_NAME: Final = r"(?:[\w.\-~+\[\]]|%(?!(?:25)*+(?:3D|3F|26|3B|23))[0-9a-f]{2})++"
# (Starting with one character set lets the regex engine skip ahead to the candidates quickly.)
_PARAM_START: Final = rf"""
    (?: {{start}} [?&;%] (?: (?<=%) (?P<sep_level>(?:25)*+) (?P<encoded>3F|26|3B) | (?<!%) ) )
    (?P<name>{_PARAM_NAME}) (?: (?P<eq>=) | %(?P<eq_level>(?:25)*+)3D )
"""
_PARAM: Final = re.compile(_PARAM_START.replace("{start}", ""), _FLAGS)
# A value that is a query string without its "?": `url.query` holds "code=abc&state=x".
_BARE_PARAM: Final = re.compile(_PARAM_START.replace("{start}", "^ |"), _FLAGS)
_QUERY_VALUE: Final = re.compile(r"""[^&\#\s"'<>]+""")
_PATH_PARAM_VALUE: Final = re.compile(r"""[^/;?&\#\s"'<>]+""")
_MAX_LEVEL: Final = 3


def _encoded_value(level: int, path: bool) -> re.Pattern[str]:
    """A value after separators escaped ``level`` + 1 times: it ends at ``&`` or ``#`` escaped as
    often or less (after a path parameter also at ``;``, ``/`` and ``?``); more deeply escaped ones
    belong to the value."""
    ends = "26|23|3B|2F|3F" if path else "26|23"
    return re.compile(rf"""(?:[^&\#\s"'<>%]|%(?!(?:25){{0,{level}}}(?:{ends})))+""", re.IGNORECASE)


_ENCODED_VALUES: Final = {
    (level, path): _encoded_value(level, path) for level in range(_MAX_LEVEL + 1) for path in (False, True)
}
_PERCENT_ESCAPE: Final = re.compile(r"%([0-9a-fA-F]{2})")

# "Bearer <token>" anywhere; but not "bearer token" (prose), nor "Bearer realm=..." (a challenge) or
# "Bearer password: x" (the next name, which the name/value rule must still see).
_BEARER: Final = re.compile(
    r"""\b bearer [\ \t]+ (?!(?:bearer|basic|tokens?)\b) (?![\w.\-]+(?::|=[^=\s])) (?P<val>[^\s"',;]+)""",
    _FLAGS,
)

# "Basic <base64>". "basic" is an everyday word, so the credential must look like base64: six or
# more characters with an upper-case letter, a digit, "+", "/" or "=" after the first one (base64 of
# "user:password" always has some; "Basic usage" has none). Case-sensitive apart from "basic". Not
# "Basic password=[scrubbed]" either: "password=" would look like base64 on a second pass.
_BASIC: Final = re.compile(
    r"""
    \b (?i:basic) [\ \t]+
    (?=[A-Za-z0-9+/]+[A-Z0-9+/=])
    (?P<val>[A-Za-z0-9+/]{6,}={0,2}) (?![A-Za-z0-9+/=\[])
    """,
    re.ASCII | re.VERBOSE,
)

# `name=value`, `name: value`, `"name": "value"`. Finding every `name<sep>` with this cheap
# expression and judging the name with the cached _is_secret_name is several times faster than one
# expression holding all the secret names. The look-behind makes the name a whole word, and leaves
# query strings to _PARAM.
_NAME_SEP: Final = re.compile(
    r"""(?<![\w.\-?&]) (?P<q>["']?) (?P<name>[A-Za-z0-9][\w.\-]*+) (?P=q) [\ \t]* (?P<sep>[:=]) [\ \t]*""",
    re.ASCII | re.VERBOSE,
)
# A quoted value, with the prefix of a Python literal (`b'...'` in a dict's repr), must be followed
# by something that can end a value: in `password: ' | {'token': 'x'}` the quote before "token"
# opens a name, it does not close the password.
_QUOTED: Final = r"""
    [bru]{0,2} (?: "(?:[^"\\\r\n]|\\.)+" | '(?:[^'\\\r\n]|\\.)+' ) (?![^\s,;&)\]}>.!?])
"""
_QUOTED_RE: Final = re.compile(r"""[bru]{0,2}(["']).*\1""", _FLAGS | re.DOTALL)
# A value ends at white space or at the usual separators of log formats (`a=1, b=2; c=3&d=4`).
_WORD_VALUE: Final = re.compile(rf"""(?P<val> {_QUOTED} | ["']?[^\s"'&,;]+ )""", _FLAGS)
# After "Cookie:" or "Authorization:" the whole rest of the line is the secret ("a=b; c=d",
# "Digest username=..., response=...").
_WHOLE_LINE_NAME: Final = re.compile(r"(?:proxy-)?authorization|(?:set-)?cookies?", _FLAGS)
_LINE_VALUE: Final = re.compile(rf"""(?P<val> {_QUOTED} | [^\r\n]+ )""", _FLAGS)
# After any other `authorization` or `auth` name, a scheme and its credential (`authorization=Token
# abc`, `auth: ApiKey abc`), unless the second word is the next `name=value`.
_SCHEME_VALUE: Final = re.compile(
    rf"""(?P<val>
        {_QUOTED}
      | [a-z][\w\-]*+ [\ \t]+ (?![\w.\-]+(?::|=[^=\s])) [^\s"'&,;]+
      | ["']?[^\s"'&,;]+
    )""",
    _FLAGS,
)
# `password:` at the end of a line (YAML, a form dump): the value is on the next one.
_LINE_BREAK: Final = re.compile(r"\r?\n[\ \t]*")
# `PWD=/srv/app` is the shell's working directory, not a password.
_PATH_VALUE: Final = re.compile(r"""["']?~?/""")

# Every built-in rule needs one of these substrings of the lower-cased text (or of the text
# percent-decoded: `p%61ssword`).
_TRIGGERS: Final = (
    "pass", "pw", "secret", "token", "key", "auth", "cookie", "credential", "sig", "jwt",
    "session", "sessid", "bearer", "basic", "@", "sas=", "code=",
)  # fmt: skip


# An escaped letter, "@" or "=" (possibly escaped again): only then can decoding reveal a trigger.
_ESCAPED_TRIGGER_CHAR: Final = re.compile(r"%(?:25)*(?:[4-7][0-9a-f]|3d)", re.IGNORECASE)


def _has_escaped_trigger(lowered: str) -> bool:
    """Whether the text hides a trigger behind percent escapes (``p%61ssword``, ``code%3D``)."""
    if _ESCAPED_TRIGGER_CHAR.search(lowered) is None:
        return False
    decoded = _percent_decode(lowered)
    return any(word in decoded for word in _TRIGGERS)


def _percent_decode(text: str) -> str:
    """``+`` as a space, and ``%XX`` escapes decoded up to three times over (a URL inside a
    parameter of a URL...). Bytes above 0x7F become the Latin-1 characters: only ASCII names
    can be secret names anyway."""
    text = text.replace("+", " ")
    for _ in range(_MAX_LEVEL):
        if "%" not in text:
            break
        decoded = _PERCENT_ESCAPE.sub(lambda escape: chr(int(escape[1], 16)), text)
        if decoded == text:
            break
        text = decoded
    return text


@functools.lru_cache(maxsize=4096)
def _is_secret_name_cached(name: str) -> bool:
    return _SECRET_NAME_RE.fullmatch(name) is not None


def _is_secret_name(name: str) -> bool:
    """Names repeat endlessly (the same fields on every log line), hence the cache; overlong ones
    are judged afresh rather than allowed to fill it."""
    if len(name) > 128:
        return _SECRET_NAME_RE.fullmatch(name) is not None
    return _is_secret_name_cached(name)


@functools.lru_cache(maxsize=4096)
def _is_secret_header(name: str) -> bool:
    return _is_secret_name(name) or _SECRET_HEADER_WORD.search(name) is not None


def _is_secret_key_uncached(key: str) -> bool:
    name = _NOT_NAME_CHARS.split(key.lower())[-1]
    for prefix in _HEADER_ATTRIBUTE_PREFIXES:
        if name.startswith(prefix):
            return _is_secret_header(name[len(prefix) :])
    return _is_secret_name(name)


_is_secret_key_cached = functools.lru_cache(maxsize=4096)(_is_secret_key_uncached)


def _is_secret_key(key: str) -> bool:
    """An attribute or field name; ``http.*.header.<name>`` attributes follow the header rule."""
    if len(key) > 128:
        return _is_secret_key_uncached(key)
    return _is_secret_key_cached(key)


def _param_name(name: str) -> str:
    """A URL parameter's name as the server reads it, lower-cased, without the brackets of
    ``user[password]`` or ``tokens[]``."""
    if "%" in name or "+" in name:
        name = _percent_decode(name)
    return name.lower().rstrip("[]")


def _is_secret_param_uncached(name: str, query: bool) -> bool:
    decoded = _param_name(name)
    return (query and decoded in _QUERY_ONLY_NAMES) or _is_secret_key(decoded)


_is_secret_param_cached = functools.lru_cache(maxsize=4096)(_is_secret_param_uncached)


def _is_secret_param(name: str, query: bool) -> bool:
    """A URL parameter's name (a path parameter's if not ``query``)."""
    if len(name) > 128:
        return _is_secret_param_uncached(name, query)
    return _is_secret_param_cached(name, query)


def _is_working_directory(name: str, value: str) -> bool:
    return name.lower() == "pwd" and _PATH_VALUE.match(value) is not None


def _redacted_like(value: str) -> str:
    """REDACTED, inside the same quotes (and literal prefix: ``b'...'``) as ``value`` if it is a
    quoted string."""
    if len(value) >= 2 and value[-1] in "\"'" and _QUOTED_RE.fullmatch(value) is not None:
        quote = value.index(value[-1]) + 1
        return value[:quote] + REDACTED + value[-1]
    return REDACTED


def _redact_val_group(match: re.Match[str]) -> str:
    """Keep the match up to its ``val`` group and hide the group."""
    return match[0][: match.start("val") - match.start()] + _redacted_like(match["val"])


def _scrub_params(text: str, *, bare_query: bool) -> str:
    """URL parameters with secret names, plain or percent-encoded, left to right; a parameter inside
    a value just hidden is skipped."""
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces already
    for param in (_BARE_PARAM if bare_query else _PARAM).finditer(text):
        if param.end() < done:
            continue
        encoded = param["encoded"]
        plain = text[param.start()] if param.start() < param.start("name") else ""  # "" at ^
        path = plain == ";" or encoded in ("3B", "3b")
        if not _is_secret_param(param["name"], query=not path):
            continue
        if param["eq"] is not None and encoded is None:
            value = (_PATH_PARAM_VALUE if plain == ";" else _QUERY_VALUE).match(text, param.end())
        else:
            escapes = param["sep_level"] if encoded is not None else param["eq_level"]
            level = min(len(escapes) // 2, _MAX_LEVEL)
            value = _ENCODED_VALUES[level, path].match(text, param.end())
        if value is not None:
            pieces += (text[done : value.start()], REDACTED)
            done = value.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _name_value(text: str, name: str, sep: str, start: int) -> re.Match[str] | None:
    """The value after ``name`` and its separator, which end at ``start``."""
    if sep == ":" and _WHOLE_LINE_NAME.fullmatch(name) is not None:
        rule = _LINE_VALUE
    elif name.lower().endswith(("auth", "authorization")):
        rule = _SCHEME_VALUE
    else:
        rule = _WORD_VALUE
    value = rule.match(text, start)
    if value is None and sep == ":":
        line_break = _LINE_BREAK.match(text, start)
        if line_break is not None:
            value = rule.match(text, line_break.end())
    return value


def _scrub_names_and_values(text: str) -> str:
    """`name=value` and friends, left to right.

    A value may swallow the next name: in `api_key= password: x` the value of api_key is
    "password:", and x must go too; in `auth= authorization=Token x` it is "authorization=Token",
    and the rest of authorization's value, " x", must go too. A value hidden already (a path
    parameter's, `;jsessionid=[scrubbed]/next`) is left as it is.
    """
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces already
    for name_sep in _NAME_SEP.finditer(text):
        name = name_sep["name"]
        start = name_sep.end()
        if not _is_secret_name(name) or text.startswith(REDACTED, start):
            continue
        value = _name_value(text, name, name_sep["sep"], start)
        if value is None or _is_working_directory(name, value[0]):
            continue
        if start >= done:
            pieces += (text[done : value.start()], _redacted_like(value[0]))
            done = value.end()
        elif value.end() > done and value.re is _SCHEME_VALUE and value[0][0] not in "\"'":
            # a name inside a value just hidden, whose scheme and credential run on past it
            rest = done + len(text[done : value.end()]) - len(text[done : value.end()].lstrip())
            pieces += (text[done:rest], REDACTED)
            done = value.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _scrub_builtin(text: str, *, bare_query: bool) -> str:
    """Apply the built-in rules, each only where its cheap precondition holds.

    A rule only ever swaps a value for REDACTED, and no rule takes REDACTED for anything but a value,
    so a second pass changes nothing. URLs go first: their syntax says exactly where a password or a
    query value ends, which the generic `name=value` rule can only guess.
    """
    lowered = text.lower()
    for word in _TRIGGERS:
        if word in lowered:
            break
    else:
        if "%" not in lowered or not _has_escaped_trigger(lowered):
            return text
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(_redact_val_group, text)
    if "-----BEGIN" in text:
        text = _PEM_PRIVATE_KEY.sub(REDACTED, text)
    if bare_query or "?" in text or "&" in text or ";" in text or "%" in text:
        text = _scrub_params(text, bare_query=bare_query)
    if "bearer" in lowered:
        text = _BEARER.sub(_redact_val_group, text)
    if "basic" in lowered:
        text = _BASIC.sub(_redact_val_group, text)
    if ":" in text or "=" in text:
        text = _scrub_names_and_values(text)
    return text


def _redact_all(value: Any) -> Any:
    """Everything under a secret key, keeping the shape; None and booleans cannot leak a secret."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list):
        return [_redact_all(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact_all(item) for item in value)
    if isinstance(value, Mapping):
        return {k: _redact_all(v) for k, v in value.items()}
    return REDACTED


# --- extra patterns -------------------------------------------------------------------------------


def _redact_secret_group(match: re.Match[str]) -> str:
    """For an extra pattern with a ``secret`` group: hide that group only."""
    start, end = match.span("secret")
    if start == end:  # the group did not take part, or matched nothing: nothing to hide
        return match[0]
    whole, offset = match[0], match.start()
    return whole[: start - offset] + REDACTED + whole[end - offset :]


def _redact_whole(match: re.Match[str]) -> str:
    """For an extra pattern without a ``secret`` group; an empty match hides nothing."""
    return REDACTED if match[0] else ""


_Replacer = Callable[[re.Match[str]], str]


def _compile_extra(pattern: str) -> tuple[re.Pattern[str], _Replacer]:
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise ValueError(f"invalid scrub pattern {pattern!r}: {exc}") from exc
    return compiled, (_redact_secret_group if "secret" in compiled.groupindex else _redact_whole)


class Scrubber:
    """Replaces secrets in text, headers, attribute values and log fields with :data:`REDACTED`.

    ``extra_patterns`` are regular expressions (``BEACON_OTEL_SCRUB_PATTERNS``) for secrets that the
    built-in rules do not know, compiled without flags (``(?i)`` works); every match is hidden, or
    only its ``secret`` group if it has one. A pattern that does not compile raises ``ValueError``
    naming it, for the settings to report.
    Scrubbing twice gives the same result as scrubbing once, and no input string makes it raise.
    """

    __slots__ = ("_extras", "extra_patterns")

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        self.extra_patterns: tuple[str, ...] = tuple(extra_patterns)
        self._extras = [_compile_extra(pattern) for pattern in self.extra_patterns]

    def __repr__(self) -> str:
        return f"Scrubber(extra_patterns={list(self.extra_patterns)!r})"

    def scrub_text(self, text: str) -> str:
        """Free text: log messages, URLs, exception messages, header values."""
        return self._scrub(text, bare_query=False)

    def scrub_header(self, name: str, value: str) -> str:
        """An HTTP header: the credential-bearing ones entirely, the others as free text."""
        if _is_secret_header(name.lower()):
            return REDACTED
        return self.scrub_text(value)

    def scrub_value(self, key: str, value: Any) -> Any:
        """A span attribute or log field.

        A secret key hides everything under it (keeping the shape of lists and dicts). Otherwise
        strings are scrubbed as text, containers item by item, and numbers, booleans and other
        objects are left alone: a count like ``gen_ai.usage.input_tokens`` is not a token. The one
        exception: ``PWD`` holding a path is the working directory, not a password.
        """
        if _is_secret_key(key):
            if isinstance(value, str) and _is_working_directory(key, value):
                return value
            return _redact_all(value)
        if isinstance(value, str):
            return self._scrub(value, bare_query=key == "query" or key.endswith(".query"))
        if isinstance(value, list):
            return [self.scrub_value(key, item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.scrub_value(key, item) for item in value)
        if isinstance(value, Mapping):
            return {k: self.scrub_value(k if isinstance(k, str) else str(k), v) for k, v in value.items()}
        return value

    def scrub_mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """A whole attribute set or log event."""
        return {key: self.scrub_value(key, value) for key, value in mapping.items()}

    def scrub_trace_state(self, trace_state: str) -> str:
        """A W3C ``tracestate`` (``vendor=abc,password=hunter2``) as it may be EXPORTED.

        A member whose key is a secret name (either part of a ``tenant@system`` key) keeps its key
        and has its value replaced by :data:`REDACTED` (``password=[scrubbed]``), which is still a
        valid tracestate value; other values are scrubbed as text, and members keep their order.
        Only for the exported copy (span and link ``trace_state`` in OTLP, the sink's metadata):
        the context propagated to the next service is never changed, as W3C Trace Context requires.
        """
        if not trace_state:
            return trace_state
        members = trace_state.split(",")
        for index, member in enumerate(members):
            key, equals, value = member.partition("=")
            if not equals:
                continue
            name = key.strip()
            if any(_is_secret_key(part) for part in name.split("@")):
                scrubbed = REDACTED
            else:
                scrubbed = self.scrub_text(value)
            if scrubbed != value:
                members[index] = f"{key}={scrubbed}"
        return ",".join(members)

    def is_secret_key(self, key: str) -> bool:
        """Whether :meth:`scrub_value` hides everything under ``key``."""
        return _is_secret_key(key)

    def _scrub(self, text: str, *, bare_query: bool) -> str:
        text = _scrub_builtin(text, bare_query=bare_query)
        if self._extras:
            text = self._scrub_extras(text)
        return text

    def _scrub_extras(self, text: str) -> str:
        """Extra patterns never see REDACTED itself, so that one matching it (say ``[a-z]{8}``)
        cannot grow the text on every pass."""
        pieces = text.split(REDACTED) if REDACTED in text else [text]
        for pattern, replace in self._extras:
            pieces = [pattern.sub(replace, piece) for piece in pieces]
        return REDACTED.join(pieces)
