"""Flash cards for interview practice (面试题自测), made from the interview notebook.

The interview notebook (notebooks/interview-prep.ipynb) has one section per seed question: a
markdown cell whose metadata is `{"interview": {"q": N}}` holding the question, the answer in
Chinese (`**中文**`), the answer in English (`**English**`), errata where the seed is wrong, and a
link to the course cell that teaches it; then the code cell(s) of its live evidence, with the
metadata `{"interview": {"q": N, "evidence": true}}`, which `assert` what the answer claims.

    from minidocker.lab import quiz
    deck = quiz.Deck.from_notebook("interview-prep.ipynb")
    quiz.FlashCards(deck, progress="~/.minidocker-quiz.json").show()   # the widget, in JupyterLab

Everything but FlashCards is pure and tested without a kernel (tests/test_interview.py). The
progress file is a small JSON object {"known": [...], "review": [...]}: the order of the next
round puts the cards to review first, then the unseen ones, then the known ones.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

ZH, EN, ERRATA = "**中文**", "**English**", "**Errata"
# a link to a course notebook, with an optional anchor; anchors keep a heading's parentheses
# ("#The-states-(容器状态)"), which a Markdown link destination may hold when they are balanced
LINK = re.compile(r"\]\((\d\d-[\w.-]+\.ipynb)(#(?:[^()\s]|\([^()\s]*\))*)?\)")
DEFAULT_PROGRESS = "~/.minidocker-quiz.json"


@dataclass
class Card:
    q: int
    question: str                     # the seed's question, as it asks it
    zh: str                           # the answer in Chinese
    en: str                           # the answer in English
    errata: str = ""                  # where the seed is wrong or dated (both languages)
    links: list[str] = field(default_factory=list)   # "NN-name.ipynb#anchor" of the course cells
    evidence: list[str] = field(default_factory=list)  # the evidence cells' code


def _part(text: str, start: str, ends: tuple[str, ...]) -> str:
    """The paragraph(s) after the bold label `start`, up to the next label in `ends`. The rest of
    the label goes with it: words before its closing ** ("**Errata 勘误**: ...") and a gloss in
    brackets after it ("**English** (英文): ...")."""
    i = text.find(start)
    if i < 0:
        return ""
    body = text[i + len(start):]
    if not start.endswith("**"):
        m = re.match(r"[^*\n]*\*\*", body)
        body = body[m.end():] if m else body
    m = re.match(r"\s*[(（][^)）\n]*[)）]", body)
    body = body[m.end():] if m else body
    cut = min([j for j in (body.find(e) for e in ends) if j >= 0], default=len(body))
    return body[:cut].lstrip().lstrip(":：").strip()


def parse_section(q: int, text: str) -> Card:
    """One question's markdown cell -> a Card (the question is its first heading line)."""
    lines = text.strip().splitlines()
    heading = next((ln for ln in lines if ln.startswith("#")), "")
    question = re.sub(r"^#+\s*(Q\d+[.．]\s*)?", "", heading).strip()
    labels = (ZH, EN, ERRATA, "**In depth", "**深入")
    links = [m.group(1) + (m.group(2) or "") for m in LINK.finditer(text)]
    return Card(q=q, question=question, zh=_part(text, ZH, labels), en=_part(text, EN, labels),
                errata=_part(text, ERRATA, labels), links=links)


class Deck:
    def __init__(self, cards: list[Card]):
        self.cards = sorted(cards, key=lambda c: c.q)
        self.by_q = {c.q: c for c in self.cards}

    @classmethod
    def from_cells(cls, cells) -> "Deck":
        """From nbformat cells (or dicts with cell_type, source, metadata)."""
        cards: dict[int, Card] = {}
        for cell in cells:
            meta = (cell.get("metadata") or {}).get("interview")
            if not meta:
                continue
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            q = int(meta["q"])
            if cell["cell_type"] == "markdown" and not meta.get("evidence"):
                evidence = cards[q].evidence if q in cards else []
                cards[q] = parse_section(q, source)
                cards[q].evidence = evidence
            elif cell["cell_type"] == "code" and meta.get("evidence"):
                cards.setdefault(q, Card(q, "", "", "")).evidence.append(source)
        return cls(list(cards.values()))

    @classmethod
    def from_notebook(cls, path: str) -> "Deck":
        with open(path, encoding="utf-8") as f:
            return cls.from_cells(json.load(f)["cells"])

    def problems(self, expected: range = range(1, 76)) -> list[str]:
        """What makes the deck incomplete: a question without a section, a section without the
        question, both languages, its evidence (which asserts what it shows) or a link to the course."""
        out = [f"Q{q}: no section" for q in expected if q not in self.by_q]
        for c in self.cards:
            for what, ok in (("the question", c.question), ("the Chinese answer", c.zh), ("the English answer", c.en),
                             ("live evidence", any(e.strip() for e in c.evidence)),
                             ("assert in its evidence", any(re.search(r"^\s*assert\b", e, re.M) for e in c.evidence)),
                             ("a link to the course", c.links)):
                if not ok:
                    out.append(f"Q{c.q}: no {what}")
        return out


def anchor(heading: str) -> str:
    """JupyterLab's anchor for a markdown heading: its text with spaces as '-' (other characters,
    Chinese and punctuation included, are kept; the browser percent-encodes them)."""
    text = re.sub(r"^#+\s*", "", heading.strip())
    text = re.sub(r"[`*]", "", text)                 # rendered markup is not in the id
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    return text.strip().replace(" ", "-")


def anchors_of(cells) -> set[str]:
    """The anchors of every heading in a notebook's markdown cells."""
    out = set()
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        fenced = False
        for line in source.splitlines():
            if line.startswith("```"):
                fenced = not fenced
            elif not fenced and re.match(r"^#{1,6}\s", line):
                out.add(anchor(line))
    return out


