"""`newsletter eval run | score | compare | loo` on the dev and check sets and tiny corpora, the
outside baselines, and the metrics themselves."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import minimize

from newsletter.cli import cli
from newsletter.ranking.baselines import BASELINES, _Words, bm25_scores, linear_svm
from newsletter.ranking.evaluate import (
    Scores,
    load_corpus,
    load_profiles,
    load_qrels,
    mean,
    run_lines,
    score_one,
)
from newsletter.ranking.loo import choose_held_out

EVAL = Path(__file__).parent / "fixtures" / "eval"
CORPUS = str(EVAL / "corpus.jsonl")
PROFILES = str(EVAL / "dev_profiles.jsonl")
QRELS = str(EVAL / "dev_qrels.json")


def mean_ndcg(table: str) -> float:
    match = re.search(r"^MEAN\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", table, re.M)
    assert match, table
    return float(match.group(1))


def summary_rows(output: str) -> dict[str, tuple[int, float, str]]:
    """The compare summary: name -> (profiles, mean nDCG@10, worst profile)."""
    found = re.findall(
        r"^(\S+(?: \(baseline\))?)\s+(\d+)\s+([0-9.]+)(?:\s+[0-9.]+){4} (\S+)$",
        output,
        re.M,
    )
    return {name: (int(n), float(ndcg), worst) for name, n, ndcg, worst in found}


def run_and_score(runner: CliRunner, ranker: str) -> tuple[str, str]:
    run = runner.invoke(
        cli, ["eval", "run", "--corpus", CORPUS, "--profiles", PROFILES, "--ranker", ranker]
    )
    assert run.exit_code == 0, run.output
    scored = runner.invoke(cli, ["eval", "score", "--run", "-", "--qrels", QRELS], input=run.output)
    assert scored.exit_code == 0, scored.output
    return run.output, scored.output


def test_eval_run_piped_into_score_prints_means_and_default_beats_bm25():
    runner = CliRunner()
    run, default = run_and_score(runner, "default")
    _, bm25 = run_and_score(runner, "bm25")
    lines = run.splitlines()
    profiles = {line.split("\t")[0] for line in lines}
    assert len(profiles) == 8 and len(lines) == 8 * 20
    first = lines[0].split("\t")
    assert first[2] == "1" and first[1].startswith("p")
    for name in profiles:
        assert re.search(rf"^{re.escape(name)}\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+$", default, re.M)
    assert mean_ndcg(default) > mean_ndcg(bm25)
    assert mean_ndcg(default) >= 0.9  # the dev target is 0.92 (see the closing table)


def test_eval_score_reads_a_run_file(tmp_path):
    run_file = tmp_path / "run.tsv"
    run_file.write_text("fairness\tp999\t1\n")
    result = CliRunner().invoke(cli, ["eval", "score", "--run", str(run_file), "--qrels", QRELS])
    assert result.exit_code == 0, result.output
    assert "fairness" in result.output and mean_ndcg(result.output) == 0.0


def test_eval_compare_measures_baseline_and_default_in_one_run():
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "compare",
            "--corpus",
            CORPUS,
            "--profiles",
            PROFILES,
            "--qrels",
            QRELS,
            "--ranker",
            "bm25",
            "--ranker",
            "default",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = summary_rows(result.output)
    assert rows["default"][1] > rows["bm25"][1]
    assert {"bm25-plain (baseline)", "tfidf-cosine (baseline)"} <= set(rows)
    assert "sanity-svm (baseline)" not in rows
    assert "sanity-svm: not run, it needs liked papers" in result.output
    assert "per profile (default)" in result.output


def test_eval_compare_asks_for_every_interest_in_a_sentence():
    """--phrase wraps each interest in the reader's request; ours keeps its figure (the
    request's words are dropped) while plain BM25 on the whole sentence loses some."""

    def means(*extra: str) -> dict[str, list[float]]:
        args = ["eval", "compare", "--corpus", CORPUS, "--profiles", PROFILES, "--qrels", QRELS]
        result = CliRunner().invoke(cli, [*args, "--ranker", "default", *extra])
        assert result.exit_code == 0, result.output
        return summary_rows(result.output)

    bare = means()
    asked = means("--phrase", "I'm looking for recent research about {}")
    assert asked["default"][1] >= bare["default"][1] - 0.005
    assert asked["bm25-plain (baseline)"][1] < bare["bm25-plain (baseline)"][1]
    bad = CliRunner().invoke(
        cli,
        [
            "eval",
            "compare",
            "--corpus",
            CORPUS,
            "--profiles",
            PROFILES,
            "--qrels",
            QRELS,
            "--phrase",
            "no slot here",
        ],
    )
    assert bad.exit_code == 2 and "one {} where the interest goes" in bad.output


