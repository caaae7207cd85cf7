"""The interview notebook (notebooks/interview-prep.ipynb, issue 22) and its helpers.

The notebook has one section per seed question, Q1..Q75 in the seed's order: a markdown cell with
the metadata {"interview": {"q": N}} (the question as the seed asks it, the answer in Chinese and in
English, errata where the seed is wrong, links to the course) and the code cell(s) of its live
evidence ({"interview": {"q": N, "evidence": true}}), which `assert` what the answer claims. The
quiz widget (minidocker/lab/quiz.py) reads the same cells, so a section that lacks a part fails
here, as does a link to a heading that no notebook has. nbval runs the notebook itself.

Also: the pure parts of quiz.py (parse_section, anchor, Deck.problems, dead_links, Progress) and
the glossary (minidocker/lab/glossary.py), and a regression test of the `logs -f` race this
notebook found (a record sent twice).
"""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from minidocker.container import logs as logsmod
from minidocker.lab import glossary, quiz

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "interview-prep.ipynb"
CJK = re.compile(r"[\u4e00-\u9fff]")

# The seed's questions, Q1..Q75: its `###` headings under "## 常见面试题", as it asks them
# (../shared/reference/interview-questions.md numbers them).
SEED_QUESTIONS = (
    "什么是Docker",  # Q1
    "Docker中的容器是什么",  # Q2
    "Docker与虚拟机(Virtual Machines)有何不同",  # Q3
    "Docker镜像的用途是什么",  # Q4
    "解释一下什么是Docker容器",  # Q5
    "什么是Dockerfile",  # Q6
    "Docker守护进程 (Docker Daemon) 的作用是什么",  # Q7
    "什么是 Docker Hub",  # Q8
    "如何删除 Docker 中已停止的容器？",  # Q9
    "什么是 Docker Volume（卷）？",  # Q10
    "如何在 Docker 容器中管理数据？",  # Q11
    "Docker Compose 的用途是什么？",  # Q12
    "如何通过 Dockerfile 创建 Docker 镜像？",  # Q13
    "什么是 Docker Network（网络）？",  # Q14
    "如何查找正在运行的 Docker 容器的 IP 地址？",  # Q15
    "`docker run` 和 `docker exec` 有什么区别？",  # Q16
    "使用 Docker 的优势是什么？",  # Q17
    "如何检查 (inspect) 一个 Docker 容器？",  # Q18
    "Docker 中的环境变量是什么？",  # Q19
    "如何扩展 (scale) 一个 Docker 容器？",  # Q20
    "什么是 Docker Registry（注册中心）？",  # Q21
    "什么是 Docker Swarm？",  # Q22
    "Docker 容器的默认网络模式是什么？",  # Q23
    "如何更新一个现有的 Docker 容器？",  # Q24
    "如何检查系统上的 Docker 状态？",  # Q25
    "Docker 中的默认桥接网络是什么？",  # Q26
    "`docker-compose.yml` 的用途是什么？",  # Q27
    "如何以分离模式 (detached mode) 运行容器？",  # Q28
    "解释多阶段 Docker 构建 (multi-stage Docker build) 的概念",  # Q29
    "什么是 Docker Compose，它如何帮助管理多容器应用程序？",  # Q30
    "Docker 网络是如何工作的？描述 Bridge、Host 和 Overlay 网络",  # Q31
    "Docker Volumes（卷）和 Bind Mounts（绑定挂载）有什么区别？",  # Q32
    "Dockerfile 中的 `COPY` 和 `ADD` 命令有什么区别？应该何时使用它们？",  # Q33
    "如何在不停止服务的情况下更新正在运行的容器？",  # Q34
    "如何确保 Docker 容器是无状态的 (stateless)？",  # Q35
    "如何优化 Docker 镜像以用于生产环境？",  # Q36
    "什么是 Docker Swarm，它与 Kubernetes 有何不同？",  # Q37
    "什么是 Docker 标签 (tags)，为什么它们很重要？",  # Q38
    "如何将 Docker 容器的端口暴露给宿主机？",  # Q39
    "Docker 容器和 Docker Service（服务）有什么区别？",  # Q40
    "如何保护 Docker 容器的安全？",  # Q41
    "`docker exec` 与 `docker attach` 的目的是什么？",  # Q42
    "如何监控正在运行的 Docker 容器的性能？",  # Q43
    "如何在 Docker Swarm 中执行滚动更新 (Rolling Updates)？",  # Q44
    "什么是 Docker Volume Driver（卷驱动程序），如何使用它？",  # Q45
    "什么是 Docker Health Check（健康检查），如何配置它们？",  # Q46
    "如何将宿主机目录挂载到 Docker 容器中？",  # Q47
    "解释 Docker 容器编排 (Container Orchestration) 的概念",  # Q48
    "如何为容器创建自定义 Docker 网络？",  # Q49
    "如何在 Docker 化环境中管理日志？",  # Q50
    "如何使用 Docker Compose 处理多容器环境？",  # Q51
    "什么是 Dockerfile 构建参数 (build arguments)，如何使用它们？",  # Q52
    "如何在 Docker 容器之间共享数据？",  # Q53
    "如何在 CI/CD 流水线中使用 Docker？",  # Q54
    "`docker pull` 和 `docker push` 命令在 Docker Registry 中的意义是什么？",  # Q55
    "Docker 在微服务架构中的作用是什么？",  # Q56
    "如何对一个非启动 (non-starting) 的 Docker 容器进行故障排除？",  # Q57
    "Docker Desktop 在本地开发中的作用是什么？",  # Q58
    "解释 Docker 中的镜像层 (image layers) 概念",  # Q59
    "如何使用 Docker 管理容器日志？",  # Q60
    "`docker-compose.override.yml` 文件是什么，如何使用它？",  # Q61
    "`docker network create` 的作用是什么？",  # Q62
    "如何向容器暴露环境变量？",  # Q63
    "`docker inspect` 在调试容器中的作用是什么？",  # Q64
    "如何移除 Docker 中未使用的镜像、容器和卷？",  # Q65
    "Docker 容器状态有哪些，以及检查状态的命令是什么",  # Q66
    "如何配置自动容器重启",  # Q67
    "如何在生产环境中管理 Docker 容器安全",  # Q68
    "如何配置Docker以实现高可用性(High Availability)和容错(Fault Tolerance)",  # Q69
    "Docker Registry的作用是什么，如何管理您的私有Registry",  # Q70
    "如何使用Docker和Kubernetes设置CI/CD流水线",  # Q71
    "解释Docker in Docker(DinD)的概念及其使用场景",  # Q72
    "如何使用 Kubernetes vs Docker Swarm 管理和编排容器",  # Q73
    "什么是 Docker 镜像漏洞，以及如何扫描 Docker 镜像中的安全漏洞",  # Q74
    "如何使用 Docker 实现蓝/绿部署 (Blue-Green Deployments)",  # Q75
)


