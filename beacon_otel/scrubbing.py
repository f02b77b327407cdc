"""Remove secrets from span attributes and log fields before they leave the process.

One :class:`Scrubber` serves traces and logs alike, so a token hidden in a span is hidden in the
matching log line too. Only values are replaced, never names: ``api_key=[scrubbed]`` still tells the
reader which field held a secret, just not what it was.

This runs on every log line and every span attribute, and almost none of them hold a secret. A
substring pre-check (``in`` on the lower-cased text, far cheaper than a case-insensitive regular
expression) therefore decides whether the rules run at all, and each rule has a cheap precondition
of its own. Everything is compiled once; the verdicts on names are cached, since the same attribute
and field names come back on every span and every log line.
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
_SECRET_NAME: Final = r"""
    (?:
        (?:[a-z0-9]+[-_.])*
        (?:
            [a-z0-9]*(?:password|passwd|passphrase|secrets?|token|apikey|credentials?
                        |authorization|cookies?|signature)
          | (?:api|access|private|secret|client|signing|encryption|master|account|subscription
               |session|auth)[-_.]?key
          | pwd|auth|sig|jwt|session
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

# --- rules for free text ------------------------------------------------------------------------

# scheme://user:password@host, for any scheme. The user name stays: it helps debugging and is not
# the secret. The password runs to the LAST "@" before the host, for DSNs with an unescaped "@".
_URL_PASSWORD: Final = re.compile(
    r"""(?<![a-z0-9+.\-]) [a-z][a-z0-9+.\-]*:// [^:/?\#@\s]* : (?P<val>[^/?\#\s"']+) (?=@)""",
    _FLAGS,
)

# Query parameters. Besides the secret names: Google's `key`, Azure's SAS `sas` (its `sig` is a
# secret name already) and OAuth's authorisation `code`.
_QUERY_NAME: Final = rf"(?:{_SECRET_NAME}|key|sas|code)"
_QUERY_VALUE: Final = r"""(?P<val>[^&\#\s"'<>]+)"""
_QUERY_PARAM: Final = re.compile(rf"(?<=[?&]) {_QUERY_NAME} = {_QUERY_VALUE}", _FLAGS)
# A value that is a query string without its "?": `url.query` holds "code=abc&state=x".
_BARE_QUERY_PARAM: Final = re.compile(rf"(?:(?<=[?&])|^) {_QUERY_NAME} = {_QUERY_VALUE}", _FLAGS)

# "Bearer <token>" anywhere; but not "bearer token" (prose), nor "Bearer realm=..." (a challenge) or
# "Bearer password: x" (the next name, which the name/value rule must still see).
_BEARER: Final = re.compile(
    r"""\b bearer [\ \t]+ (?!(?:bearer|basic|tokens?)\b) (?![\w.\-]+(?::|=[^=\s])) (?P<val>[^\s"',;]+)""",
    _FLAGS,
)

# "Basic <base64>". "basic" is an everyday word, so the credential must look like base64: six or
# more characters with an upper-case letter, a digit, "+", "/" or "=" after the first one (base64 of
# "user:password" always has some; "Basic usage" has none). Case-sensitive apart from "basic".
_BASIC: Final = re.compile(
    r"""
    \b (?i:basic) [\ \t]+
    (?=[A-Za-z0-9+/]+[A-Z0-9+/=])
    (?P<val>[A-Za-z0-9+/]{6,}={0,2}) (?![A-Za-z0-9+/=])
    """,
    re.ASCII | re.VERBOSE,
)

# `name=value`, `name: value`, `"name": "value"`. Finding every `name<sep>` with this cheap
# expression and judging the name with the cached _is_secret_name is several times faster than one
# expression holding all the secret names. The look-behind makes the name a whole word, and leaves
# query strings to _QUERY_PARAM.
_NAME_SEP: Final = re.compile(
    r"""(?<![\w.\-?&]) (?P<q>["']?) (?P<name>[A-Za-z0-9][\w.\-]*+) (?P=q) [\ \t]* (?P<sep>[:=]) [\ \t]*""",
    re.ASCII | re.VERBOSE,
)
# A quoted value must be followed by something that can end a value: in `password: ' | {'token':
# 'x'}` the quote before "token" opens a name, it does not close the password.
_QUOTED: Final = r"""
    (?: "(?:[^"\\\r\n]|\\.)+" | '(?:[^'\\\r\n]|\\.)+' ) (?![^\s,;&)\]}>.!?])
"""
# A value ends at white space or at the usual separators of log formats (`a=1, b=2; c=3&d=4`).
_WORD_VALUE: Final = re.compile(rf"""(?P<val> {_QUOTED} | ["']?[^\s"'&,;]+ )""", _FLAGS)
# After "Cookie:" or "Authorization:" the whole rest of the line is the secret ("a=b; c=d",
# "Digest username=..., response=...").
_WHOLE_LINE_NAME: Final = re.compile(r"(?:proxy-)?authorization|(?:set-)?cookies?", _FLAGS)
_LINE_VALUE: Final = re.compile(rf"""(?P<val> {_QUOTED} | [^\r\n]+ )""", _FLAGS)

# Every built-in rule needs one of these substrings of the lower-cased text.
_TRIGGERS: Final = (
    "pass", "pwd", "secret", "token", "key", "auth", "cookie", "credential", "sig", "jwt",
    "session", "bearer", "basic", "@", "sas=", "code=",
)  # fmt: skip


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


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    """An attribute or field name; ``http.*.header.<name>`` attributes follow the header rule."""
    name = _NOT_NAME_CHARS.split(key.lower())[-1]
    for prefix in _HEADER_ATTRIBUTE_PREFIXES:
        if name.startswith(prefix):
            return _is_secret_header(name[len(prefix) :])
    return _is_secret_name(name)


def _redacted_like(value: str) -> str:
    """REDACTED, inside the same quotes as ``value`` if it is a quoted string."""
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[0] + REDACTED + value[0]
    return REDACTED


def _redact_val_group(match: re.Match[str]) -> str:
    """Keep the match up to its ``val`` group and hide the group."""
    return match[0][: match.start("val") - match.start()] + _redacted_like(match["val"])


def _scrub_names_and_values(text: str) -> str:
    """`name=value` and friends, left to right.

    A name inside a value just hidden is skipped, unless the value ended inside its separator: in
    `api_key= password: x` the value of api_key is "password:", and x must go too.
    """
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces already
    for name_sep in _NAME_SEP.finditer(text):
        name = name_sep["name"]
        if name_sep.end() < done or not _is_secret_name(name):
            continue
        whole_line = name_sep["sep"] == ":" and _WHOLE_LINE_NAME.fullmatch(name) is not None
        value = (_LINE_VALUE if whole_line else _WORD_VALUE).match(text, name_sep.end())
        if value is not None:
            pieces += (text[done : value.start()], _redacted_like(value[0]))
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
        return text
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(_redact_val_group, text)
    if bare_query:
        text = _BARE_QUERY_PARAM.sub(_redact_val_group, text)
    elif "?" in text or "&" in text:
        text = _QUERY_PARAM.sub(_redact_val_group, text)
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
        objects are left alone: a count like ``gen_ai.usage.input_tokens`` is not a token.
        """
        if _is_secret_key(key):
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
