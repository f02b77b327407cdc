"""Unit tests for beacon_otel.scrubbing: each rule with cases that must and must not be scrubbed,
the four planted secrets of the issue, extra patterns, headers, attribute values, and properties
(no exception, idempotence, planted secrets never survive) checked with hypothesis.

Judgement calls pinned down here: names are whole words, so ``monkey=banana`` and
``keyboard=qwerty`` are left alone; a bare ``key`` is an API key only in a URL query string; counts
such as ``tokens=12`` or ``gen_ai.usage.input_tokens`` are not tokens. ``pass`` and ``pw`` are
secret as whole words (``passport``, ``compass`` are not), ``sessionid``/``JSESSIONID`` are while
``session_id`` is not, ``PWD`` holding a path is the working directory, and a port (digits up to a
"/") is never taken for a password.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beacon_otel.scrubbing import REDACTED, Scrubber

S = REDACTED


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber()


def _check(scrubber: Scrubber, text: str, expected: str) -> None:
    """The expected output, and a second pass leaves it as it is."""
    assert scrubber.scrub_text(text) == expected
    assert scrubber.scrub_text(expected) == expected


# --- the four planted secrets of the issue -----------------------------------------------------------


def test_planted_secrets_never_reach_the_output(scrubber: Scrubber) -> None:
    provider_url = "https://gpu.example.com/v1/chat/completions?api_key=SECRET1&model=llama"
    database_url = "postgresql+asyncpg://router:SECRET3@db.internal:5432/router"
    log_line = "retrying provider call with token=SECRET4 after 502"

    assert scrubber.scrub_text(provider_url) == (
        f"https://gpu.example.com/v1/chat/completions?api_key={S}&model=llama"
    )
    assert scrubber.scrub_header("Authorization", "Bearer SECRET2") == S
    assert scrubber.scrub_value("http.request.header.authorization", ["Bearer SECRET2"]) == [S]
    assert scrubber.scrub_value("DATABASE_URL", database_url) == (
        f"postgresql+asyncpg://router:{S}@db.internal:5432/router"
    )
    assert scrubber.scrub_text(log_line) == f"retrying provider call with token={S} after 502"

    everything = scrubber.scrub_mapping(
        {
            "url.full": provider_url,
            "http.request.header.authorization": "Bearer SECRET2",
            "db.connection_string": database_url,
            "event": log_line,
            "exception.message": f"connect to {database_url} failed; Authorization: Bearer SECRET2",
        }
    )
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4"):
        assert secret not in repr(everything)


# --- URL query strings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://h/p?api_key=SECRET1&model=llama", f"https://h/p?api_key={S}&model=llama"),
        ("https://h/p?model=llama&apikey=abc", f"https://h/p?model=llama&apikey={S}"),
        ("https://h/p?API-KEY=abc", f"https://h/p?API-KEY={S}"),
        ("https://maps.example.com/p?key=AIzaXYZ&q=x", f"https://maps.example.com/p?key={S}&q=x"),
        ("https://h/p?token=abc#frag", f"https://h/p?token={S}#frag"),
        (
            "https://h/p?access_token=a&refresh_token=b&id_token=c",
            f"https://h/p?access_token={S}&refresh_token={S}&id_token={S}",
        ),
        ("https://h/p?auth=a&sig=b&signature=c", f"https://h/p?auth={S}&sig={S}&signature={S}"),
        ("https://h/p?password=a&passwd=b&pwd=c", f"https://h/p?password={S}&passwd={S}&pwd={S}"),
        ("https://h/p?secret=a&client_secret=b", f"https://h/p?secret={S}&client_secret={S}"),
        (
            "https://h/p?x-api-key=a&credential=b&credentials=c",
            f"https://h/p?x-api-key={S}&credential={S}&credentials={S}",
        ),
        ("https://h/p?session=a&jwt=b", f"https://h/p?session={S}&jwt={S}"),
        (
            "https://s3/b/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=ab12&X-Amz-Expires=60",
            f"https://s3/b/o?X-Amz-Credential={S}&X-Amz-Signature={S}&X-Amz-Expires=60",
        ),
        (
            "https://storage/o?X-Goog-Signature=ab12&X-Goog-Date=1",
            f"https://storage/o?X-Goog-Signature={S}&X-Goog-Date=1",
        ),
        ("https://acct.blob/c?sv=2022&sas=abc&sig=xyz%3D", f"https://acct.blob/c?sv=2022&sas={S}&sig={S}"),
        ("GET /oauth/callback?code=4/0Adeu&state=xyz 302", f"GET /oauth/callback?code={S}&state=xyz 302"),
        ('see "https://h/p?token=abc" for details', f'see "https://h/p?token={S}" for details'),
        # Only the value goes; other parameters are left alone.
        ("https://h/p?model=x", "https://h/p?model=x"),
        ("https://h/p?monkey=1&keyboard=2&max_tokens=3", "https://h/p?monkey=1&keyboard=2&max_tokens=3"),
        ("https://h/p?error_code=5&tokens=12", "https://h/p?error_code=5&tokens=12"),
        ("https://h/p?api_key=", "https://h/p?api_key="),
    ],
)
def test_query_parameters(scrubber: Scrubber, text: str, expected: str) -> None:
    _check(scrubber, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Names are percent-decoded ("+" too) before they are judged.
        ("GET /health?api%5Fkey=SECRET HTTP/1.1", f"GET /health?api%5Fkey={S} HTTP/1.1"),
        ("https://h/p?p%61ssword=x&a=1", f"https://h/p?p%61ssword={S}&a=1"),
        ("https://h/p?API%2DKEY=x", f"https://h/p?API%2DKEY={S}"),
        ("https://h/p?api%255Fkey=x", f"https://h/p?api%255Fkey={S}"),  # escaped twice
        ("https://h/p?x=1&access+token=x", f"https://h/p?x=1&access+token={S}"),
        ("https://h/p?user%5Bpassword%5D=x&a=1", f"https://h/p?user%5Bpassword%5D={S}&a=1"),
        ("https://h/p?user[password]=x&api_key[]=y", f"https://h/p?user[password]={S}&api_key[]={S}"),
        # A query string encoded inside a parameter or a path: its separators are escaped.
        (
            "GET /login?next=%2Fcb%3Ftoken%3DSECRET%26x%3D1&y=2 HTTP/1.1",
            f"GET /login?next=%2Fcb%3Ftoken%3D{S}%26x%3D1&y=2 HTTP/1.1",
        ),
        ("GET /p/%3Ftoken%3DSECRET HTTP/1.1", f"GET /p/%3Ftoken%3D{S} HTTP/1.1"),
        (
            "/cb?next=https%3A%2F%2Fa%2Fb%3Fx%3D1%26code%3Dabc",
            f"/cb?next=https%3A%2F%2Fa%2Fb%3Fx%3D1%26code%3D{S}",
        ),
        # Escaped twice: more deeply escaped separators are part of the value.
        (
            "/l?n=%252Fcb%253Ftoken%253DSE%252526CRET%2526x%253D1",
            f"/l?n=%252Fcb%253Ftoken%253D{S}%2526x%253D1",
        ),
        ("https://h/p?token%3DSECRET&a=1", f"https://h/p?token%3D{S}&a=1"),
        ("https://h/p?password=p%26ss&a=1", f"https://h/p?password={S}&a=1"),  # one value with an escaped "&"
        # Not secret, encoded or not.
        ("https://h/p?next=%2Fcb%3Fmodel%3Dx%26n%3D2", "https://h/p?next=%2Fcb%3Fmodel%3Dx%26n%3D2"),
        ("https://h/p?q=50%25&tokens%5B%5D=3", "https://h/p?q=50%25&tokens%5B%5D=3"),
        ("progress 50% of /a%20b done", "progress 50% of /a%20b done"),
        ("https://h/p?passport=x&compass=1", "https://h/p?passport=x&compass=1"),
    ],
)
def test_percent_encoded_query_parameters(scrubber: Scrubber, text: str, expected: str) -> None:
    _check(scrubber, text, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/health;jsessionid=SECRET", f"/health;jsessionid={S}"),
        ("/app/page;JSESSIONID=SECRET?x=1", f"/app/page;JSESSIONID={S}?x=1"),
        ("/app;jsessionid=SECRET/page", f"/app;jsessionid={S}/page"),
        ("/a;PHPSESSID=x;lang=en", f"/a;PHPSESSID={S};lang=en"),
        ("/a;sessionid=x;token=y", f"/a;sessionid={S};token={S}"),
        ("/a%3Bjsessionid%3DSECRET%2Fnext", f"/a%3Bjsessionid%3D{S}%2Fnext"),
        (
            '127.0.0.1:5 - "GET /h;jsessionid=x HTTP/1.1" 404',
            f'127.0.0.1:5 - "GET /h;jsessionid={S} HTTP/1.1" 404',
        ),
        # Path parameters that are not secret, and names that only URL queries make secret.
        ("/matrix;color=red;code=7/x", "/matrix;color=red;code=7/x"),
        ("/a;session_id=1", "/a;session_id=1"),
    ],
)
def test_path_parameters(scrubber: Scrubber, text: str, expected: str) -> None:
    _check(scrubber, text, expected)


def test_url_attributes_with_encoded_names_and_path_parameters(scrubber: Scrubber) -> None:
    assert scrubber.scrub_value("url.query", "api%5Fkey=SECRET&a=1") == f"api%5Fkey={S}&a=1"
    assert scrubber.scrub_value("url.query", "next=%2Fcb%3Ftoken%3DSECRET") == f"next=%2Fcb%3Ftoken%3D{S}"
    assert scrubber.scrub_value("url.path", "/health;jsessionid=SECRET") == f"/health;jsessionid={S}"
    assert scrubber.scrub_value("url.path", "/p/?token=SECRET") == f"/p/?token={S}"  # decoded %3F
    assert scrubber.scrub_value("url.full", "http://h/a;jsessionid=x?k=1") == f"http://h/a;jsessionid={S}?k=1"


def test_bare_query_string_attribute(scrubber: Scrubber) -> None:
    """`url.query` holds the query without its "?"; outside such keys `code=` is ordinary text."""
    assert scrubber.scrub_value("url.query", "code=abc&state=x") == f"code={S}&state=x"
    assert scrubber.scrub_value("url.query", "key=abc") == f"key={S}"
    assert scrubber.scrub_value("url.query", "model=x&n=2") == "model=x&n=2"
    assert scrubber.scrub_text("code=200 key=cache:1") == "code=200 key=cache:1"


# --- passwords in URLs and DSNs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:SECRET3@db:5432/x", f"postgresql://user:{S}@db:5432/x"),
        ("postgres://u:p@ss:w0rd@db/x", f"postgres://u:{S}@db/x"),  # an unescaped "@" in the password
        ("redis://:hunter2@cache:6379/0", f"redis://:{S}@cache:6379/0"),
        ("amqp://guest:guest@mq//", f"amqp://guest:{S}@mq//"),
        (
            "mongodb+srv://app:pw@cluster0.example.net/db?retryWrites=true",
            f"mongodb+srv://app:{S}@cluster0.example.net/db?retryWrites=true",
        ),
        ("dsn='mysql://root:toor@localhost/app'", f"dsn='mysql://root:{S}@localhost/app'"),
        (
            "connect to https://bot:x@git.example.com failed",
            f"connect to https://bot:{S}@git.example.com failed",
        ),
        # Not a password: no userinfo, a user without a password, a port.
        ("postgresql://db:5432/x", "postgresql://db:5432/x"),
        ("https://user@host/p", "https://user@host/p"),
        ("http://host:8080/p?x=a@b", "http://host:8080/p?x=a@b"),
        ("mail ops@example.com at 10:30", "mail ops@example.com at 10:30"),
        # An unescaped "/", "#" or "?" in the password: it runs to the last "@" before the host.
        ("postgresql://user:pa/ss#w?rd@host/db", f"postgresql://user:{S}@host/db"),
        ("postgresql://u:p/a@s#s@db:5432/x?sslmode=require", f"postgresql://u:{S}@db:5432/x?sslmode=require"),
        ("mysql://root:#secret@db", f"mysql://root:{S}@db"),
        ("DSN='postgres://u:a?b@db/x' ok", f"DSN='postgres://u:{S}@db/x' ok"),
        ("a://u:x/1@h b://v:y/2@k", f"a://u:{S}@h b://v:{S}@k"),
        # Ports, paths holding an "@", IPv6 hosts: no password there.
        ("http://localhost:8000/users/@me", "http://localhost:8000/users/@me"),
        ("https://registry:443/@types/node", "https://registry:443/@types/node"),
        ("http://[::1]:8080/x@y", "http://[::1]:8080/x@y"),
        ("https://h/p?when=12:30@home", "https://h/p?when=12:30@home"),
    ],
)
def test_url_passwords(scrubber: Scrubber, text: str, expected: str) -> None:
    _check(scrubber, text, expected)


# --- Bearer and Basic credentials -------------------------------------------------------------------

_USER_PASS_B64 = base64.b64encode(b"router:hunter2").decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer SECRET2", f"Bearer {S}"),
        ("sent bearer eyJhbGciOi.eyJzdWIi.c2ln to provider", f"sent bearer {S} to provider"),
        ("BEARER sk-proj-Abc_123==, retrying", f"BEARER {S}, retrying"),
        (f"Basic {_USER_PASS_B64}", f"Basic {S}"),
        (f"header was basic {_USER_PASS_B64}.", f"header was basic {S}."),
        # Prose and challenges are not credentials.
        ("missing bearer token", "missing bearer token"),
        (
            'WWW-Authenticate: Bearer realm="router", error="invalid_token"',
            'WWW-Authenticate: Bearer realm="router", error="invalid_token"',
        ),
        ("Basic usage of the API", "Basic usage of the API"),
        ("basic routing", "basic routing"),
    ],
)
def test_bearer_and_basic(scrubber: Scrubber, text: str, expected: str) -> None:
    _check(scrubber, text, expected)


# --- name/value pairs in free text -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("retry with token=SECRET4 now", f"retry with token={S} now"),
        ("password: hunter2", f"password: {S}"),
        ("password = hunter2, user=bob", f"password = {S}, user=bob"),
        ('{"api_key": "abc", "model": "llama"}', f'{{"api_key": "{S}", "model": "llama"}}'),
        ("{'client_secret': 'a\\'b', 'n': 1}", f"{{'client_secret': '{S}', 'n': 1}}"),
        ('OpenAI(api_key="sk-abc", timeout=30)', f'OpenAI(api_key="{S}", timeout=30)'),
        ("Authorization: xyz", f"Authorization: {S}"),
        ("Authorization: Bearer SECRET2", f"Authorization: {S}"),
        ("Authorization: Digest username=a, response=b\nHost: h", f"Authorization: {S}\nHost: h"),
        ("X-API-Key: abc", f"X-API-Key: {S}"),
        ("Cookie: a=b; c=d", f"Cookie: {S}"),
        ("Set-Cookie: sid=1; HttpOnly\r\nVary: x", f"Set-Cookie: {S}\r\nVary: x"),
        ("{'Cookie': 'a=b; c=d', 'Accept': '*/*'}", f"{{'Cookie': '{S}', 'Accept': '*/*'}}"),
        ("db_password=x; Server=db", f"db_password={S}; Server=db"),
        ("Server=db;User Id=sa;Password=Pa55;", f"Server=db;User Id=sa;Password={S};"),
        ("accessToken=a apiKey=b clientSecret=c", f"accessToken={S} apiKey={S} clientSecret={S}"),
        ("AWS_SECRET_ACCESS_KEY=abc123", f"AWS_SECRET_ACCESS_KEY={S}"),
        ("private_key: MIIEv", f"private_key: {S}"),
        (
            "jwt=a session=b credentials=c sig=d pwd=e auth=f",
            f"jwt={S} session={S} credentials={S} sig={S} pwd={S} auth={S}",
        ),
        ('password="unterminated', f"password={S}"),
        ("a=password=x y", f"a=password={S} y"),
        # A quote that does not close the value: the next pair is still found.
        ("password: ' | {'client_secret': 'x', 'n': 1}", f"password: ' | {{'client_secret': '{S}', 'n': 1}}"),
        ("Bearer password: x", f"Bearer password: {S}"),
        ("api_key= password: x", f"api_key= {S} {S}"),
        ("password: abc: too short", f"password: {S} too short"),
        # Any scheme after an authorization name, not only Bearer and Basic.
        ("authorization=Token X1 user=bob", f"authorization={S} user=bob"),
        ("http_authorization=ApiKey X1, ok", f"http_authorization={S}, ok"),
        ("auth: SSWS 00abc", f"auth: {S}"),
        ("x-auth=Negotiate YIIabc== next", f"x-auth={S} next"),
        ("authorization=abc user=bob", f"authorization={S} user=bob"),
        ("Authorization: Token X1", f"Authorization: {S}"),
        ("auth= authorization=Token X1", f"auth= {S} {S}"),  # the value swallowed the next name
        ("Basic password=x", f"Basic password={S}"),  # "password=" is no base64, even on a second pass
        # A PEM private key, whole, wherever it is.
        (
            (
                "private_key=-----BEGIN RSA PRIV" "ATE KEY" "-----\nMIIEabc\ndef==\n"
                "-----END RSA PRIV" "ATE KEY" "-----\nend"
            ),
            f"private_key={S}\nend",
        ),
        (
            (
                '{"private_key": "-----BEGIN PRIV' 'ATE KEY' '-----\\nMIIEabc\\n'
                '-----END PRIV' 'ATE KEY' '-----\\n", "n": 1}'
            ),
            f'{{"private_key": "{S}", "n": 1}}',
        ),
        (
            (
                "key file: -----BEGIN OPENSSH PRIV" "ATE KEY" "-----\nb3Blbn\n"
                "-----END OPENSSH PRIV" "ATE KEY" "-----"
            ),
            f"key file: {S}",
        ),
        (
            "-----BEGIN ENCRYPTED PRIV" "ATE KEY" "-----\nProc-Type: 4,ENCRYPTED\nMIIE",  # cut short
            S,
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
        ),
        # A Python repr with a bytes value.
        ("{'password': b'X', 'n': 1}", f"{{'password': b'{S}', 'n': 1}}"),
        ("{'token': rb'a\\'b'}", f"{{'token': rb'{S}'}}"),
        # The value on the next line after a colon.
        ("password:\nX\nuser: bob", f"password:\n{S}\nuser: bob"),
        ("secret:\r\n    X", f"secret:\r\n    {S}"),
        ("password:\n\nnext paragraph", "password:\n\nnext paragraph"),
        # pass, pw and session cookies, as whole words.
        ("pw=X db_pass=Y sessionid=Z", f"pw={S} db_pass={S} sessionid={S}"),
        ('{"pass": "X", "smtp.pw": "Y"}', f'{{"pass": "{S}", "smtp.pw": "{S}"}}'),
        ("JSESSIONID=X; PHPSESSID=Y", f"JSESSIONID={S}; PHPSESSID={S}"),
        # Not secret names: whole words only, and counts of tokens are not tokens.
        ("monkey=banana", "monkey=banana"),
        ("keyboard=qwerty", "keyboard=qwerty"),
        ("key=user:42 cache miss", "key=user:42 cache miss"),
        ("tokens=12", "tokens=12"),
        ("prompt_tokens=12 max_tokens: 512 token_count=3", "prompt_tokens=12 max_tokens: 512 token_count=3"),
        ("password_length=12 session_id=abc", "password_length=12 session_id=abc"),
        ("invalid password for user bob", "invalid password for user bob"),
        ('password: ""', 'password: ""'),
        ("status=200 code=200 latency=3ms", "status=200 code=200 latency=3ms"),
        ("passport=P1234 compass=1 bypass=on", "passport=P1234 compass=1 bypass=on"),
        (
            "password_reset_count=3 passwordless=true pass_rate=0.9",
            "password_reset_count=3 passwordless=true pass_rate=0.9",
        ),
        ("PWD=/srv/app OLDPWD=/home/app pwd: '~/src'", "PWD=/srv/app OLDPWD=/home/app pwd: '~/src'"),
        ("GET /api/pwd/reset 200", "GET /api/pwd/reset 200"),
        ("pwd=hunter2", f"pwd={S}"),
    ],
)
def test_names_and_values(scrubber: Scrubber, text: str, expected: str) -> None:
    _check(scrubber, text, expected)


# --- extra patterns -----------------------------------------------------------------------------------


def test_extra_patterns_hide_every_match() -> None:
    scrubber = Scrubber([r"sk-[A-Za-z0-9]{8,}", r"\b\d{16}\b"])
    _check(
        scrubber,
        "keys sk-abcdefgh12 and sk-zyxwvuts99, card 4111111111111111",
        f"keys {S} and {S}, card {S}",
    )
    _check(scrubber, "sk-short stays", "sk-short stays")


def test_extra_pattern_with_secret_group_hides_only_the_group() -> None:
    scrubber = Scrubber([r"tenant=(?P<secret>[a-f0-9]{8})\b", r"x(?P<secret>y)?z"])
    _check(scrubber, "tenant=deadbeef region=eu", f"tenant={S} region=eu")
    _check(scrubber, "xyz xz", f"x{S}z xz")  # a group that did not take part hides nothing


def test_extra_patterns_that_match_redacted_or_nothing_stay_idempotent() -> None:
    scrubber = Scrubber([r"[a-z]{8}", r"q*"])
    once = scrubber.scrub_text("pwd=hunter22 abcdefgh")
    assert once == f"pwd={S} {S}"
    assert scrubber.scrub_text(once) == once


def test_bad_extra_pattern_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"invalid scrub pattern '\(unclosed'"):
        Scrubber(["fine", "(unclosed"])


def test_extra_patterns_are_kept_for_reporting() -> None:
    scrubber = Scrubber(["a+", "b+"])
    assert scrubber.extra_patterns == ("a+", "b+")
    assert "a+" in repr(scrubber)


# --- headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "X-API-Key",
        "x-auth-token",
        "X-Goog-Upload-Token-Id",
        "x-client-secret-id",
        "X-Admin-Password",
        "x-apikey",
        "api_key",
        "X-Amz-Security-Token",
    ],
)
def test_secret_headers_are_hidden_entirely(scrubber: Scrubber, name: str) -> None:
    assert scrubber.scrub_header(name, "anything at all") == S


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Accept", "application/json", "application/json"),
        ("x-ratelimit-remaining-tokens", "9000", "9000"),
        ("Location", "https://app/cb?code=abc&state=1", f"https://app/cb?code={S}&state=1"),
        ("Referer", "https://app/p?token=abc", f"https://app/p?token={S}"),
        ("X-Debug", "Bearer abc", f"Bearer {S}"),
    ],
)
def test_other_headers_are_scrubbed_as_text(scrubber: Scrubber, name: str, value: str, expected: str) -> None:
    assert scrubber.scrub_header(name, value) == expected


# --- attribute values and log fields --------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "token",
        "api_key",
        "llm.provider.api-key",
        "secret",
        "client_secret",
        "authorization",
        "cookie",
        "http.request.header.authorization",
        "http.request.header.x-api-key",
        "http.response.header.set-cookie",
        "http.request.header.x-goog-upload-token-id",
        "rpc.grpc.request.metadata.authorization",
        "accessToken",
        "AWS_SECRET_ACCESS_KEY",
        "database password",
        "pass",
        "db_pass",
        "pw",
        "smtp.pw",
        "sessionid",
        "JSESSIONID",
        "PHPSESSID",
    ],
)
def test_secret_keys(scrubber: Scrubber, key: str) -> None:
    assert scrubber.is_secret_key(key)
    assert scrubber.scrub_value(key, "hunter2") == S


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.request.max_tokens",
        "max_tokens",
        "tokens",
        "token_count",
        "llm.token_count.prompt",
        "http.response.header.x-ratelimit-remaining-tokens",
        "monkey",
        "keyboard",
        "messaging.kafka.message.key",
        "session.id",
        "dsn",
        "http.response.status_code",
        "password_length",
        "password_reset_count",
        "passport",
        "compass",
        "bypass",
        "session_id",
        "OLDPWD",
    ],
)
def test_keys_that_are_not_secret(scrubber: Scrubber, key: str) -> None:
    assert not scrubber.is_secret_key(key)
    assert scrubber.scrub_value(key, 512) == 512
    assert scrubber.scrub_value(key, "plain") == "plain"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # Under a secret key everything goes, in the same shape; None and booleans cannot leak.
        ("password", 123456, S),
        ("password", 1.5, S),
        ("password", b"raw", S),
        ("password", None, None),
        ("token", True, True),
        ("http.request.header.cookie", ["a=b", "c=d"], [S, S]),
        ("credentials", {"user": "bob", "pass": "x"}, {"user": S, "pass": S}),
        ("api_key", ("a", 1, False), (S, S, False)),
        ("secret", object, S),
        # Elsewhere strings are scrubbed as text and everything else is left alone.
        ("dsn", "postgresql://u:pw@db/x", f"postgresql://u:{S}@db/x"),
        ("url.full", "https://h/p?sig=abc", f"https://h/p?sig={S}"),
        ("exception.message", "401 for token=abc", f"401 for token={S}"),
        ("tags", ["token=a", "ok", 3], [f"token={S}", "ok", 3]),
        ("pair", ("ok", "password: x"), ("ok", f"password: {S}")),
        ("gen_ai.usage.input_tokens", 1234, 1234),
        ("ratio", 0.5, 0.5),
        ("flag", True, True),
        ("blob", b"token=abc", b"token=abc"),
    ],
)
def test_scrub_value(scrubber: Scrubber, key: str, value: Any, expected: Any) -> None:
    assert scrubber.scrub_value(key, value) == expected
    assert scrubber.scrub_value(key, expected) == expected


def test_pwd_holding_a_path_is_the_working_directory(scrubber: Scrubber) -> None:
    assert scrubber.scrub_value("PWD", "/srv/app") == "/srv/app"
    assert scrubber.scrub_mapping({"PWD": "~/src", "pwd": "hunter2"}) == {"PWD": "~/src", "pwd": S}
    assert scrubber.scrub_value("db_pwd", "/not/a/directory") == S


# --- W3C tracestate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("vendor=abc, password=hunter2", f"vendor=abc, password={S}"),
        ("password=hunter2,vendor=abc", f"password={S},vendor=abc"),
        ("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ("tenant@sessionid=x,api_key@vendor=y,t@v=z", f"tenant@sessionid={S},api_key@vendor={S},t@v=z"),
        ("dd=s:1;o:rum;t.tid:abc", "dd=s:1;o:rum;t.tid:abc"),
        ("v=Bearer abc", f"v=Bearer {S}"),
        ("tokens=12,session.id=7", "tokens=12,session.id=7"),
        ("", ""),
    ],
)
def test_trace_state_members_with_secret_keys_are_hidden(
    scrubber: Scrubber, header: str, expected: str
) -> None:
    assert scrubber.scrub_trace_state(header) == expected
    assert scrubber.scrub_trace_state(expected) == expected


def test_trace_state_stays_valid_w3c() -> None:
    """What the exporter writes can still be parsed as a tracestate, members in order."""
    from opentelemetry.trace import TraceState

    scrubbed = Scrubber().scrub_trace_state("vendor=abc,password=hunter2,pw=x")
    assert list(TraceState.from_header([scrubbed]).items()) == [("vendor", "abc"), ("password", S), ("pw", S)]


def test_nested_mappings_are_scrubbed_by_key(scrubber: Scrubber) -> None:
    event: dict[str, Any] = {
        "event": "provider call failed",
        "gen_ai.usage.input_tokens": 12,
        "request": {
            "url": "https://h/v1?api_key=SECRET1",
            "headers": {"Authorization": "Bearer SECRET2", "Accept": "json", 3: "token=x"},
            "retries": [{"password": "x"}, {"note": "password: y"}],
        },
        "auth": {"user": "bob"},
    }
    assert scrubber.scrub_mapping(event) == {
        "event": "provider call failed",
        "gen_ai.usage.input_tokens": 12,
        "request": {
            "url": f"https://h/v1?api_key={S}",
            "headers": {"Authorization": S, "Accept": "json", 3: f"token={S}"},
            "retries": [{"password": S}, {"note": f"password: {S}"}],
        },
        "auth": {"user": S},
    }
    assert event["request"]["url"] == "https://h/v1?api_key=SECRET1", "the input is not modified"


# --- properties -------------------------------------------------------------------------------------

# Pieces the rules care about, so that random text hits them often.
_PIECES = [
    *"aAbekKnopsStwxyz019=:&?#@/;,.-_ \t\n\r\"'\\[]{}()+",
    *("token", "password", "Bearer ", "Basic ", "://", "api_key", "Cookie: ", "code", REDACTED),
    *("\u017f", "\u212a"),  # they fold to "s" and "k" in Unicode case-insensitive matching
    *("%3F", "%3D", "%26", "%25", "%5F", "%3B", "jsessionid", "pw", "authorization=", "b'"),
    *("-----BEGIN PRIV" "ATE KEY" "-----", "-----END PRIV" "ATE KEY" "-----"),
]
_TRICKY = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)

_SECRETS = ["SECRET1", "hunter2", "sk-proj-Abc_123XYZ", "p@ss:w0rd!", "eyJhbGciOi.eyJzdWIi.c2ln-_x"]
_FORMS = [
    "https://api.example.com/v1/chat?api_key={}&model=llama",
    "https://bucket.s3.amazonaws.com/o?X-Amz-Date=1&X-Amz-Signature={}",
    "/oauth/cb?code={}",
    "postgresql://router:{}@db:5432/app",
    "Authorization: Bearer {}",
    "bearer {}",
    "token={}",
    "password: {}",
    '{{"api_key": "{}"}}',
    "{{'client_secret': '{}', 'n': 1}}",
    "X-API-Key: {}",
    "Cookie: session={}; theme=dark",
    # Issue 16, item 4.
    "GET /health?api%5Fkey={} HTTP/1.1",
    "/login?next=%2Fcb%3Ftoken%3D{}",
    "/health;jsessionid={}",
    "authorization=Token {}",
    "private_key=-----BEGIN PRIV" "ATE KEY" "-----\nMIIE{}\n-----END PRIV" "ATE KEY" "-----",
    "{{'password': b'{}'}}",
    "password:\n{}",
    "postgresql://router:p/{}#w?d@db:5432/app",
    "pw={}",
    '{{"pass": "{}"}}',
    "sessionid={}",
]


@given(st.text(max_size=200))
def test_any_text_never_raises_and_is_idempotent(text: str) -> None:
    once = Scrubber().scrub_text(text)
    assert Scrubber().scrub_text(once) == once


@settings(max_examples=300)
@given(_TRICKY)
def test_tricky_text_is_idempotent(text: str) -> None:
    scrubber = Scrubber([r"x(?P<secret>y+)z", r"0{3,}"])
    once = scrubber.scrub_text(text)
    assert scrubber.scrub_text(once) == once
    assert scrubber.scrub_header("Location", once) == once
    bare_query = scrubber.scrub_value("url.query", text)
    assert scrubber.scrub_value("url.query", bare_query) == bare_query


@settings(max_examples=300)
@given(
    before=_TRICKY,
    after=_TRICKY,
    form=st.sampled_from([*_FORMS, "Basic {}"]),
    secret=st.sampled_from(_SECRETS),
    separator=st.sampled_from([" ", " | ", "\n"]),
)
def test_planted_secrets_never_survive(
    before: str, after: str, form: str, secret: str, separator: str
) -> None:
    if form.startswith("Basic"):
        secret = base64.b64encode(f"router:{secret}".encode()).decode()
    # The separator keeps the surroundings from becoming part of a name or of the secret.
    text = separator.join((before, form.format(secret), after))
    assert secret not in Scrubber().scrub_text(text)


def test_long_adversarial_inputs_finish(scrubber: Scrubber) -> None:
    """Shapes that would make a careless expression backtrack quadratically (seconds, not ms)."""
    for text in (
        "a" * 20_000,
        "a_" * 10_000 + "password",
        "token" * 4_000 + "=",
        "password=" * 2_000,
        'password="' + "a" * 20_000,
        "password: '" + "a b" * 7_000,
        "?" + "a_" * 10_000 + "=",
        "x://u:" + "@" * 20_000,
        "a://b:" * 3_000 + "@",
        "bearer a:" * 3_000,
        "basic " + "a" * 20_000,
        "Cookie: " * 3_000,
        '"' + "\\" * 20_000,
        "%3F" * 7_000,
        "?a%" * 7_000 + "=",
        "%25" * 7_000 + "3Fa%3D",
        "&%3Fa" * 4_000 + "%3D",
        ";a=" * 7_000,
        "a=%" * 7_000,
        "-----BEGIN PRIV" "ATE KEY" "-----" * 1_000,
        "-----BEGIN" + " A" * 10_000,
        "x://u:a/" + "@" * 20_000,
        "x://u:a/" * 3_000 + "@h",
        "a://b:c#" * 3_000 + "@",
        "password:\n" * 3_000,
        "authorization=a " * 3_000,
        "{'password': b'" + "a" * 20_000,
    ):
        once = scrubber.scrub_text(text)
        assert scrubber.scrub_text(once) == once
    for key in ("a_" * 10_000, "a-" * 10_000 + "password", "x" * 20_000):
        scrubber.is_secret_key(key)
        scrubber.scrub_header(key, "value")