def src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="module")
def nb() -> dict:
    with open(NOTEBOOK, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def deck(nb) -> quiz.Deck:
    return quiz.Deck.from_cells(nb["cells"])


# ---------------------------------------------------------------------------- the notebook
def test_seed_questions_are_75():
    assert len(SEED_QUESTIONS) == 75 == len(set(SEED_QUESTIONS))


def test_every_question_has_a_complete_section(deck):
    assert deck.problems() == []
    assert [c.q for c in deck.cards] == list(range(1, 76))


def test_no_dead_links(deck):
    assert quiz.dead_links(deck, str(NOTEBOOKS)) == []


def test_questions_are_the_seeds(deck):
    wrong = [(c.q, c.question) for c in deck.cards if c.question != SEED_QUESTIONS[c.q - 1]]
    assert not wrong, f"not the seed's words: {wrong}"


def test_sections_in_the_seeds_order(nb):
    order = [cell["metadata"]["interview"]["q"] for cell in nb["cells"]
             if "interview" in cell.get("metadata", {}) and cell["cell_type"] == "markdown"]
    assert order == list(range(1, 76))
    # each question's evidence follows its own section, before the next section
    current = None
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("interview")
        if meta and cell["cell_type"] == "markdown":
            current = meta["q"]
        elif meta:
            assert meta.get("evidence") and meta["q"] == current, (meta, current)


def test_answers_in_both_languages(deck):
    for c in deck.cards:
        assert CJK.search(c.zh), f"Q{c.q}: the Chinese answer has no Chinese"
        assert not CJK.search(c.en), f"Q{c.q}: the English answer holds Chinese: {c.en[:80]}"
        if c.errata:   # both languages there too
            assert CJK.search(c.errata) and re.search(r"\bEnglish: [A-Za-z`\"]", c.errata), \
                f"Q{c.q}: errata in one language"


def test_links_go_to_course_notebooks(deck):
    for c in deck.cards:
        for link in c.links:
            assert re.match(r"(\d\d)-[\w.-]+\.ipynb", link), link


def test_evidence_is_short_and_asserts(deck):
    for c in deck.cards:
        assert 1 <= len(c.evidence) <= 2, f"Q{c.q}: {len(c.evidence)} evidence cells"
        for code in c.evidence:
            assert re.search(r"^\s*assert\b", code, re.M), f"Q{c.q}: evidence without an assert"
            assert len(code.splitlines()) <= 70, f"Q{c.q}: evidence of {len(code.splitlines())} lines"


def test_saved_executed_in_order_without_errors(nb):
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), \
        "save the notebook after a clean top-to-bottom run (scripts/run-notebooks.sh notebooks/interview-prep.ipynb)"
    for i, c in enumerate(code, start=1):
        assert all(o["output_type"] != "error" for o in c.get("outputs", [])), f"code cell {i} was saved with an error"
        if "print(" in src(c):
            assert c.get("outputs"), f"code cell {i} prints but was saved without output"


