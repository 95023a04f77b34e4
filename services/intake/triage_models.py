"""Where intake's triage models come from: the shipped training files (trained deterministically,
once per process and version) plus the dispatchers' corrections the retraining job accepted."""

import asyncio
from pathlib import Path

import asyncpg

from services.intake import store
from services.intake.settings import IntakeSettings
from services.intake.triage import TriageModel, fingerprint, parse_lexicon
from services.intake.triage_data import Example, parse_rows, training_examples
from shared.taxonomy import Taxonomy

# A correction counts as this many training rows: it is one row among thousands, but a person
# checked it.
CORRECTION_WEIGHT = 3


def read_training(directory: Path) -> list[Example]:
    """The training examples in a data directory: every `<style>.txt` and phrases.txt in every voice."""
    styles = {p.stem: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.txt")) if p.stem != "phrases"}
    return training_examples(styles, (directory / "phrases.txt").read_text(encoding="utf-8"))


def read_heldout(directory: Path) -> list[Example]:
    """The held-out examples (never trained on): every file in the data directory's heldout/."""
    return [
        e
        for p in sorted((directory / "heldout").glob("*.txt"))
        for e in parse_rows(p.read_text(encoding="utf-8"), style=p.stem)
    ]


# Trained models by version: training takes seconds, and tests start many apps in one process.
_TRAINED: dict[str, TriageModel] = {}


def load_triage_model(settings: IntakeSettings, taxonomy, *, extra: tuple[Example, ...] = ()) -> TriageModel:
    """The triage model trained on the data files the project ships (and `extra` examples: the
    dispatchers' corrections the retraining job accepted). Deterministic: the same files give the
    same model and version, so every replica has the same model without a shipped artifact."""
    lexicon_text = settings.triage_lexicon_path.read_text(encoding="utf-8")
    examples = read_training(settings.triage_training_dir) + list(extra)
    version = fingerprint(examples, lexicon_text)
    if version not in _TRAINED:
        _TRAINED[version] = TriageModel(
            taxonomy=taxonomy,
            lexicon=parse_lexicon(lexicon_text),
            examples=examples,
            threshold=settings.triage_min_confidence,
            version=version,
        )
    return _TRAINED[version].copy(threshold=settings.triage_min_confidence)


def correction_examples(rows: list, *, taxonomy: Taxonomy, model: TriageModel) -> tuple[Example, ...]:
    """Training rows from stored corrections. A correction without a priority keeps the priority
    the model gives its text: the dispatcher changed only the category."""
    out: list[Example] = []
    for row in rows:
        if row["category"] not in taxonomy.categories:
            continue  # a category since removed from the taxonomy
        priority = row["priority"] or model.classify(row["text"]).priority
        example = Example(
            text=row["text"], category=row["category"], priority=priority, style="correction", group=f"c{row['id']}"
        )
        out.extend([example] * CORRECTION_WEIGHT)
    return tuple(out)


async def accepted_model(conn: asyncpg.Connection, settings: IntakeSettings, taxonomy: Taxonomy) -> TriageModel:
    """The model every replica uses: the shipped data plus the corrections the newest accepted
    retraining took (trained in a thread: it takes seconds)."""
    base = await asyncio.to_thread(load_triage_model, settings, taxonomy)
    accepted = await store.accepted_triage_model(conn)
    if accepted is None:
        return base
    rows = await store.corrections_through(conn, last_id=accepted["corrections_through"])
    extra = correction_examples(rows, taxonomy=taxonomy, model=base)
    return await asyncio.to_thread(load_triage_model, settings, taxonomy, extra=extra)
