"""Build the demo's one-day sample data from the evaluation corpus (run once; output committed).

    python newsletter/data/build_demo_data.py [--corpus tests/fixtures/eval/corpus.jsonl]

Writes, next to this script:
- `demo_arxiv_rss.xml`: an rss.arxiv.org RSS 2.0 feed for cs.LG+cs.CL+cs.CV on DEMO_DAY, in the
  exact shape of the recorded feed in tests/fixtures (channel header, `arXiv:ID Announce Type:
  ... Abstract:` descriptions, one comma-joined `dc:creator`, `arxiv:announce_type`), with new,
  cross-list and replacement items;
- `demo_hf_daily_papers.json`: a Hugging Face `/api/daily_papers?date=DEMO_DAY` response in the
  shape of the recorded one (outer item with `paper`, `numComments`, `submittedBy`, ...).

Titles and abstracts are real (the 604 papers of the ranking evaluation corpus, with the LaTeX it
lost on the way put back: `corpus_repair.py`). Everything else
is synthetic and deterministic: arXiv IDs (2611.9xxxx, a range arXiv has not reached, so no link
points at a real, unrelated paper), authors, categories (from title keywords), upvotes, comments
GitHub stars and the one-line AI summaries (a sentence of the abstract). See README.md in this
folder.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from newsletter.data.corpus_repair import repaired

HERE = Path(__file__).resolve().parent
# The repository's copy of the evaluation corpus (run from a checkout).
DEFAULT_CORPUS = HERE.parents[1] / "tests" / "fixtures" / "eval" / "corpus.jsonl"
DEMO_DAY = date(2026, 11, 24)  # a Tuesday
SEED = 20261124
FEED_NEW = 470  # papers announced as new or cross-listed on DEMO_DAY
FEED_REPLACED = 20  # replacements of older papers (the parser skips them)
HF_FROM_FEED = 48  # of the day's papers, listed on Hugging Face Daily Papers
HF_ONLY = 10  # papers only Hugging Face lists that day (announced earlier)

GIVEN = [
    "Ada",
    "Alan",
    "Amira",
    "Ana",
    "Arjun",
    "Bao",
    "Carlos",
    "Chen",
    "Chiara",
    "Daniel",
    "Dmitri",
    "Elena",
    "Emre",
    "Fatima",
    "Femi",
    "Grace",
    "Hana",
    "Hiroshi",
    "Ines",
    "Ivan",
    "Jiho",
    "José",
    "Julia",
    "Jürgen",
    "Kai",
    "Karin",
    "Lars",
    "Laura",
    "Lei",
    "Li",
    "Łukasz",
    "Maria",
    "Mateo",
    "Mei",
    "Mohammed",
    "Nadia",
    "Nikhil",
    "Noor",
    "Olga",
    "Omar",
    "Paolo",
    "Priya",
    "Qiang",
    "Rafael",
    "Rania",
    "Rui",
    "Sara",
    "Sofia",
    "Soo-ah",
    "Tariq",
    "Thomas",
    "Wei",
    "Xin",
    "Yara",
    "Yuki",
    "Zeynep",
    "Zoë",
]
FAMILY = [
    "Abe",
    "Alvarez",
    "Andersen",
    "Bauer",
    "Becker",
    "Chen",
    "Costa",
    "Dubois",
    "Fischer",
    "García",
    "Gupta",
    "Haddad",
    "Hansen",
    "Ibrahim",
    "Ito",
    "Jensen",
    "Kim",
    "Kowalski",
    "Kumar",
    "Lee",
    "Li",
    "Liu",
    "Martin",
    "Moreau",
    "Müller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Park",
    "Patel",
    "Petrov",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Suzuki",
    "Tan",
    "Wang",
    "Weber",
    "Wu",
    "Xu",
    "Yamamoto",
    "Yang",
    "Yilmaz",
    "Zhang",
    "Zhao",
    "Zhou",
]
AFFILIATIONS = (
    "University of Lisbon, Portugal",
    "ETH Zurich, Switzerland",
    "Tsinghua University, Beijing",
    "University of Toronto, Canada",
)
CATEGORY_RULES = (
    ("eess.AS", r"\b(speech|audio|speaker|asr|tts|codec|voice|sound|music)\b"),
    ("cs.CV", r"\b(image|vision|visual|video|segmentation|detection|pixel|3d|camera|diffusion)"),
    ("cs.CL", r"\b(language|llms?|text|token|translation|dialogue|prompt|reasoning|nlp)"),
)
CROSS_FROM = ("stat.ML", "eess.IV", "eess.SP", "cs.AI", "math.OC")
# Topics Hugging Face's list features that day (a real day's list covers the hot topics): the
# demo readers' interests, so each of their digests can lead with trending papers that match.
HF_TOPICS = (
    "KV cache", "quantiz", "speculative decoding", "segmentation", "MRI", "speech", "audio",
    "codec", "federated", "differential privacy", "state space", "Mamba", "spiking",
)  # fmt: skip
HF_PER_TOPIC = 2  # papers of each topic on the list, by title


def hf_listed(rng: random.Random, feed_papers: list[dict]) -> list[dict]:
    """The HF_FROM_FEED feed papers Hugging Face lists: HF_PER_TOPIC per topic of HF_TOPICS
    (by title), the rest drawn at random, in random order (upvotes go by this order)."""
    chosen: dict[str, dict] = {}
    for topic in HF_TOPICS:
        matching = [p for p in feed_papers if topic.lower() in p["title"].lower()]
        for p in rng.sample(matching, min(HF_PER_TOPIC, len(matching))):
            chosen.setdefault(p["arxiv_id"], p)
    rest = [p for p in feed_papers if p["arxiv_id"] not in chosen]
    listed = list(chosen.values()) + rng.sample(rest, HF_FROM_FEED - len(chosen))
    rng.shuffle(listed)
    return listed


def categories_for(rng: random.Random, title: str, abstract: str) -> list[str]:
    text = f"{title} {abstract[:400]}".lower()
    found = [cat for cat, rule in CATEGORY_RULES if re.search(rule, text)]
    primary = found[0] if found else "cs.LG"
    cats = [primary] + [c for c in found[1:] if c != primary]
    if "cs.LG" not in cats and rng.random() < 0.5:
        cats.append("cs.LG")
    if rng.random() < 0.2:
        cats.append("cs.AI")
    return list(dict.fromkeys(cats))


def authors_for(rng: random.Random) -> list[str]:
    names = []
    for _ in range(rng.choice((1, 2, 3, 3, 4, 4, 5, 6, 7, 9, 12))):
        name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
        if rng.random() < 0.03:
            name += f" ({rng.choice(AFFILIATIONS)})"
        names.append(name)
    return list(dict.fromkeys(names))


def rss_item(paper: dict, announce: str, cats: list[str], authors: list[str]) -> str:
    version = "v2" if announce.startswith("replace") else "v1"
    pid = paper["arxiv_id"]
    description = f"arXiv:{pid}{version} Announce Type: {announce} \nAbstract: {paper['abstract']}"
    lines = [
        "    <item>",
        f"      <title>{escape(paper['title'])}</title>",
        f"      <link>https://arxiv.org/abs/{pid}</link>",
        f"      <description>{escape(description)}</description>",
        f'      <guid isPermaLink="false">oai:arXiv.org:{pid}{version}</guid>',
        *(f"      <category>{c}</category>" for c in cats),
        f"      <pubDate>{rfc822(DEMO_DAY)}</pubDate>",
        f"      <arxiv:announce_type>{announce}</arxiv:announce_type>",
        "      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>",
        f"      <dc:creator>{escape(', '.join(authors))}</dc:creator>",
        "    </item>",
    ]
    return "\n".join(lines)


def rfc822(day: date) -> str:
    return f"{day:%a, %d %b %Y} 00:00:00 -0500"


def build_feed(items: list[str]) -> str:
    cats = "cs.LG+cs.CL+cs.CV"
    head = f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" \
xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" \
version="2.0">
  <channel>
    <title>cs.LG, cs.CL, cs.CV updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{cats}</link>
    <description>cs.LG, cs.CL, cs.CV updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/{cats}" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{DEMO_DAY:%a, %d %b %Y} 05:00:00 +0000</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{rfc822(DEMO_DAY)}</pubDate>
    <skipDays>
      <day>Saturday</day>
      <day>Sunday</day>
    </skipDays>
"""
    return head + "\n".join(items) + "\n  </channel>\n</rss>\n"


