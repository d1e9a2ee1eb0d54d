"""Issue 10: `rag ingest` tried by a careless editor and by an attacker. Each finding, through
the real ``rag`` command (a subprocess), the real loader or the real service over a real index."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
from conftest import ARGENTINA, CUBA, run_rag

from rag.corpus import json_depth, load_corpus
from rag.index import Store

CUBA_QUESTION = "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"


def _failed(stdout: str) -> dict[str, str]:
    """``FAILED path: reason`` lines of an ingest summary, as ``{path: reason}``."""
    lines = [line.removeprefix("FAILED ") for line in stdout.splitlines() if line.startswith("FAILED ")]
    return dict(line.split(": ", 1) for line in lines)


def _articles(settings) -> set[str]:
    return set(Store(settings.store_dir).manifest()["articles"])


# --------------------------------------------------------------------------- 3. a bad date


def test_an_impossible_markdown_date_fails_that_file_only(corpus, settings):
    (corpus / "lao.md").write_text("---\ntitle: Đoàn Hà Nội thăm Lào\ndate: 2023-02-30\n---\n"
                                   "Đoàn đã tới Viêng Chăn.\n", encoding="utf-8")
    (corpus / "campuchia.md").write_text("---\ntitle: Đoàn Hà Nội thăm Campuchia\ndate: 2023-03-01\n---\n"
                                         "Đoàn đã tới Phnôm Pênh.\n", encoding="utf-8")
    result = run_rag("ingest", "--quiet")
    assert result.returncode == 1, result.stderr
    assert "3 added, 0 updated, 0 removed, 0 unchanged, 1 failed" in result.stdout
    assert _failed(result.stdout) == {"lao.md": "unreadable date '2023-02-30' (use a real date, yyyy-mm-dd)"}
    assert _articles(settings) == {CUBA, ARGENTINA, "campuchia"}


def test_the_chat_starts_on_its_index_when_a_file_has_a_bad_date(indexed, corpus, e5):
    from rag.api import Service

    (corpus / "lao.md").write_text("---\ntitle: Lào\ndate: 2023-02-30\n---\nĐoàn đã tới Viêng Chăn.\n",
                                   encoding="utf-8")
    service = Service(indexed)
    try:
        service.load(embeddings=e5)
        assert service.state == "ready" and service.info["articles"] == 2
        assert service.answerer().answer(CUBA_QUESTION).text.startswith("Nguyễn Thị Tuyến")
    finally:
        service.close()


# --------------------------------------------------------------------------- 4. symbolic links


def test_symlinks_leaving_the_corpus_are_refused_and_never_answered_from(corpus, settings, isolated):
    secret = isolated / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\nTài khoản root có mật khẩu bí mật.\n", encoding="utf-8")
    (corpus / "passwd.txt").symlink_to(secret)
    (corpus / "etc").symlink_to(secret.parent, target_is_directory=True)
    (corpus / "dangling.txt").symlink_to(corpus / "missing.txt")
    # A link that stays inside the corpus is the same article as the file it points to: indexed
    # once, under the file's name (issue 13: the same article twice is indexed once).
    (corpus / "alias").mkdir()
    (corpus / "alias" / "cuba.txt").symlink_to(corpus / f"{CUBA}.txt")

    result = run_rag("ingest", "--quiet")
    assert result.returncode == 1, result.stderr
    assert _failed(result.stdout) == {
        "dangling.txt": "broken symbolic link",
        "etc": "symbolic link to a folder outside the corpus folder: refused",
        "passwd.txt": "symbolic link leading outside the corpus folder: refused",
    }
    assert _articles(settings) == {CUBA, ARGENTINA}
    assert f"duplicate (the same article as {CUBA}.txt, indexed once) alias/cuba.txt" in result.stdout

    asked = run_rag("ask", "--json", "Tài khoản root có mật khẩu gì? root:x:0:0")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    shown = answer["answer"] + json.dumps(answer["citations"] + answer["related"], ensure_ascii=False)
    assert "root:x:0:0" not in shown and "mật khẩu bí mật" not in shown


def test_the_loader_refuses_a_link_to_an_outside_file_even_when_its_name_looks_inside(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (tmp_path / "corpus-secret.txt").write_text("Bí mật\n\nNội dung bí mật.\n", encoding="utf-8")
    # ../corpus-secret.txt starts with the corpus folder's name but is not inside it.
    (corpus / "sub" / "a.txt").symlink_to("../../corpus-secret.txt")
    os.mkfifo(corpus / "pipe.txt")  # a named pipe would block a reader forever
    result = load_corpus(corpus)
    assert result.articles == []
    assert {f.path: f.reason for f in result.failures} == {
        "sub/a.txt": "symbolic link leading outside the corpus folder: refused",
        "pipe.txt": "not a regular file"}


# --------------------------------------------------------------------------- 7. nesting, aliases, size


def _alias_bomb(levels: int) -> str:
    """YAML whose last alias expands to 9**levels items (a "billion laughs")."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\ntitle: *a{levels - 1}\n"


