"""Issue 13, links: `rag ingest --url` against a real HTTP server on loopback (allowed only with
RAG_FETCH_ALLOW_PRIVATE), which records every request it gets. No test contacts any other address:
addresses elsewhere are only resolved and refused, never connected to."""
from __future__ import annotations

import gzip
import http.server
import ipaddress
import json
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import run_rag
from documents import PARAGRAPHS, TITLE, cp1258, news_page
from hypothesis import given, strategies as st

from rag.corpus import load_corpus
from rag.fetch import (USER_AGENT, FetchError, address_allowed, fetch, fetch_to_corpus, read_url_list, store,
                       stored_name)
from rag.index import Store

CANONICAL = "https://laodongthudo.vn/ha-noi-va-buenos-aires-ky-ket-bien-ban-ghi-nho-150001.html"
LIMIT = 40_000


class Site(http.server.ThreadingHTTPServer):
    """A news site on loopback: pages by path, each ``(status, headers, body)``; ``requests``
    records the path and headers of every request received."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[tuple[str, dict]] = []
        self.pages: dict[str, tuple[int, dict, bytes]] = {}
        super().__init__((host, 0), _Handler)
        self.url = f"http://{host}:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.requests.append((self.path, dict(self.headers)))
        status, headers, body = self.server.pages.get(self.path, (404, {"Content-Type": "text/html"}, b"Not found"))
        if headers.get("X-Slow"):
            time.sleep(float(headers["X-Slow"]))
        self.send_response(status)
        for name, value in headers.items():
            if name != "X-Slow":
                self.send_header(name, value)
        if "Content-Length" not in headers and not headers.get("X-No-Length"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@contextmanager
def serving(host: str = "127.0.0.1"):
    site = Site(host)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()


HTML = {"Content-Type": "text/html; charset=utf-8"}


def _news_site(site: Site) -> None:
    page = news_page(url=CANONICAL, published="2022-11-21", author="Minh Anh", site="Lao Động Thủ Đô")
    big = news_page(paragraphs=PARAGRAPHS * 300)
    assert len(big) > LIMIT
    site.pages.update({
        "/bai-viet.html": (200, HTML, page),
        "/bai-cu": (301, {"Location": "/bai-viet.html"}, b""),
        "/rat-lon.html": (200, HTML, big),
        "/rat-lon-khong-do-dai.html": (200, {**HTML, "X-No-Length": "1", "Connection": "close"}, big),
        "/du-lieu.json": (200, {"Content-Type": "application/json"}, b'{"title": "x"}'),
        "/nen.html": (200, {**HTML, "Content-Encoding": "gzip"}, gzip.compress(page)),
        "/toi-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/vong": (302, {"Location": "/vong"}, b""),
        # The charset only in the header, as some servers do: stored in UTF-8.
        "/cu.html": (200, {"Content-Type": "text/html; charset=windows-1258"},
                     cp1258(page.decode().replace('<meta charset="utf-8">', ""))),
    })


# --------------------------------------------------------------------------- refused before any connection


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_loopback_link_is_refused_before_any_connection(host, corpus, settings):
    with serving() as site:
        url = site.url.replace("127.0.0.1", host) + "/bai-viet.html"
        [result] = fetch_to_corpus([url], settings)
        assert "loopback, private or link-local address" in result.error and "RAG_FETCH_ALLOW_PRIVATE" in result.error
        assert site.requests == []  # the server saw nothing
    assert not (corpus / "web").exists()


def test_rag_ingest_refuses_a_loopback_link_without_the_setting(corpus):
    with serving() as site:
        _news_site(site)
        result = run_rag("ingest", "--quiet", "--url", f"{site.url}/bai-viet.html")
        assert site.requests == []
    assert result.returncode == 1, result.stderr
    assert f"FAILED {site.url}/bai-viet.html: 127.0.0.1 is a loopback, private or link-local address" in result.stdout
    assert "Articles: 2 added" in result.stdout  # the rest is indexed


@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "only http and https addresses are fetched, not file:"),
    ("ftp://example.org/a.html", "only http and https addresses are fetched, not ftp:"),
    ("http://user:secret@example.org/", "addresses with a user name or password are not fetched"),
    ("http://2130706433/", "loopback, private or link-local"),  # 127.0.0.1 written as a number
    ("http://0x7f.1/", "loopback, private or link-local"),
    ("http://169.254.169.254/latest/meta-data/", "loopback, private or link-local"),
    ("http://10.1.2.3/", "loopback, private or link-local"),
    ("http://[::ffff:192.168.1.1]/", "loopback, private or link-local"),
    ("http://[fe80::1]/", "loopback, private or link-local"),
])
def test_other_schemes_credentials_and_private_addresses_are_refused(url, reason):
    with pytest.raises(FetchError, match=reason.replace("(", r"\(")):
        fetch(url, timeout=5)


private_networks = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "::1/128", "fc00::/7", "fe80::/10"]


@given(st.sampled_from(private_networks).flatmap(lambda n: st.ip_addresses(network=n)))
def test_no_private_address_is_allowed_by_default(ip):
    assert not address_allowed(str(ip))
    assert address_allowed(str(ip), "1")
    if ip.version == 4:  # nor when it travels inside an IPv6 address
        assert not address_allowed(f"::ffff:{ip}") and not address_allowed(f"64:ff9b::{ip}")
        assert not address_allowed(str(ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80))))


@given(st.ip_addresses(v=4))
def test_an_allowed_network_allows_its_addresses_only(ip):
    inside = ip in ipaddress.ip_network("192.168.10.0/24")
    assert address_allowed(str(ip), "192.168.10.0/24, 10.9.8.7") == (inside or str(ip) == "10.9.8.7" or (ip.is_global and not ip.is_multicast))


def test_a_redirect_to_an_address_not_allowed_is_refused_before_connecting_to_it():
    """Only 127.0.0.1 is allowed; a redirect to another loopback address (a second server on
    127.0.0.2) is refused, and that server sees nothing."""
    try:
        other_cm = serving("127.0.0.2")
        other = other_cm.__enter__()
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound here")
    try:
        with serving() as site:
            site.pages["/di"] = (302, {"Location": f"{other.url}/bai-viet.html"}, b"")
            with pytest.raises(FetchError, match="127.0.0.2 is a loopback, private or link-local address"):
                fetch(f"{site.url}/di", allow_private="127.0.0.1", timeout=5)
            assert [path for path, _ in site.requests] == ["/di"]
        assert other.requests == []
    finally:
        other_cm.__exit__(None, None, None)


# --------------------------------------------------------------------------- fetched with the setting


def test_fetch_follows_redirects_and_refuses_errors_large_pages_and_other_types():
    with serving() as site:
        _news_site(site)
        get = lambda path, **kw: fetch(site.url + path, allow_private="1", timeout=5, max_bytes=LIMIT, **kw)  # noqa: E731
        page = get("/bai-cu")
        assert (page.final_url, page.content_type) == (f"{site.url}/bai-viet.html", "text/html")
        assert TITLE.encode() in page.data
        assert get("/nen.html").data == page.data  # gzip, inflated
        # By name: resolved, checked, connected to an address checked (each is tried in turn).
        by_name = fetch(site.url.replace("127.0.0.1", "localhost") + "/bai-viet.html", allow_private="1", timeout=5)
        assert by_name.data == page.data
        legacy = get("/cu.html")
        assert legacy.charset == "windows-1258"
        with tempfile.TemporaryDirectory() as folder:
            stored = store(Path(folder), legacy)
            (Path(folder) / stored).read_bytes().decode("utf-8")  # stored in UTF-8: the header is not kept
            [article] = load_corpus(Path(folder)).articles
        assert article.source_path == stored and (article.title, article.paragraphs) == (TITLE, PARAGRAPHS)
        for path, reason in [("/khong-co", "HTTP 404"), ("/rat-lon.html", f"page too large: {len(news_page(paragraphs=PARAGRAPHS * 300)):,} bytes"),
                             ("/rat-lon-khong-do-dai.html", "page too large: larger, more than the limit of 40,000"),
                             ("/du-lieu.json", "not a web page (Content-Type application/json)"),
                             ("/toi-file", "only http and https addresses are fetched, not file:"),
                             ("/vong", "more than 5 redirects")]:
            with pytest.raises(FetchError, match=reason.replace("(", r"\(").replace(")", r"\)")):
                get(path)
        # Every request said who it was.
        assert {headers["User-Agent"] for _, headers in site.requests} == {USER_AGENT}


def test_https_certificates_are_verified(tmp_path):
    """An HTTPS page with a self-signed certificate (made by openssl for 127.0.0.1) is refused:
    the certificate is checked against the host name."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    with serving() as site:
        site.pages["/bai-viet.html"] = (200, HTML, news_page())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        site.socket = context.wrap_socket(site.socket, server_side=True)
        url = site.url.replace("http://", "https://") + "/bai-viet.html"
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(url, allow_private="1", timeout=5)


