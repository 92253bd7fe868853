"""`newsletter eval pool`, the unjudged@10 pool-bias figure of `eval compare`, and the sealed
set's files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.ranking.baselines import BASELINES
from newsletter.ranking.evaluate import load_corpus, load_profiles, load_qrels
from newsletter.ranking.rank import RANKERS
from tests.test_eval import CHECK_PROFILES, CORPUS, EVAL, PROFILES, TINY, write_jsonl

SEALED_PROFILES = EVAL / "sealed_profiles.jsonl"
SEALED_QRELS = EVAL / "sealed_qrels.json"

MORE = [
    {"id": "draft", "title": "Draft models for speculative decoding", "abstract": "Tokens."},
    {"id": "evict", "title": "Evicting the KV cache", "abstract": "Cached keys are dropped."},
    {"id": "lowbit", "title": "4-bit quantization of LLMs", "abstract": "Weights in 4 bits."},
]


def pool_rows(output: str) -> dict[str, dict[str, list[str]]]:
    rows: dict[str, dict[str, list[str]]] = {}
    for line in output.splitlines():
        key, pid, found = line.split("\t")
        assert pid not in rows.setdefault(key, {}), line
        rows[key][pid] = found.split(",")
    return rows


def ranked_by_cli(corpus: str, profiles: str, ranker: str, k: int) -> dict[str, list[str]]:
    result = CliRunner().invoke(
        cli,
        ["eval", "run", "--corpus", corpus, "--profiles", profiles, "--ranker", ranker],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    run: dict[str, list[str]] = {}
    for line in result.output.splitlines():
        key, pid, _ = line.split("\t")
        run.setdefault(key, []).append(pid)
    return {key: ids[:k] for key, ids in run.items()}


def test_eval_pool_prints_the_union_of_every_rankers_top_papers(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", TINY + MORE)
    profiles = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "s", "interests": ["speculative decoding"]},
            {"id": "k", "interests": ["KV cache"], "likes": ["kv"]},
        ],
    )
    args = ["eval", "pool", "--corpus", corpus, "--profiles", profiles, "--depth", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = pool_rows(result.stdout)
    assert set(rows) == {"s", "k"}
    assert "kv" not in rows["k"]  # a liked paper is never pooled for its own profile
    runs = 2 * len(RANKERS) + len(BASELINES)  # every ranker with and without likes
    assert re.search(
        rf"^\d+ papers pooled for 2 profiles \(\d+-\d+ each\) from {runs} runs", result.stderr
    )
    names = {name for found in rows["s"].values() for name in found}
    assert set(RANKERS) <= names and {"bm25-plain", "tfidf-cosine"} <= names
    assert "sanity-svm" in {n for found in rows["k"].values() for n in found}
    assert "default/no-likes" in {n for found in rows["k"].values() for n in found}
    for ranker in ("default", "bm25"):
        for key, ids in ranked_by_cli(corpus, profiles, ranker, 3).items():
            for pid in ids:  # each of the ranker's top 3 is pooled and credited to it
                assert ranker in rows[key][pid], (ranker, key, pid)
    for key, papers in rows.items():  # and nothing is credited to a ranker that did not rank it
        for pid, found in papers.items():
            for name in (n for n in found if n in ("default", "bm25")):
                assert pid in ranked_by_cli(corpus, profiles, name, 3)[key]


def test_eval_pool_leaves_out_judged_papers_and_refuses_bad_names(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", TINY + MORE)
    profiles = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "s", "interests": ["speculative decoding"]}]
    )
    qrels = tmp_path / "q.json"
    qrels.write_text(json.dumps({"s": {"spec": 2, "draft": 2}}))
    args = ["eval", "pool", "--corpus", corpus, "--profiles", profiles, "--depth", "5"]
    runner = CliRunner()
    full = pool_rows(runner.invoke(cli, [*args, "--no-baselines"]).stdout)["s"]
    result = runner.invoke(cli, [*args, "--no-baselines", "--qrels", str(qrels)])
    assert result.exit_code == 0, result.stderr
    rest = pool_rows(result.stdout)["s"]
    assert {"spec", "draft"} <= set(full) and not {"spec", "draft"} & set(rest)
    assert set(rest) == set(full) - {"spec", "draft"}
    assert not {n for found in rest.values() for n in found} & set(BASELINES)
    bad = runner.invoke(cli, [*args, "--ranker", "magic"])
    assert bad.exit_code == 1 and "unknown ranker 'magic'" in bad.stderr + bad.stdout
    both = runner.invoke(cli, [*args, "--baseline", "bm25-plain", "--no-baselines"])
    assert both.exit_code == 2 and "exclude each other" in both.stderr


def test_compare_counts_unjudged_papers_in_each_rankers_top_10(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", TINY + MORE)
    profiles = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "s", "interests": ["speculative decoding"]},
            {"id": "q", "interests": ["quantization"]},
        ],
    )
    # only two papers judged for "s": every other paper in its top 10 is unjudged
    qrels = tmp_path / "q.json"
    judged = {"s": {"spec": 2, "draft": 1}, "q": {p["id"]: 0 for p in TINY + MORE}}
    judged["q"]["quant"] = 2
    qrels.write_text(json.dumps(judged))
    args = ["eval", "compare", "--corpus", corpus, "--profiles", profiles, "--qrels", str(qrels)]
    result = CliRunner().invoke(cli, [*args, "--ranker", "bm25", "--ranker", "default"])
    assert result.exit_code == 0, result.output
    out = result.output
    run = ranked_by_cli(corpus, profiles, "default", 10)
    expected_s = sum(1 for pid in run["s"] if pid not in judged["s"])
    assert expected_s >= 1
    detail = out.split("per profile (default):\n")[1].splitlines()
    assert detail[0].split() == ["profile", "nDCG@10", "P@10", "R@20", "unjudged@10"]
    cells = {line.split()[0]: line.split() for line in detail[1:]}
    assert int(cells["s"][4]) == expected_s and int(cells["q"][4]) == 0
    assert float(cells["MEAN"][4]) == expected_s / 2
    block = out.split("unjudged papers in the top 10 (scored as 0):\n")[1].split("\n\n")[0]
    per = {line.rsplit(None, 3)[0].strip(): line.rsplit(None, 3)[1:] for line in block.splitlines()}
    assert per["default"] == [f"{expected_s / 2:.2f}", str(expected_s), "s"]
    bm25 = ranked_by_cli(corpus, profiles, "bm25", 10)
    assert float(per["bm25"][0]) == sum(1 for p in bm25["s"] if p not in judged["s"]) / 2
    assert "tfidf-cosine (baseline)" in per


def test_sealed_set_is_well_formed_and_apart_from_dev_and_check():
    corpus = {p.id for p in load_corpus(Path(CORPUS))}
    profiles = load_profiles(SEALED_PROFILES, 20)
    qrels = load_qrels(SEALED_QRELS)
    others = load_profiles(Path(PROFILES), 20) + load_profiles(Path(CHECK_PROFILES), 20)
    assert len(profiles) >= 20 and not {p.key for p in others} & {p.key for p in profiles}
    texts = {t.lower() for p in others for t, _ in p.queries}
    assert not texts & {t.lower() for p in profiles for t, _ in p.queries}
    assert sum(1 for p in profiles if len(p.liked) == 3) >= 8
    assert set(qrels) == {p.key for p in profiles}
    for p in profiles:
        judged = qrels[str(p.key)]
        assert set(p.liked) <= corpus and not set(p.liked) & set(judged), p.key
        assert set(judged) <= corpus and set(judged.values()) <= {0, 1, 2}, p.key
        assert 2 in judged.values() and len(judged) >= 30, p.key