def test_bad_inputs_give_clear_errors(tmp_path):
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"id": "a", "title": "x"}\nnot json\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "run", "--corpus", str(bad), "--profiles", PROFILES])
    assert result.exit_code == 1
    assert f"{bad}:2: not a JSON object" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        cli, ["eval", "run", "--corpus", CORPUS, "--profiles", PROFILES, "--ranker", "magic"]
    )
    assert result.exit_code == 1 and "unknown ranker 'magic'" in result.output
    run_file = tmp_path / "run.tsv"
    run_file.write_text("fairness p1 1\n")
    result = runner.invoke(cli, ["eval", "score", "--run", str(run_file), "--qrels", QRELS])
    assert result.exit_code == 1 and "expected profile<TAB>paper_id<TAB>rank" in result.output


def test_metrics_match_a_hand_computed_example():
    judged = {"a": 2, "b": 1, "c": 0, "d": 2}
    s = score_one(["b", "a", "x", "c"], judged)
    dcg = 1 / math.log2(2) + 3 / math.log2(3)
    idcg = 3 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    assert s.ndcg10 == pytest.approx(dcg / idcg)
    assert s.p10 == pytest.approx(0.2)
    assert s.r20 == pytest.approx(0.5)


def test_eval_uses_upvotes_when_the_corpus_has_them(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"id": "q", "title": "Federated learning", "abstract": "clients", "upvotes": 1}\n'
        '{"id": "r", "title": "Federated learning", "abstract": "clients", "upvotes": 50}\n'
    )
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text('{"id": "f", "interests": ["federated learning"]}\n')
    lines = list(run_lines(load_corpus(corpus), load_profiles(profiles, 5)))
    assert lines == ["f\tr\t1", "f\tq\t2"]


CHECK_PROFILES = str(EVAL / "check_profiles.jsonl")
CHECK_QRELS = str(EVAL / "check_qrels.json")


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


TINY = [
    {"id": "spec", "title": "Speculative decoding", "abstract": "A draft model proposes tokens."},
    {"id": "kv", "title": "KV cache eviction", "abstract": "Decoding keeps fewer cached keys."},
    {"id": "prune", "title": "Channel pruning of CNNs", "abstract": "Filters are removed."},
    {"id": "quant", "title": "Post-training quantization", "abstract": "Weights in 4 bits."},
    {"id": "moe", "title": "Mixture of experts routing", "abstract": "Tokens pick experts."},
    {"id": "nas", "title": "Neural architecture search", "abstract": "Search cells for phones."},
]


def test_bm25_and_tfidf_baselines_rank_the_exact_match_first(tmp_path):
    corpus = load_corpus(Path(write_jsonl(tmp_path / "c.jsonl", TINY)))
    profiles = load_profiles(
        Path(
            write_jsonl(tmp_path / "p.jsonl", [{"id": "s", "interests": ["speculative decoding"]}])
        ),
        5,
    )
    for name in ("bm25-plain", "tfidf-cosine"):
        ranked = BASELINES[name].rank(corpus, profiles, 5)["s"]
        # both words in "spec"; only "decoding" in "kv"; nothing in the others
        assert ranked[:2] == ["spec", "kv"], name
    words = _Words(corpus)
    scores = bm25_scores(words, "speculative decoding")
    assert scores[0] > scores[1] > 0 and not scores[2:].any()


def topic_corpus() -> list[dict[str, object]]:
    """12 topics x 5 papers: each topic's words are in exactly its 5 papers, so they pass
    arxiv-sanity-lite's document-frequency filter (min_df 5, max_df 10 % of 60)."""
    rows = []
    for t in range(12):
        vocab = " ".join(f"topic{t}word{w}" for w in range(6))
        for i in range(5):
            rows.append({"id": f"t{t}d{i}", "title": f"Paper {t}.{i}", "abstract": vocab})
    return rows


def test_sanity_svm_ranks_papers_near_the_likes_above_far_ones(tmp_path):
    corpus = load_corpus(Path(write_jsonl(tmp_path / "c.jsonl", topic_corpus())))
    liked = ["t3d0", "t3d1", "t3d2"]
    profiles = load_profiles(
        Path(
            write_jsonl(
                tmp_path / "p.jsonl",
                [
                    {"id": "r", "interests": ["anything"], "likes": liked},
                    {"id": "n", "interests": ["x"]},
                ],
            )
        ),
        10,
    )
    run = BASELINES["sanity-svm"].rank(corpus, profiles, 10)
    assert list(run) == ["r"]  # the profile without likes is not the SVM's to rank
    assert run["r"][:2] == ["t3d3", "t3d4"] and not set(liked) & set(run["r"])