_SENTENCE = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
_CONTRIBUTION = re.compile(r"^(We|This paper|This work|In this (paper|work)|Our)\b")
SUMMARY_CHARS = 220


def ai_summary_for(abstract: str) -> str:
    """A one-sentence stand-in for Hugging Face's AI summary: the abstract's first sentence that
    states the contribution ("We propose ..."), else its first sentence; '' when too long."""
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(abstract.split())) if s.strip()]
    chosen = next(
        (s for s in sentences if _CONTRIBUTION.match(s)), sentences[0] if sentences else ""
    )
    return chosen if len(chosen) <= SUMMARY_CHARS else ""


def hf_item(rng: random.Random, paper: dict, authors: list[str], upvotes: int) -> dict:
    pid = paper["arxiv_id"]
    submitter = {
        "_id": f"{rng.getrandbits(96):024x}",
        "avatarUrl": "/avatars/demo.svg",
        "fullname": authors[0].split(" (")[0],
        "name": re.sub(r"\W", "", authors[0].split(" (")[0]).lower()[:16] or "reader",
        "type": "user",
    }
    published = paper.get("published", DEMO_DAY - timedelta(days=1))
    inner: dict = {
        "id": pid,
        "authors": [
            {"_id": f"{rng.getrandbits(96):024x}", "name": name.split(" (")[0], "hidden": False}
            for name in authors
        ],
        "publishedAt": f"{published.isoformat()}T00:00:00.000Z",
        "submittedOnDailyAt": f"{DEMO_DAY.isoformat()}T00:00:00.000Z",
        "title": paper["title"],
        "submittedOnDailyBy": submitter,
        "summary": paper["abstract"],
        "upvotes": upvotes,
        "discussionId": f"{rng.getrandbits(96):024x}",
    }
    if rng.random() < 0.45:
        inner["githubStars"] = int(rng.paretovariate(1.1) * 12)
    inner["ai_keywords"] = []
    inner["ai_summary"] = ai_summary_for(paper["abstract"])
    return {
        "paper": inner,
        "publishedAt": f"{published.isoformat()}T20:00:00.000Z",
        "title": paper["title"],
        "summary": paper["abstract"],
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{pid}.png",
        "numComments": min(int(rng.expovariate(0.6)), 25),
        "submittedBy": submitter,
        "isAuthorParticipating": rng.random() < 0.4,
    }


