"""`docunet-rt synth`, `convert` and `lexicon`: data tools (no torch, no model)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import EXIT_REJECTED, EXIT_USAGE, console, fail, flag, run_guarded, setup_logging

__all__ = ["convert_command", "lexicon_command", "register", "synth_command"]

SYNTH_HELP = (
    "Write a synthetic DocRED-style corpus for demos: train/dev/test, relations, extract input."
    "\n\nShort templated biographies with 8 relation types, coreferent mentions and multi-hop "
    "relations (born in a city that lies in a country ⇒ country of citizenship).\n\n"
    "Files: train.json, dev.json, test.json (DocRED JSON), relations.json (id → name) and "
    "corpus.jsonl (the test documents without labels, as extract input; some as plain text "
    "with character offsets).\n\n"
    "Example: docunet-rt synth -o demo_data --docs 500 --seed 13"
)
CONVERT_HELP = (
    "Convert documents between DocRED JSON, JSONL, CDR/GDA .data and PubTator (the input plain "
    "or gzip-compressed).\n\n"
    "CDR/PubTator candidate pairs cannot be written in DocRED-style records (a warning says "
    "so); concept ids are kept as an id key on each mention, which the readers take back as "
    "the entity's id.\n\n"
    "Example: docunet-rt convert CDR_TestSet.PubTator.txt -o cdr_test.jsonl"
)


def synth_command(
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Directory to write (created if missing; files in it are replaced).",
    ),
    docs: int = typer.Option(
        500, "--docs", help="Number of documents in all, split 70/15/15 into train/dev/test (>= 3)."
    ),
    seed: int = typer.Option(13, "--seed", help="Random seed: the same seed gives the same files."),
    text_fraction: float = typer.Option(
        0.2, "--text-fraction", help="Share of corpus.jsonl lines written as plain text (0-1)."
    ),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Write a synthetic DocRED-style corpus (help: SYNTH_HELP)."""
    setup_logging(verbose)
    if docs < 3:
        fail(f"--docs must be at least 3 (one document per split), got {docs}", EXIT_USAGE)
    if not 0 <= text_fraction <= 1:
        fail(f"--text-fraction must be between 0 and 1, got {text_fraction}", EXIT_USAGE)
    from ..synth import generate

    n = run_guarded(generate, out, docs=docs, seed=seed, text_fraction=text_fraction)
    console.print(
        f"wrote {n['train']}/{n['dev']}/{n['test']} train/dev/test documents, relations.json and "
        f"corpus.jsonl ({n['test']} lines, {n['text']} plain text) to {out}",
        highlight=False,
    )


def convert_command(
    input: Path = typer.Argument(..., help="File to convert (plain or gzip-compressed)."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (replaced if it exists)."),
    src: str = typer.Option(
        "auto",
        "--from",
        help="Input format: auto (detect from the content), docred (JSON list), jsonl (one "
        "record per line, DocRED-style or plain text {id, text, entities}), cdr (EoG .data, "
        "CDR/GDA), pubtator (PMID|t|title ...; entities grouped by concept id).",
    ),
    dst: str | None = typer.Option(
        None,
        "--to",
        help="Output format: jsonl (one DocRED-style record with an id per line, the extract "
        "input) or docred (JSON list). Default: docred when --out ends in .json, else jsonl.",
    ),
    skip_bad: bool = flag(
        False, "--skip-bad", help="Skip and count bad records instead of stopping."
    ),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Convert documents between formats (help: CONVERT_HELP)."""
    setup_logging(verbose)
    from ..convert import SOURCES, TARGETS, convert

    if src not in SOURCES:
        fail(f"unknown --from format {src!r}; valid: {', '.join(SOURCES)}", EXIT_USAGE)
    if dst is None:
        dst = "docred" if out.suffix.lower() == ".json" else "jsonl"
    elif dst not in TARGETS:
        fail(f"unknown --to format {dst!r}; valid: {', '.join(TARGETS)}", EXIT_USAGE)
    n = run_guarded(convert, input, out, src=src, dst=dst, skip_bad=skip_bad)
    console.print(f"wrote {n} documents ({dst}) to {out}", highlight=False)


LEXICON_HELP = (
    "Build the concept lexicon of the raw-text front end (normalised surface form and type → "
    "concept id) from annotated files whose entities carry ids (PubTator: MeSH ids; DocRED-style "
    "records with an id on each mention).\n\n"
    "train-ner writes one from its training files into NER_CKPT/lexicon.json; this command "
    "rebuilds it from other annotated files (e.g. train + dev), never from documents you "
    "evaluate on. export --tagger copies it into the MODEL_DIR.\n\n"
    "Example: docunet-rt lexicon CDR_TrainingSet.PubTator.txt CDR_DevelopmentSet.PubTator.txt "
    "-o ner_ckpt/lexicon.json\n\n"
    "--terms adds a vocabulary (term<TAB>type<TAB>id lines, e.g. MeSH entry terms exported from "
    "NLM's files) for concepts the annotations never name; without one, a mention whose concept "
    "is not in the annotated files stays unlinked and gives no CID line. Bad vocabulary lines "
    "are reported with file and line, the rest is used, and the exit code is 3."
)


def lexicon_command(
    files: list[Path] = typer.Argument(
        None, help="Annotated files (any format read_documents reads)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="lexicon.json to write (replaced)."),
    terms: list[Path] = typer.Option(
        [],
        "--terms",
        help="Vocabulary file, term<TAB>type<TAB>id per line (e.g. MeSH entry terms with their "
        "descriptor ids); adds forms the annotated files lack. Repeatable.",
    ),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Build a concept lexicon (help: LEXICON_HELP)."""
    setup_logging(verbose)
    from ..data import read_documents
    from ..ner.recognize import add_terms, build_lexicon, read_terms, save_lexicon

    docs = [d for f in files or [] for d in run_guarded(read_documents, f)]
    lexicon = build_lexicon(docs)
    added, rejected = 0, []
    for path in terms:
        if not path.is_file():
            fail(f"--terms {path}: no such file")
        rows, bad = read_terms(path)
        added += add_terms(lexicon, rows)
        rejected += bad
    for e in rejected[:5]:
        console.print(f"rejected: {e}", highlight=False)
    if not len(lexicon):
        fail("no entity with a concept id in these files: nothing to build a lexicon from")
    run_guarded(save_lexicon, lexicon, out)
    console.print(
        f"wrote {len(lexicon)} forms ({added} from --terms) from {len(docs)} documents to {out}"
        + (f"; {len(rejected)} vocabulary line(s) rejected" if rejected else ""),
        highlight=False,
    )
    if rejected:
        raise typer.Exit(EXIT_REJECTED)


def register(app: typer.Typer) -> None:
    """Add the ``synth`` and ``convert`` commands to ``app`` (once)."""
    names = {c.name for c in app.registered_commands}
    if "synth" not in names:
        app.command("synth", help=SYNTH_HELP)(synth_command)
    if "convert" not in names:
        app.command("convert", help=CONVERT_HELP)(convert_command)
    if "lexicon" not in names:
        app.command("lexicon", help=LEXICON_HELP)(lexicon_command)