def test_linear_svm_finds_the_liblinear_optimum():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 6))
    y = np.where(x[:, 0] + 0.5 * rng.standard_normal(40) > 0.8, 1.0, -1.0)
    c = 0.5
    n, n_pos = len(y), int((y > 0).sum())
    cost = c * np.where(y > 0, n / (2 * n_pos), n / (2 * (n - n_pos)))
    xt = np.hstack([x, np.ones((n, 1))])

    def objective(w: np.ndarray) -> float:
        margin = np.maximum(0.0, 1.0 - y * (xt @ w))
        return float(0.5 * w @ w + (cost * margin**2).sum())

    best = minimize(objective, np.zeros(xt.shape[1]), method="BFGS", options={"gtol": 1e-10})
    assert linear_svm(x, y, c) == pytest.approx(xt @ best.x, abs=1e-4)
    with pytest.raises(ValueError):
        linear_svm(x, np.ones(n), c)


def test_unjudged_at_10_is_the_share_of_the_top_ten_without_a_judgment():
    got = score_one(["a", "x", "b", "y", "z"], {"a": 2, "b": 0, "c": 1})
    assert got.unjudged10 == pytest.approx(0.3)
    assert mean([got, score_one(["a"], {"a": 1})]).unjudged10 == pytest.approx(0.15)


def test_leave_one_out_chooses_on_the_other_profiles_only():
    def s(v: float) -> Scores:
        return Scores(v, v, v)

    table = {
        "a": {"p": s(0.9), "q": s(0.5), "r": s(0.5)},
        "b": {"p": s(0.1), "q": s(0.8), "r": s(0.8)},
        "c": {"p": s(0.95), "q": s(0.45), "r": s(0.45)},
    }
    # on all profiles "a" is best; held out, p gets the best of the others (b), and q and r a
    # tie between a and c that goes to the one listed first
    assert choose_held_out(table) == {"p": "b", "q": "a", "r": "a"}


def test_eval_loo_prints_the_chosen_setting_and_mean_per_held_out_profile(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", TINY)
    profiles = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "s", "interests": ["speculative decoding"]},
            {"id": "m", "interests": ["mixture of experts"]},
            {"id": "q", "interests": ["quantization"]},
        ],
    )
    qrels = tmp_path / "q.json"
    qrels.write_text(json.dumps({"s": {"spec": 2, "kv": 1}, "m": {"moe": 2}, "q": {"quant": 2}}))
    args = ["eval", "loo", "--corpus", corpus, "--profiles", profiles, "--qrels", str(qrels)]
    result = CliRunner().invoke(cli, [*args, "--setting", "default", "--setting", "no-prf"])
    assert result.exit_code == 0, result.output
    assert "over 3 judged profiles and 2 settings" in result.output
    rows = re.findall(r"^(s|m|q)\s+(default|no-prf)\s+([0-9.]+)\s", result.output, re.M)
    assert {r[0] for r in rows} == {"s", "m", "q"}
    loo = re.search(r"^LOO MEAN\s+([0-9.]+)", result.output, re.M)
    assert loo and float(loo.group(1)) == pytest.approx(
        sum(float(r[2]) for r in rows) / 3, abs=1e-4
    )
    bad = CliRunner().invoke(cli, [*args, "--setting", "magic"])
    assert bad.exit_code == 1 and "unknown setting 'magic'" in bad.output