def test_nested_and_exploding_input_fails_those_files_only(corpus, settings):
    (corpus / "deep-flow.md").write_text("---\ntitle: " + "[" * 5000 + "]" * 5000 + "\n---\nNội dung.\n",
                                         encoding="utf-8")
    (corpus / "deep-map.md").write_text("---\ntitle: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n---\nNội dung.\n",
                                        encoding="utf-8")
    (corpus / "deep-block.md").write_text(
        "---\n" + "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v\n---\nNội dung.\n",
        encoding="utf-8")
    # Six levels: 531,441 titles if expanded (small enough not to hurt the machine on code that
    # expands it, where it would be indexed as a 3 MB title).
    (corpus / "bomb.md").write_text("---\n" + _alias_bomb(6) + "---\nNội dung.\n", encoding="utf-8")
    lines = ['{"title": "Sâu", "text": "Nội dung.", "x": ' + "[" * 3000 + "]" * 3000 + "}",
             json.dumps({"id": "lao", "title": "Đoàn Hà Nội thăm Lào", "text": "Đoàn đã tới Viêng Chăn."},
                        ensure_ascii=False)]
    (corpus / "batch.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run_rag("ingest", "--quiet")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    failed = _failed(result.stdout)
    assert failed == {
        "batch.jsonl:1": "nested too deeply (3001 levels of lists or objects; at most 20)",
        "bomb.md": "YAML anchors and aliases (&, *) are not allowed in front matter (its line 1)",
        "deep-block.md": "front matter nested too deeply (more than 20 levels)",
        "deep-flow.md": "front matter nested too deeply (more than 20 levels)",
        "deep-map.md": "front matter nested too deeply (more than 20 levels)",
    }
    assert _articles(settings) == {CUBA, ARGENTINA, "batch/lao"}


def test_files_over_the_size_limit_are_refused_with_their_size(corpus, settings):
    text = "Bài rất dài\n\n" + "Đoàn đại biểu Hà Nội làm việc. " * 1000
    (corpus / "long.txt").write_text(text, encoding="utf-8")
    size = len(text.encode("utf-8"))
    big_line = json.dumps({"title": "Dài", "text": "Câu. " * 5000}, ensure_ascii=False)
    small = json.dumps({"id": "ngan", "title": "Đoàn Hà Nội thăm Lào", "text": "Đoàn đã tới Viêng Chăn."},
                       ensure_ascii=False)
    (corpus / "batch.jsonl").write_text(big_line + "\n" + small + "\n", encoding="utf-8")

    result = run_rag("ingest", "--quiet", env={"RAG_MAX_ARTICLE_BYTES": "20000"})
    assert result.returncode == 1, result.stderr
    assert _failed(result.stdout) == {
        "batch.jsonl:1": f"line too large: {len(big_line.encode()) + 1:,} bytes, more than the limit of 20,000 "
                         "(RAG_MAX_ARTICLE_BYTES)",
        "long.txt": f"file too large: {size:,} bytes, more than the limit of 20,000 (RAG_MAX_ARTICLE_BYTES)",
    }
    assert _articles(settings) == {CUBA, ARGENTINA, "batch/ngan"}
    # With the default limit (5 MB) the long article is indexed.
    assert run_rag("ingest", "--quiet").returncode == 0
    assert "long" in _articles(settings)


def test_json_depth_is_counted_without_recursion():
    assert json_depth('{"a": [1, {"b": "]]]}}}"}], "c": "\\"[["}') == 3
    assert json_depth("[" * 1_000_000 + "]" * 1_000_000) == 1_000_000
    assert json_depth('"never closed [[[') <= 3


# --------------------------------------------------------------------------- 10. empty corpus


def test_an_empty_corpus_does_not_empty_the_index_unless_asked(indexed, corpus, e5):
    settings = indexed
    before = Store(settings.store_dir).manifest()
    for path in corpus.iterdir():
        path.unlink()

    result = run_rag("ingest", "--quiet")
    assert result.returncode == 2
    assert "holds no articles" in result.stderr and "would remove all 2 articles" in result.stderr
    assert "--allow-empty" in result.stderr and "Traceback" not in result.stderr
    assert Store(settings.store_dir).manifest() == before

    # The chat still serves the index in place, saying why it was not refreshed.
    _assert_served(settings, e5, articles=2)

    result = run_rag("ingest", "--quiet", "--allow-empty")
    assert result.returncode == 0, result.stderr
    assert "0 added, 0 updated, 2 removed" in result.stdout
    assert _articles(settings) == set()


def test_a_corpus_of_broken_files_lists_them_and_keeps_the_index(indexed, corpus):
    settings = indexed
    before = Store(settings.store_dir).manifest()
    for path in corpus.iterdir():
        path.unlink()
    (corpus / "bad.md").write_text("---\ntitle: x\ndate: 2023-02-30\n---\nNội dung.\n", encoding="utf-8")
    result = run_rag("ingest", "--quiet")
    assert result.returncode == 2
    assert "FAILED bad.md: unreadable date '2023-02-30'" in result.stdout
    assert "No article in" in result.stderr and "would remove all 2 articles" in result.stderr
    assert Store(settings.store_dir).manifest() == before


def test_a_vanished_corpus_keeps_the_index_served(indexed, corpus, e5):
    shutil.rmtree(corpus)
    result = run_rag("ingest", "--quiet")
    assert result.returncode == 2 and "Corpus folder not found" in result.stderr
    _assert_served(indexed, e5, articles=2)


def _assert_served(settings, e5, articles: int) -> None:
    """The chat's service loads the index in place and serves ``articles`` articles."""
    from rag.api import Service

    service = Service(settings)
    try:
        service.load(embeddings=e5)
        assert service.state == "ready" and service.info["articles"] == articles
    finally:
        service.close()


def test_a_missing_corpus_on_the_first_run_says_what_to_do(isolated, e5):
    result = run_rag("ask", CUBA_QUESTION)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: Corpus folder not found: {isolated / 'corpus'}. Put the articles" in result.stderr

    from rag.api import Service
    from rag.index import CorpusMissingError
    from rag.settings import Settings

    service = Service(Settings.load())
    with pytest.raises(CorpusMissingError, match="RAG_CORPUS_DIR"):
        service.load(embeddings=e5)
    assert service.state == "failed" and "Corpus folder not found" in service.error

    (isolated / "corpus").mkdir()
    result = run_rag("ask", CUBA_QUESTION)
    assert result.returncode == 2 and "holds no articles" in result.stderr and "nothing to index" in result.stderr


# --------------------------------------------------------------------------- 10. read-only store
#
# Tests run as root, and root writes through any chmod (CAP_DAC_OVERRIDE). The `rag` commands of
# these tests therefore run as root *without* the capabilities that bypass file permissions:
# `setpriv --bounding-set=-dac_override,-dac_read_search,-fowner` (util-linux) drops them from
# the bounding set, so the exec'd process keeps uid 0 (it can still read the root-owned venv
# under /root, which `setpriv --reuid=nobody` could not) but the kernel now applies the mode bits,
# and `chmod -R a-w` makes the store really read-only (access(2) agrees). As another user no
# wrapper is needed. Mount tricks (`unshare -m` + a read-only bind mount) need CAP_SYS_ADMIN,
# which a container usually lacks.

_DROP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _unprivileged(args: list[str]) -> list[str]:
    return (_DROP if os.geteuid() == 0 else []) + args


@pytest.fixture
def read_only_store(indexed, isolated):
    """The seed index, made read-only for the ``rag`` processes of the test."""
    store = indexed.store_dir
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make the store read-only for rag")
    subprocess.run(["chmod", "-R", "a-w", str(store)], check=True)
    probe = subprocess.run(_unprivileged(["sh", "-c", 'touch "$0/probe"', str(store)]), capture_output=True)
    if probe.returncode == 0:
        pytest.skip("cannot drop the capabilities that bypass permissions here")
    listing = sorted((str(p), p.stat().st_mtime_ns) for p in store.rglob("*"))
    yield store, listing
    subprocess.run(["chmod", "-R", "u+w", str(store)], check=True)


def _rag(*args: str, env: dict | None = None, **kwargs):
    return subprocess.run(_unprivileged([sys.executable, "-m", "rag.cli", *args]), capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300, **kwargs)


def test_ask_and_ingest_on_a_read_only_store(read_only_store, isolated):
    store, listing = read_only_store
    scratch = isolated / "tmp"
    scratch.mkdir()
    result = _rag("ask", "--json", CUBA_QUESTION, env={"TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answer"].startswith("Nguyễn Thị Tuyến")
    assert "is read-only for this process" in result.stderr and "cannot be updated" in result.stderr
    assert list(scratch.iterdir()) == []  # the private copy is removed after use

    result = _rag("ingest", "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is read-only for this process: the index cannot be updated" in result.stderr
    assert sorted((str(p), p.stat().st_mtime_ns) for p in store.rglob("*")) == listing


def test_serve_on_a_read_only_store(read_only_store, isolated):
    from servers import free_port

    store, listing = read_only_store
    port = free_port()
    process = subprocess.Popen(_unprivileged([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stderr:  # ends when the process does
            lines.append(line)
            if "not refreshed" in line or line.startswith("error:"):  # served first, then the refresh is skipped
                break
        log = "".join(lines)
        assert "Ready: 2 articles" in log and "error:" not in log, log
        assert "is read-only for this process" in log and "not refreshed" in log
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", method="POST",
                                         data=json.dumps({"question": CUBA_QUESTION}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            assert json.loads(response.read())["answer"].startswith("Nguyễn Thị Tuyến")
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert sorted((str(p), p.stat().st_mtime_ns) for p in store.rglob("*")) == listing


def test_an_ingest_beside_a_read_only_generation_writes_a_writable_one(indexed, corpus):
    """Only the live generation is read-only (copied from read-only media, say): the next
    generation is a writable copy, so the ingest works and the chat opens it directly."""
    store = indexed.store_dir
    live = Store(store).current()
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make the generation read-only for rag")
    subprocess.run(["chmod", "-R", "a-w", str(live)], check=True)
    try:
        path = corpus / f"{CUBA}.txt"
        path.write_text(path.read_text(encoding="utf-8").replace("2000 tấn gạo", "3000 tấn gạo"), encoding="utf-8")
        result = _rag("ingest", "--quiet")
        assert result.returncode == 0, result.stderr
        assert "0 added, 1 updated, 0 removed, 1 unchanged" in result.stdout
        assert Store(store).current() != live
        result = _rag("ask", "--json", "Hà Nội tặng La Habana bao nhiêu tấn gạo?")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["answer"].startswith("3000 tấn gạo")
        assert "read-only" not in result.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(live)], check=True)
