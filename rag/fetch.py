"""Stage 0: articles given as links (``rag ingest --url URL``, ``--urls FILE``) fetched into the
corpus folder, where the loader reads them like saved pages (so a re-ingest needs no network, and
the page as it was fetched is kept).

Only ``http``/``https``. Before any connection, the host name is resolved and every address it
resolves to must be public: loopback, private, link-local, shared (CGNAT), multicast, reserved
and unspecified addresses are refused (IPv4 inside IPv6 too), unless the operator allows them
(``RAG_FETCH_ALLOW_PRIVATE``). The connection then goes to the very address that was checked
(a second DNS answer cannot swap it), and every redirect is checked again the same way. The chatbot
lives on an intranet and must not become a proxy into it.

A fetch has a total time limit (``RAG_FETCH_TIMEOUT``), a size limit (``RAG_MAX_ARTICLE_BYTES``,
checked on ``Content-Length`` and while reading), at most :data:`MAX_REDIRECTS` redirects, and
says who it is (:data:`USER_AGENT`). Only web pages (HTML) are taken.
"""
from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import re
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from . import __version__
from .settings import Settings

USER_AGENT = (f"rag-news-qa/{__version__} (article fetcher of a question-answering chatbot over "
              "Vietnamese news; one request per link given by an editor)")
MAX_REDIRECTS = 5
#: Content types taken, and the suffix the page is stored under.
PAGE_TYPES = {"text/html": ".html", "application/xhtml+xml": ".html"}
#: Folder of the corpus where fetched pages are stored (``web/<host>/<name>.html``).
WEB_FOLDER = "web"
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024


class FetchError(Exception):
    """A link that could not be fetched; the message says why."""


@dataclass(frozen=True)
class Fetched:
    url: str  # as given
    final_url: str  # after redirects
    content_type: str
    data: bytes
    charset: str = ""  # as the Content-Type header declares it


@dataclass(frozen=True)
class FetchResult:
    url: str
    path: str = ""  # where the page was stored, relative to the corpus folder
    size: int = 0
    error: str = ""

    def __str__(self) -> str:
        return f"FAILED {self.url}: {self.error}" if self.error else \
            f"fetched {self.url} -> {self.path} ({self.size:,} bytes)"


# --------------------------------------------------------------------------- addresses


def parse_allowance(setting: str) -> tuple[bool, list]:
    """``RAG_FETCH_ALLOW_PRIVATE`` as ``(all allowed, networks allowed)``; a malformed entry raises
    :class:`ValueError` naming it."""
    setting = (setting or "").strip()
    if setting.lower() in ("1", "true", "yes", "on", "*"):
        return True, []
    if setting.lower() in ("", "0", "false", "no", "off"):
        return False, []
    networks = []
    for item in filter(None, (part.strip() for part in setting.split(","))):
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"RAG_FETCH_ALLOW_PRIVATE: {item!r} is neither 1 nor an address or CIDR") from None
    return False, networks


def _embedded_ipv4(ip):
    """The IPv4 address an IPv6 one carries (mapped ``::ffff:a.b.c.d``, NAT64, 6to4), if any."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public(address: str) -> bool:
    """Whether an address is a public unicast one (an IPv6 address carrying an IPv4 one: that one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return is_public(str(inner))
    return ip.is_global and not ip.is_multicast


def address_allowed(address: str, allow_private: str = "") -> bool:
    if is_public(address):
        return True
    everything, networks = parse_allowance(allow_private)
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return everything or any(ip.version == net.version and ip in net for net in networks)


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an address that may be fetched; :class:`FetchError` otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"not a valid address ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"only http and https addresses are fetched, not {scheme or 'this'}:")
    if not parts.hostname:
        raise FetchError("the address has no host")
    if parts.username or parts.password:
        raise FetchError("addresses with a user name or password are not fetched")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve(host: str, port: int, allow_private: str = "") -> list[str]:
    """The addresses to connect to for ``host``: every address it resolves to must be allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"the host {host} cannot be resolved ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    refused = [a for a in addresses if not address_allowed(a, allow_private)]
    if refused:
        raise FetchError(f"{host} is a loopback, private or link-local address ({', '.join(refused)}): "
                         "refused (RAG_FETCH_ALLOW_PRIVATE allows such addresses)")
    if not addresses:
        raise FetchError(f"the host {host} has no address")
    return addresses


# --------------------------------------------------------------------------- fetching


def fetch(url: str, *, allow_private: str = "", timeout: float = 20, max_bytes: int = 5_000_000) -> Fetched:
    """The page at ``url``, following redirects; :class:`FetchError` with the reason otherwise."""
    parse_allowance(allow_private)  # a malformed setting is an error before anything is done
    deadline = time.monotonic() + timeout
    current = url.strip()
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port = check_url(current)
        addresses = resolve(host, port, allow_private)
        status, location, response, connection = _request(current, scheme, host, port, addresses, deadline)
        try:
            if status in _REDIRECTS:
                if not location:
                    raise FetchError(f"HTTP {status} redirect without a Location")
                current = urljoin(current, location)
                continue
            if status != 200:
                raise FetchError(f"HTTP {status} {response.reason}".strip())
            content_type = (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
            if content_type not in PAGE_TYPES:
                raise FetchError(f"not a web page (Content-Type {content_type or 'missing'}): only HTML "
                                 "pages are fetched; save a PDF or Word file into the corpus folder")
            data = _read(response, connection, max_bytes, deadline)
            charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", response.getheader("Content-Type") or "", re.I)
            return Fetched(url, current, content_type, data, charset.group(1).lower() if charset else "")
        finally:
            connection.close()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("timed out (RAG_FETCH_TIMEOUT)")
    return left


def _request(url: str, scheme: str, host: str, port: int, addresses: list[str], deadline: float):
    """One GET, connected to the first of ``addresses`` (all checked) that answers, with ``host`` as
    Host and TLS name."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=_remaining(deadline),
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=_remaining(deadline))

    def connect_to_checked(_address, timeout=None, source_address=None):
        for i, address in enumerate(addresses):
            try:
                return socket.create_connection((address, port), timeout, source_address)
            except OSError:
                if i == len(addresses) - 1:
                    raise

    connection._create_connection = connect_to_checked  # never a second DNS lookup
    try:
        connection.request("GET", target, headers={
            "User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml;q=0.9",
            "Accept-Encoding": "gzip", "Accept-Language": "vi,en;q=0.5"})
        response = connection.getresponse()
    except FetchError:
        connection.close()
        raise
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        if isinstance(exc, TimeoutError | socket.timeout):
            raise FetchError("timed out (RAG_FETCH_TIMEOUT)") from None
        raise FetchError(f"cannot connect to {host} ({type(exc).__name__}: {exc})") from None
    return response.status, response.getheader("Location"), response, connection