def test_form_around_the_sections(nb):
    cells = nb["cells"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    first = src(cells[0])
    assert first.startswith("# ") and "**Objectives**" in first and "**Time**" in first and "**Seed**" in first
    headings = [line for c in cells if c["cell_type"] == "markdown" for line in src(c).splitlines()
                if re.match(r"#{1,2} ", line)]
    assert not [h for h in headings if not CJK.search(h)], "headings need the Chinese term beside the English one"
    code = [src(c) for c in cells if c["cell_type"] == "code"]
    assert "LabSession(" in code[0]
    assert any("quiz.FlashCards(" in s and s.startswith("# NBVAL_IGNORE_OUTPUT") for s in code)
    assert any("glossary.show()" in s for s in code)
    assert "lab.cleanup()" in code[-1] and "lab.assert_clean()" in code[-1]
    errata = next(src(c) for c in cells if c["cell_type"] == "markdown" and src(c).startswith("## Errata summary"))
    deck = quiz.Deck.from_cells(cells)
    summed = {int(n) for n in re.findall(r"^\| \[Q(\d+)\]", errata, re.M)}
    assert summed == {c.q for c in deck.cards if c.errata}, "the errata table and the sections' errata differ"


def test_not_run_here_is_labelled(deck):
    """Evidence shown as manifests of multi-host engines says so."""
    for c in deck.cards:
        for code in c.evidence:
            if "side_by_side(" in code:
                assert "print(NOT_RUN)" in code, f"Q{c.q}: manifests without the 'not run here' label"


# ---------------------------------------------------------------------------- quiz.py
SECTION = """### Q7. Docker守护进程 (Docker Daemon) 的作用是什么

**中文**：dockerd 是服务端。

它管理容器。

**English**: dockerd is the server.

**Errata 勘误**: 种子的架构过时了。

English: the seed's architecture is dated.

**In depth**: [01, seen (看)](01-container-is-a-process.ipynb#seen-(看)); [11](11-architecture.ipynb)
"""


def test_parse_section():
    c = quiz.parse_section(7, SECTION)
    assert c.q == 7 and c.question == "Docker守护进程 (Docker Daemon) 的作用是什么"
    assert c.zh == "dockerd 是服务端。\n\n它管理容器。"
    assert c.en == "dockerd is the server."
    assert c.errata == "种子的架构过时了。\n\nEnglish: the seed's architecture is dated."
    assert c.links == ["01-container-is-a-process.ipynb#seen-(看)", "11-architecture.ipynb"]


def test_parse_section_without_errata_and_with_a_gloss():
    c = quiz.parse_section(1, "### Q1. 什么是Docker\n\n**中文**（Chinese）：一个平台。\n\n"
                              "**English** (英文): A platform.\n\n**In depth**: [x](08-images-and-build.ipynb)")
    assert (c.question, c.zh, c.en, c.errata) == ("什么是Docker", "一个平台。", "A platform.", "")
    assert c.links == ["08-images-and-build.ipynb"]


def test_anchor_is_jupyterlabs():
    assert quiz.anchor("## The states (容器状态)") == "The-states-(容器状态)"
    assert quiz.anchor("## `exec` vs `attach` (进入: exec 与 attach)") == "exec-vs-attach-(进入:-exec-与-attach)"
    assert quiz.anchor("### Q16. `docker run` 和 `docker exec` 有区别？") == "Q16.-docker-run-和-docker-exec-有区别？"
    assert quiz.anchor("# A **bold** [link](http://x) here ") == "A-bold-link-here"


def test_anchors_of_skips_fenced_code():
    cells = [{"cell_type": "markdown", "source": "## Real (真)\n```\n# not a heading\n```\n### Also"},
             {"cell_type": "code", "source": "# a comment"}]
    assert quiz.anchors_of(cells) == {"Real-(真)", "Also"}


def card_cells(q=1, zh="中文答案", en="An answer.", link="[x](01-container-is-a-process.ipynb)",
               evidence="assert True"):
    text = f"### Q{q}. 问题\n\n**中文**：{zh}\n\n**English**: {en}\n\n**In depth**: {link}"
    cells = [{"cell_type": "markdown", "source": text, "metadata": {"interview": {"q": q}}}]
    if evidence is not None:
        cells.append({"cell_type": "code", "source": evidence, "metadata": {"interview": {"q": q, "evidence": True}}})
    return cells


def test_deck_problems_name_what_is_missing():
    deck = quiz.Deck.from_cells(card_cells(1) + card_cells(2, zh="", link="no link")
                                + card_cells(3, evidence=None) + card_cells(4, evidence="print('no check')"))
    assert deck.problems(range(1, 6)) == ["Q5: no section", "Q2: no the Chinese answer", "Q2: no a link to the course",
                                          "Q3: no live evidence", "Q3: no assert in its evidence",
                                          "Q4: no assert in its evidence"]
    assert quiz.Deck.from_cells(card_cells(1)).problems(range(1, 2)) == []


def test_deck_takes_evidence_before_its_section():
    md, code = card_cells(3)
    deck = quiz.Deck.from_cells([code, md, {"cell_type": "markdown", "source": "# other", "metadata": {}}])
    assert [c.q for c in deck.cards] == [3] and deck.by_q[3].evidence == ["assert True"]


def test_dead_links(tmp_path):
    cells = [{"cell_type": "markdown", "source": ["## Here (这里)"]}]
    (tmp_path / "01-one.ipynb").write_text(json.dumps({"cells": cells}))
    links = "[a](01-one.ipynb#Here-(这里)) [b](01-one.ipynb#Gone) [c](02-none.ipynb)"
    deck = quiz.Deck.from_cells(card_cells(1, link=links))
    assert deck.by_q[1].links == ["01-one.ipynb#Here-(这里)", "01-one.ipynb#Gone", "02-none.ipynb"]
    assert quiz.dead_links(deck, str(tmp_path)) == ["Q1: 01-one.ipynb has no heading #Gone",
                                                    "Q1: 02-none.ipynb does not exist"]


def test_progress_order_mark_save(tmp_path):
    deck = quiz.Deck.from_cells([cell for q in (1, 2, 3, 4) for cell in card_cells(q)])
    path = tmp_path / "sub" / "progress.json"
    p = quiz.Progress(str(path))
    assert p.order(deck) == [1, 2, 3, 4] and not path.exists()   # nothing written until a verdict
    p.mark(3, known=False)
    p.mark(1, known=True)
    assert p.order(deck) == [3, 2, 4, 1]
    assert json.loads(path.read_text()) == {"known": [1], "review": [3]}
    p.mark(3, known=True)                                        # reviewed, now known
    again = quiz.Progress(str(path))
    assert (again.known, again.review, again.order(deck)) == ({1, 3}, set(), [2, 4, 1, 3])
    assert again.summary(deck) == "2/4 known, 0 to review"


def test_progress_survives_a_damaged_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    p = quiz.Progress(str(path))
    assert (p.known, p.review) == (set(), set())
    p.mark(2, known=True)
    assert json.loads(path.read_text()) == {"known": [2], "review": []}
    assert quiz.Progress(None).order(quiz.Deck([])) == []


def test_progress_path(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert quiz.progress_path(scratch="/tmp/x.json") == "/tmp/x.json"      # nbval, nbconvert: not your home
    monkeypatch.setenv("JPY_SESSION_NAME", "/course/interview-prep.ipynb")
    assert quiz.progress_path(scratch="/tmp/x.json") == quiz.DEFAULT_PROGRESS


def test_inline_html():
    assert quiz.inline_html("a `<b>` and **bold**\n\nnext") == "a <code>&lt;b&gt;</code> and <b>bold</b><br><br>next"


# ---------------------------------------------------------------------------- glossary
def test_glossary_notebooks_exist():
    missing = sorted({t.notebook for t in glossary.TERMS if not (NOTEBOOKS / t.notebook).exists()})
    assert not missing, f"the glossary names notebooks that do not exist: {missing}"


def test_glossary_has_no_duplicates():
    en = [t.en.lower() for t in glossary.TERMS]
    zh = [t.zh for t in glossary.TERMS]
    assert len(en) == len(set(en)), sorted({x for x in en if en.count(x) > 1})
    assert len(zh) == len(set(zh)), sorted({x for x in zh if zh.count(x) > 1})
    assert all(t.en and CJK.search(t.zh) or t.zh == t.en for t in glossary.TERMS)


def test_glossary_lookup_and_table():
    assert [t.en for t in glossary.lookup("WHITEOUT")] == ["whiteout"]
    assert [t.en for t in glossary.lookup("镜像层")] == ["layer"]
    table = glossary.markdown().splitlines()
    assert len(table) == 2 + len(glossary.TERMS) and table[0].startswith("| English | 中文 |")


# ---------------------------------------------------------------------------- logs -f (found by this notebook)
def test_logs_follow_sends_each_record_once(tmp_path):
    """`logs -f` read what was logged, then followed from where it had taken the file's size: a
    record written between the two was sent twice (docker-py's run() returned doubled output now
    and then). read(upto=snapshot_size) then follow(snapshot_size) sends each record once."""
    path = str(tmp_path / "c-json.log")
    writer = logsmod.JsonFileWriter(path)
    for i in range(3):
        writer.write(f"line {i}\n".encode(), "stdout")
    size = logsmod.snapshot_size(path)
    writer.write(b"line 3\n", "stdout")          # lands between the snapshot and the read
    first = [r["log"] for r in logsmod.read(path, upto=size)]
    done = threading.Event()

    def finish():
        time.sleep(0.1)
        writer.write(b"line 4\n", "stdout")
        writer.close()
        done.set()
    threading.Thread(target=finish).start()
    rest = [r["log"] for r in logsmod.follow(path, size, lambda: not done.is_set(), poll=0.01)]
    assert first + rest == [f"line {i}\n" for i in range(5)]
    with open(path, "ab") as f:                  # a torn last line is left to the follow
        f.write(b'{"log":"half')
    data = open(path, "rb").read()
    assert logsmod.snapshot_size(path) == data.rfind(b"\n") + 1 == len(data) - len(b'{"log":"half')
    assert logsmod.snapshot_size(str(tmp_path / "none.log")) == 0
