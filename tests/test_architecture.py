"""The package's shape: no import cycles, one place that makes ONNX Runtime sessions, nothing
that reaches into benchmarks/, and one option set for every extraction path."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

from docunet_rt.extract import run_extraction
from docunet_rt.options import EXTRACT_OPTION_NAMES, ExtractOptions
from docunet_rt.runtime import Extractor

PKG = Path(__file__).resolve().parents[1] / "docunet_rt"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every docunet_rt module ``name`` imports, at module level or inside functions."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                root = ".".join(base[: len(base) - node.level + 1])
                mod = f"{root}.{node.module}" if node.module else root
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import a.b.c` of a non-module attribute
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_package_has_no_import_cycles():
    mods = modules()
    known = set(mods)
    graph = {n: imports_of(n, p, known) for n, p in mods.items()}
    # a package's __init__ runs before its submodules: an edge from a submodule up to its own
    # package is not a cycle by itself, but every other edge counts (lazy imports included)
    for n in graph:
        graph[n] = {m for m in graph[n] if not n.startswith(m + ".")}
    assert graph["docunet_rt.cli.main"]  # the walk sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def constructs_inference_session(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name == "InferenceSession":
                return True
    return False


def test_only_runtime_sessions_creates_inference_sessions():
    makers = sorted(
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if constructs_inference_session(ast.parse(p.read_text()))
    )
    assert makers == ["runtime/sessions.py"]
    assert constructs_inference_session(ast.parse("import onnxruntime as o\no.InferenceSession(m)"))


def test_nothing_in_the_package_reaches_into_benchmarks():
    offenders = []
    for p in PKG.rglob("*.py"):
        tree = ast.parse(p.read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] == "benchmarks" for n in names):
                    offenders.append(str(p))
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
            ):
                if "benchmarks/common" in node.value or node.value == "benchmarks":
                    offenders.append(str(p))
    assert offenders == []


def test_no_module_is_over_600_lines():
    long = {
        str(p.relative_to(PKG)): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert long == {}


# ------------------------------------------------------------------------------------------------
# One option set for every extraction path (in the spirit of faster-whisper's signature test
# between its sequential and batched pipelines)
# ------------------------------------------------------------------------------------------------

JOB_ONLY = {"corpus", "out", "extractor", "errors_path", "strict", "resume", "workers", "pool",
            "progress", "output_format"}  # fmt: skip


def params(fn) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def test_streaming_job_and_extractor_take_the_same_options():
    job, ex, rec = (
        params(run_extraction),
        params(Extractor.extract),
        params(Extractor.extract_records),
    )
    hints = [
        typing.get_type_hints(f)["options"]
        for f in (run_extraction, Extractor.extract, Extractor.extract_records)
    ]
    assert hints[0] == hints[1] == hints[2] == ExtractOptions | None
    # everything else the job takes is about files, workers and resume, not about the triples
    assert set(job) - {"options"} == JOB_ONLY
    assert set(ex) - {"options"} == {"self", "docs", "progress"}
    assert set(rec) - {"options"} == {"self", "records"}
    # no inference option is a loose keyword of one path only
    for name in EXTRACT_OPTION_NAMES:
        assert name not in job and name not in ex and name not in rec


def test_the_extract_command_exposes_every_extract_option():
    from docunet_rt.cli.extract_cmd import extract

    cli = set(params(extract))
    # sort_window is a library knob (memory vs batching quality); every other option is a flag
    assert set(EXTRACT_OPTION_NAMES) - {"sort_window"} <= cli


@pytest.mark.parametrize(
    ("options", "tuned"),
    [
        (ExtractOptions(), 0.0),
        (ExtractOptions(min_score=0.8, top_k=1), 0.0),
        (ExtractOptions(relations=("P2",), batch_size=3), 0.0),
        (ExtractOptions(), 0.7),  # the model's threshold was tuned on dev
        (ExtractOptions(min_score=0.3), 0.7),  # the caller's min_score wins
    ],
)
def test_every_path_gives_the_same_results(tmp_path, options, tuned):
    import orjson
    from _extract_fixtures import StubExtractor, corpus_records, write_jsonl

    records = corpus_records(40, seed=5)
    corpus = write_jsonl(tmp_path / "c.jsonl", records + [b"{not json"])
    run_extraction(
        corpus, tmp_path / "o.jsonl", StubExtractor(decision_threshold=tuned), options, workers=2
    )
    job = [orjson.loads(x) for x in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    ex = StubExtractor(decision_threshold=tuned)
    direct = [r.to_dict() for r in ex.extract(records, options)]
    lines = [(i, orjson.dumps(r)) for i, r in enumerate(records, 1)] + [(41, b"{not json")]
    recs = list(ex.extract_records(lines, options))
    assert job == direct == [r.to_dict() for r in recs[:40]]
    assert recs[40].line == 41 and "invalid JSON" in recs[40].error
    assert any(d["triples"] for d in job)
    if tuned and options.min_score is None:  # decided where an explicit min_score would
        from docunet_rt.decode import sigmoid

        explicit = ExtractOptions(min_score=sigmoid(tuned))
        assert job == [r.to_dict() for r in StubExtractor().extract(records, explicit)]
        assert job != [r.to_dict() for r in StubExtractor().extract(records, ExtractOptions())]