def _read(response, connection, max_bytes: int, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise FetchError(_too_large(int(length), max_bytes))
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise FetchError(f"unsupported Content-Encoding {encoding}")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    chunks, size = [], 0
    while True:
        if connection.sock is not None:  # each read may wait only for what is left of the time
            connection.sock.settimeout(_remaining(deadline))
        try:
            chunk = response.read(_CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError | socket.timeout):
                raise FetchError("timed out (RAG_FETCH_TIMEOUT)") from None
            raise FetchError(f"the page could not be read ({type(exc).__name__})") from None
        if not chunk:
            break
        if inflate is not None:  # a bounded inflate: a gzip bomb stops at the limit
            chunk = inflate.decompress(chunk, max_bytes + 1 - size)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(_too_large(None, max_bytes))
        _remaining(deadline)
    return b"".join(chunks)


def _too_large(size: int | None, limit: int) -> str:
    told = f"{size:,} bytes" if size is not None else "larger"
    return f"page too large: {told}, more than the limit of {limit:,} (RAG_MAX_ARTICLE_BYTES)"


# --------------------------------------------------------------------------- storing


def stored_name(final_url: str, suffix: str = ".html") -> str:
    """Where a fetched page is kept in the corpus folder: ``web/<host>/<last part of its path>-<hash>``
    (ASCII; the same address always gives the same file, so fetching it again updates it)."""
    parts = urlsplit(final_url)
    host = re.sub(r"[^a-z0-9.-]", "-", (parts.hostname or "host").lower().removeprefix("www.")).strip(".-") or "host"
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    last = re.sub(r"\.(s?html?|php|aspx?)$", "", last, flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", last.lower()).strip("-")[:80] or "trang"
    digest = hashlib.sha256(final_url.encode("utf-8")).hexdigest()[:8]
    return f"{WEB_FOLDER}/{host}/{slug}-{digest}{suffix}"


def store(corpus_dir: Path, page: Fetched) -> str:
    """Write a fetched page into the corpus folder (atomically), marked with its address as a
    browser marks a saved page; returns its path relative to the corpus."""
    rel, data = stored_page(page)
    target = Path(corpus_dir) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp"  # hidden: never read as an article
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return rel


def stored_page(page: Fetched) -> tuple[str, bytes]:
    """Where a fetched page goes in the corpus folder, and its bytes as stored there: marked
    with its address as a browser marks a saved page."""
    mark = f"<!-- saved from url=({len(page.final_url):04d}){page.final_url} -->\n".encode("utf-8")
    return stored_name(page.final_url, PAGE_TYPES[page.content_type]), mark + _as_utf8(page)


def _as_utf8(page: Fetched) -> bytes:
    """The page in UTF-8 when its header named another charset (the header is not stored, and
    the loader reads UTF-8 first); as fetched otherwise."""
    if page.charset in ("", "utf-8", "utf8"):
        return page.data
    try:
        page.data.decode("utf-8")
        return page.data
    except UnicodeDecodeError:
        pass
    try:
        return page.data.decode(page.charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return page.data


def read_url_list(path: Path) -> list[str]:
    """Links from a file, one a line; blank lines and lines starting with ``#`` are skipped."""
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def fetch_to_corpus(urls: list[str], settings: Settings) -> list[FetchResult]:
    """Fetch each link and store it in the corpus folder; one result per link, in order. A link
    that fails leaves the corpus as it was (a page fetched before stays)."""
    corpus = Path(settings.corpus_dir)
    if not corpus.is_dir():
        raise FileNotFoundError(f"Corpus folder not found: {corpus}; the fetched pages are stored there")
    parse_allowance(settings.fetch_allow_private)
    results = []
    for url in dict.fromkeys(urls):
        try:
            page = fetch(url, allow_private=settings.fetch_allow_private, timeout=settings.fetch_timeout,
                         max_bytes=settings.max_article_bytes)
            results.append(FetchResult(url, store(corpus, page), len(page.data)))
        except FetchError as exc:
            results.append(FetchResult(url, error=str(exc)))
        except OSError as exc:  # the corpus folder cannot be written
            results.append(FetchResult(url, error=f"cannot be stored ({exc.strerror or exc})"))
    return results