def test_eval_compare_on_the_check_set_prints_baselines_and_likes_side_by_side():
    args = ["eval", "compare", "--corpus", CORPUS, "--profiles", CHECK_PROFILES]
    result = CliRunner().invoke(cli, [*args, "--qrels", CHECK_QRELS, "--ranker", "default"])
    assert result.exit_code == 0, result.output
    out = result.output
    profiles = load_profiles(Path(CHECK_PROFILES), 20)
    n, n_liked = len(profiles), sum(1 for p in profiles if p.liked)
    rows = summary_rows(out)
    assert set(rows) == {
        "default",
        "bm25-plain (baseline)",
        "tfidf-cosine (baseline)",
        "sanity-svm (baseline)",
    }
    assert rows["default"][0] == n and rows["sanity-svm (baseline)"][0] == n_liked
    assert "R@20  unj@10  worst nDCG@10" in out  # the share of unjudged picks is shown
    matrix = out.split("per profile, nDCG@10:\n")[1].split("\n\n")[0].splitlines()
    cells = {line.split()[0]: line.split()[1:] for line in matrix[1:-1]}
    assert matrix[0].split() == ["profile", "default", "bm25-plain", "tfidf-cosine", "sanity-svm"]
    assert len(cells) == n and sum(1 for c in cells.values() if c[3] != "-") == n_liked
    default = {k: float(c[0]) for k, c in cells.items()}
    assert rows["default"][1] == pytest.approx(sum(default.values()) / n, abs=1e-4)
    assert rows["default"][2] == min(default, key=lambda k: (default[k], k))
    likes = out.split(f"the {n_liked} profiles with likes):\n")[1].split("\n\n")[0].splitlines()
    per = [line.split() for line in likes[1:-2]]
    assert len(per) == n_liked
    for key, before, after, delta, svm in per:
        assert float(after) == pytest.approx(default[key], abs=1e-4)
        assert float(delta) == pytest.approx(float(after) - float(before), abs=2e-4)
        assert float(svm) == pytest.approx(float(cells[key][3]), abs=1e-4)
    assert re.match(
        rf"likes raise nDCG@10 on \d+ of {n_liked} profiles and lower it on \d+", likes[-1]
    )


def test_check_set_is_well_formed():
    corpus = {p.id for p in load_corpus(Path(CORPUS))}
    profiles = load_profiles(Path(CHECK_PROFILES), 20)
    qrels = load_qrels(Path(CHECK_QRELS))
    dev = {p.key for p in load_profiles(Path(PROFILES), 20)}
    assert len(profiles) >= 24 and not dev & {p.key for p in profiles}
    assert sum(1 for p in profiles if len(p.liked) == 3) >= 8
    assert set(qrels) == {p.key for p in profiles}
    for p in profiles:
        judged = qrels[str(p.key)]
        assert set(p.liked) <= corpus and not set(p.liked) & set(judged)
        assert set(judged) <= corpus and set(judged.values()) <= {0, 1, 2}
        assert 2 in judged.values() and len(judged) >= 30


def test_several_profile_sets_are_evaluated_together_and_clashes_refused(tmp_path):
    args = ["eval", "compare", "--corpus", CORPUS, "--ranker", "bm25", "--no-baselines"]
    copy = tmp_path / "copy.jsonl"
    copy.write_text(Path(PROFILES).read_text())
    both = [*args, "--profiles", PROFILES, "--profiles", str(copy), "--qrels", QRELS]
    result = CliRunner().invoke(cli, both)
    assert result.exit_code == 1, result.output
    assert f"profile 'fairness' is in {PROFILES} and {copy}" in result.output
    together = [*args, "--profiles", PROFILES, "--profiles", CHECK_PROFILES]
    result = CliRunner().invoke(cli, [*together, "--qrels", QRELS, "--qrels", CHECK_QRELS])
    assert result.exit_code == 0, result.output
    n = len(load_profiles(Path(PROFILES), 20)) + len(load_profiles(Path(CHECK_PROFILES), 20))
    assert summary_rows(result.output)["bm25"][0] == n
    result = CliRunner().invoke(cli, [*args, "--profiles", PROFILES, "--qrels", CHECK_QRELS])
    assert result.exit_code == 1 and "no profile has judgments" in result.output
    dev = [*args[:-1], "--profiles", PROFILES, "--qrels", QRELS]
    result = CliRunner().invoke(cli, [*dev, "--baseline", "x"])
    assert result.exit_code == 1 and "unknown baseline 'x'" in result.output
    result = CliRunner().invoke(cli, [*dev, "--baseline", "tfidf-cosine", "--no-baselines"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_compare_says_which_baselines_had_nothing_to_rank(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", TINY)
    profiles = write_jsonl(tmp_path / "p.jsonl", [{"id": "l", "likes": ["spec"]}])
    qrels = tmp_path / "q.json"
    qrels.write_text(json.dumps({"l": {"kv": 2, "moe": 0}}))
    args = ["eval", "compare", "--corpus", corpus, "--profiles", profiles, "--qrels", str(qrels)]
    result = CliRunner().invoke(cli, [*args, "--ranker", "default"])
    assert result.exit_code == 0, result.output
    assert "bm25-plain: not run, no profile has interest text" in result.output
    assert "tfidf-cosine: not run, no profile has interest text" in result.output
    assert summary_rows(result.output)["sanity-svm (baseline)"][0] == 1
    twice = CliRunner().invoke(cli, [*args[:4], "--profiles", profiles, *args[4:]])
    assert twice.exit_code == 1 and f"profile 'l' is twice in {profiles}" in twice.output
