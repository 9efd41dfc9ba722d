"""*Test key* says why a check failed: the network, a name lookup, the secure connection,
no answer in time, or Google's own answer (a rejected key, a used-up quota). The pure
classifier gets the real exception types, chained as httpx raises them; the real check
gets real failures on loopback (the test run allows no other network)."""

from __future__ import annotations

import errno
import socket
import ssl
import threading
from collections.abc import Iterator

import httpx2
import pytest
from google.genai import errors

from emodesk.live.emulator.tls import make_certificate
from emodesk.live.keycheck import Failure, check_api_key, explain_failure
from tests.support.keys import fake_api_key

pytestmark = pytest.mark.timeout(60)

KEY = fake_api_key("D-not-a-real-key")


def raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """`exc` as it is caught: raised from `cause`, with its traceback and chain."""
    try:
        try:
            if cause is not None:
                raise cause
        except BaseException as inner:
            raise exc from inner
        raise exc
    except BaseException as caught:
        return caught


def google_error(code: int, status: str, message: str, reason: str = "") -> errors.APIError:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    body = {"error": {"code": code, "message": message, "status": status, "details": details}}
    kind = errors.ServerError if code >= 500 else errors.ClientError
    return kind(code, body)


CASES = [
    (
        "connection refused",
        raised(httpx2.ConnectError("[Errno 111] Connection refused"), ConnectionRefusedError(
            errno.ECONNREFUSED, "Connection refused")),
        Failure.NO_NETWORK, "could not connect",
    ),
    (
        "network unreachable",
        raised(httpx2.ConnectError("[Errno 101] Network is unreachable"), OSError(
            errno.ENETUNREACH, "Network is unreachable")),
        Failure.NO_NETWORK, "no network connection",
    ),
    (
        "name lookup",
        raised(httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"),
               socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")),
        Failure.DNS, "could not be looked up (DNS)",
    ),
    (
        "certificate",
        raised(httpx2.ConnectError("certificate verify failed"), ssl.SSLCertVerificationError(
            1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")),
        Failure.TLS, "certificate is not trusted",
    ),
    (
        "tls",
        raised(httpx2.ConnectError("wrong version"), ssl.SSLError(1, "WRONG_VERSION_NUMBER")),
        Failure.TLS, "secure connection",
    ),
    (
        "connect timeout",
        raised(httpx2.ConnectTimeout("timed out"), TimeoutError("timed out")),
        Failure.TIMEOUT, "did not answer in time",
    ),
    ("read timeout", httpx2.ReadTimeout("timed out"), Failure.TIMEOUT, "did not answer in time"),
    (
        "invalid key",
        google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                     "API_KEY_INVALID"),
        Failure.REJECTED, "Google rejected the key",
    ),
    (
        "refused key",
        google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
        Failure.REJECTED, "Google refused the key",
    ),
    (
        "quota",
        google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota."),
        Failure.QUOTA, "quota is used up",
    ),
    (
        "server",
        google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
        Failure.SERVER, "the key was not judged",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "failure", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_failure_is_told_in_plain_words(
    exc: BaseException, failure: Failure, words: str
) -> None:
    explained = explain_failure(exc)
    assert explained.failure is failure
    assert words in explained.message
    assert "ConnectError" not in explained.message and "Errno" not in explained.message
    if failure not in (Failure.REJECTED, Failure.QUOTA):
        assert "not accepted" not in explained.message and "rejected" not in explained.message


def test_a_google_answer_wins_over_the_transport_under_it() -> None:
    """Google answered, so the network worked: the answer is what counts."""
    answer = raised(google_error(429, "RESOURCE_EXHAUSTED", "quota"), ConnectionResetError())
    assert explain_failure(answer).failure is Failure.QUOTA


def test_the_key_never_appears_in_the_message() -> None:
    exc = google_error(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}", "API_KEY_INVALID")
    message = explain_failure(exc).message
    assert KEY not in message and "[redacted]" in message


def test_an_unknown_failure_names_itself() -> None:
    explained = explain_failure(ValueError("odd"))
    assert explained.failure is Failure.OTHER and "ValueError: odd" in explained.message


# ---------------------------------------------------------------- real failures, on loopback


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def untrusted_tls_server(tmp_path) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """Completes TLS handshakes with a self-signed certificate no system trusts."""
    context = make_certificate(tmp_path).server_context()
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    server.close()


def test_no_server_to_connect_to_is_no_network_not_a_bad_key() -> None:
    ok, message = check_api_key(KEY, base_url=f"https://127.0.0.1:{closed_port()}/")
    assert not ok and message.startswith("could not connect to 127.0.0.1")
    assert "key was not checked" in message


def test_a_name_that_does_not_resolve_is_a_dns_failure() -> None:
    ok, message = check_api_key(KEY, base_url="https://nonexistent.invalid/")
    assert not ok and "could not be looked up (DNS)" in message


def test_an_untrusted_certificate_is_a_tls_failure(untrusted_tls_server: int) -> None:
    ok, message = check_api_key(KEY, base_url=f"https://127.0.0.1:{untrusted_tls_server}/")
    assert not ok and "certificate is not trusted" in message


def test_a_server_that_never_answers_is_a_timeout(silent_server: int) -> None:
    ok, message = check_api_key(KEY, base_url=f"https://127.0.0.1:{silent_server}/", timeout_s=0.5)
    assert not ok and "did not answer in time" in message


async def test_a_token_that_cannot_reach_the_live_service_is_not_called_refused() -> None:
    """A pasted token is tested as a token (a Live session); unreachable is not refused."""
    from emodesk.app.keys import ApiKeys

    async def use_key(key: str) -> None:
        raise AssertionError("testing never switches")

    for endpoint, words in (
        (f"wss://127.0.0.1:{closed_port()}/", "could not connect to 127.0.0.1"),
        ("wss://nonexistent.invalid/", "could not be looked up (DNS)"),
    ):
        keys = ApiKeys(use_key=use_key, endpoint=endpoint)
        ok, message = await keys.test("auth_tokens/not-a-real-token.0123")
        assert not ok and words in message, message
        assert message.endswith("the token was not checked") and "refused" not in message