def dead_links(deck: Deck, notebooks_dir: str) -> list[str]:
    """Links to a notebook that does not exist or to an anchor that none of its headings has."""
    out, cache = [], {}
    for c in deck.cards:
        for link in c.links:
            name, _, frag = link.partition("#")
            path = os.path.join(notebooks_dir, name)
            if name not in cache:
                try:
                    with open(path, encoding="utf-8") as f:
                        cache[name] = anchors_of(json.load(f)["cells"])
                except (OSError, ValueError):
                    cache[name] = None
            if cache[name] is None:
                out.append(f"Q{c.q}: {name} does not exist")
            elif frag and frag not in cache[name]:
                out.append(f"Q{c.q}: {name} has no heading #{frag}")
    return out


def progress_path(default: str = DEFAULT_PROGRESS, scratch: str | None = None) -> str | None:
    """Where FlashCards keeps your progress: `default` (in your home) when the kernel was started by
    a Jupyter server (JupyterLab sets JPY_SESSION_NAME for a notebook's kernel), else `scratch`: a
    notebook run by nbval or nbconvert (the tests) leaves your home alone."""
    return default if os.environ.get("JPY_SESSION_NAME") else scratch


class Progress:
    """Which cards you know and which to review again, kept in a small JSON file."""

    def __init__(self, path: str | None):
        self.path = os.path.expanduser(path) if path else None
        self.known: set[int] = set()
        self.review: set[int] = set()
        if self.path and os.path.exists(self.path):
            try:
                with open(self.path) as f:
                    data = json.load(f)
                self.known = {int(q) for q in data.get("known", [])}
                self.review = {int(q) for q in data.get("review", [])} - self.known
            except (OSError, ValueError, TypeError):
                pass                          # a damaged file: start afresh rather than fail

    def mark(self, q: int, known: bool) -> None:
        (self.known if known else self.review).add(q)
        (self.review if known else self.known).discard(q)
        self.save()

    def save(self) -> None:
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"known": sorted(self.known), "review": sorted(self.review)}, f)
        os.replace(tmp, self.path)

    def order(self, deck: Deck) -> list[int]:
        """The next round: to review first, then unseen, then known; each in the seed's order."""
        qs = [c.q for c in deck.cards]
        return ([q for q in qs if q in self.review] + [q for q in qs if q not in self.review | self.known]
                + [q for q in qs if q in self.known])

    def summary(self, deck: Deck) -> str:
        n = len(deck.cards)
        return f"{len(self.known & set(deck.by_q))}/{n} known, {len(self.review & set(deck.by_q))} to review"


def inline_html(text: str) -> str:
    """A card's Markdown as the widget's HTML: escaped, with `code`, **bold** and paragraphs."""
    import html
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return "<br><br>".join(p.strip() for p in re.split(r"\n\s*\n", out) if p.strip())


class FlashCards:
    """The quiz widget: the question first; "Reveal" shows both answers (and the errata), "Run the
    evidence" runs the evidence cells in this kernel and shows their output; "I knew it" / "Review
    again" records the verdict in the progress file and moves on."""

    def __init__(self, deck: Deck, progress: str | None = DEFAULT_PROGRESS, only: list[int] | None = None):
        import ipywidgets as w
        self.deck, self.progress = deck, Progress(progress)
        self.queue = [q for q in self.progress.order(deck) if only is None or q in only]
        self.pos = 0
        self.title, self.answer, self.out = w.HTML(), w.HTML(), w.Output()
        self.status = w.Label()
        buttons = [("Reveal 显示答案", self.reveal), ("Run the evidence 运行证据", self.run_evidence),
                   ("I knew it 会了", lambda _: self.verdict(True)),
                   ("Review again 再复习", lambda _: self.verdict(False)),
                   ("Next 下一题", lambda _: self.move(1))]
        self.buttons = []
        for label, fn in buttons:
            b = w.Button(description=label, layout=w.Layout(width="auto"))
            b.on_click(fn)
            self.buttons.append(b)
        self.box = w.VBox([self.title, w.HBox(self.buttons), self.answer, self.out, self.status])
        self.render()

    @property
    def card(self) -> Card | None:
        return self.deck.by_q[self.queue[self.pos]] if self.queue else None

    def render(self) -> None:
        c = self.card
        self.answer.value = ""
        self.out.clear_output()
        self.title.value = f"<h3>Q{c.q}. {inline_html(c.question)}</h3>" if c else "<h3>No cards</h3>"
        self.status.value = f"card {self.pos + 1} of {len(self.queue)} · {self.progress.summary(self.deck)}"

    def reveal(self, _=None) -> None:
        import html
        c = self.card
        if not c:
            return
        parts = [f"<p><b>中文</b>: {inline_html(c.zh)}</p>", f"<p><b>English</b>: {inline_html(c.en)}</p>"]
        if c.errata:
            parts.append(f"<p><b>Errata 勘误</b>: {inline_html(c.errata)}</p>")
        parts += [f'<p>In depth: <a href="{html.escape(link)}">{html.escape(link)}</a></p>' for link in c.links]
        self.answer.value = "".join(parts)

    def run_evidence(self, _=None) -> None:
        from IPython import get_ipython
        c = self.card
        if not c:
            return
        with self.out:
            self.out.clear_output()
            for code in c.evidence:
                get_ipython().run_cell(code, store_history=False)

    def verdict(self, known: bool) -> None:
        if self.card:
            self.progress.mark(self.card.q, known)
        self.move(1)

    def move(self, step: int) -> None:
        if self.queue:
            self.pos = (self.pos + step) % len(self.queue)
        self.render()

    def show(self):
        from IPython.display import display
        display(self.box)
        return self