def build(corpus_path: Path, out_dir: Path) -> tuple[Path, Path]:
    rng = random.Random(SEED)
    lines = corpus_path.read_text(encoding="utf-8").splitlines()
    papers = [repaired(json.loads(line)) for line in lines]
    rng.shuffle(papers)
    feed_papers = papers[:FEED_NEW]
    replaced = papers[FEED_NEW : FEED_NEW + FEED_REPLACED]
    hf_only = papers[FEED_NEW + FEED_REPLACED : FEED_NEW + FEED_REPLACED + HF_ONLY]
    for n, p in enumerate(feed_papers):
        p["arxiv_id"] = f"2611.{90001 + n}"
    for n, p in enumerate(replaced):
        p["arxiv_id"] = f"2610.{95001 + n}"
    for n, p in enumerate(hf_only):
        p["arxiv_id"] = f"2611.{96001 + n}"
        p["published"] = DEMO_DAY - timedelta(days=rng.choice((3, 4, 6, 7)))
    meta = {
        p["arxiv_id"]: (categories_for(rng, p["title"], p["abstract"]), authors_for(rng))
        for p in feed_papers + replaced + hf_only
    }

    items = []
    n_cross = len(feed_papers) // 8
    for n, p in enumerate(feed_papers):
        cats, authors = meta[p["arxiv_id"]]
        if n >= len(feed_papers) - n_cross:  # cross-lists: primary elsewhere
            cats = [rng.choice(CROSS_FROM), *cats]
            items.append(rss_item(p, "cross", cats, authors))
        else:
            items.append(rss_item(p, "new", cats, authors))
    for n, p in enumerate(replaced):
        cats, authors = meta[p["arxiv_id"]]
        items.append(rss_item(p, "replace" if n % 3 else "replace-cross", cats, authors))
    feed = build_feed(items)

    listed = hf_listed(rng, feed_papers) + hf_only
    votes = sorted((int(rng.paretovariate(0.9) * 3) for _ in listed), reverse=True)
    hf = [hf_item(rng, p, meta[p["arxiv_id"]][1], v) for p, v in zip(listed, votes, strict=True)]

    feed_path = out_dir / "demo_arxiv_rss.xml"
    hf_path = out_dir / "demo_hf_daily_papers.json"
    feed_path.write_text(feed, encoding="utf-8")
    hf_path.write_text(json.dumps(hf, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return feed_path, hf_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for path in build(args.corpus, args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