def test_a_slow_page_times_out():
    with serving() as site:
        site.pages["/cham.html"] = (200, {**HTML, "X-Slow": "3"}, news_page())
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            fetch(f"{site.url}/cham.html", allow_private="1", timeout=1)
        assert time.monotonic() - started < 2.5


@pytest.mark.slow
def test_rag_ingest_url_stores_the_page_indexes_it_and_reingests_without_network(corpus, settings, tmp_path):
    with serving() as site:
        _news_site(site)
        links = tmp_path / "links.txt"
        links.write_text(f"# the week's articles\n{site.url}/khong-co\n\n{site.url}/du-lieu.json\n", encoding="utf-8")
        env = {"RAG_FETCH_ALLOW_PRIVATE": "1", "RAG_MAX_ARTICLE_BYTES": str(LIMIT)}
        result = run_rag("ingest", "--quiet", "--url", f"{site.url}/bai-cu", "--url", f"{site.url}/rat-lon.html",
                         "--urls", str(links), env=env)
    assert result.returncode == 1, result.stderr
    stored = stored_name(f"{site.url}/bai-viet.html")
    out = result.stdout
    assert f"fetched {site.url}/bai-cu -> {stored} (" in out
    assert f"FAILED {site.url}/rat-lon.html: page too large" in out
    assert f"FAILED {site.url}/khong-co: HTTP 404" in out
    assert f"FAILED {site.url}/du-lieu.json: not a web page" in out
    assert "Articles: 3 added" in out and "By format: .html 1 added; .txt 2 added" in out
    assert (corpus / stored).read_bytes().startswith(f"<!-- saved from url=(".encode())
    entry = Store(settings.store_dir).manifest()["articles"][stored.removesuffix(".html")]
    assert entry["title"] == TITLE

    # The server is gone: a re-ingest reads the stored page, nothing changes.
    again = run_rag("ingest", "--quiet")
    assert again.returncode == 0 and "0 added, 0 updated, 0 removed, 3 unchanged" in again.stdout
    # Its source card: the page's own link (canonical, not the loopback address), outlet, date, author.
    asked = run_rag("ask", "--json", "Hà Nội và Buenos Aires ký kết hợp tác trong những lĩnh vực nào?")
    cited = json.loads(asked.stdout)["citations"][0]
    assert (cited["url"], cited["outlet"], cited["date"], cited["author"]) == (
        CANONICAL, "Lao Động Thủ Đô", "2022-11-21", "Minh Anh")


def test_read_url_list_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "links.txt"
    path.write_text("\ufeff# tuần này\nhttps://a.vn/1.html\n\n   https://b.vn/2.html  \n", encoding="utf-8")
    assert read_url_list(path) == ["https://a.vn/1.html", "https://b.vn/2.html"]


def test_stored_names_are_stable_ascii_paths_under_web():
    name = stored_name("https://www.laodongthudo.vn/tiếp-tục-hợp-tác-149123.html?x=1")
    assert name == stored_name("https://www.laodongthudo.vn/tiếp-tục-hợp-tác-149123.html?x=1")
    assert name.startswith("web/laodongthudo.vn/ti-p-t-c-h-p-t-c-149123-") and name.endswith(".html")
    assert name.isascii() and ".." not in name
    assert stored_name("http://[::1]:8080/") .startswith("web/1/trang-")


def test_loopback_is_really_loopback():
    """The premise of the tests above: the loopback names used resolve to loopback only."""
    assert {info[4][0] for info in socket.getaddrinfo("localhost", 80)} <= {"127.0.0.1", "::1"}
