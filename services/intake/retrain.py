"""Retrain triage from dispatchers' corrections, safely:

    python -m services.intake.retrain

Trains a candidate on the shipped data plus every stored correction, scores it and the model in use
on the held-out sets (shared/data/triage/heldout/, a voice no training file uses, never trained on),
and records the decision in intake's `triage_models` table. The candidate replaces the model only if
it is not worse on held-out data: category accuracy and urgent recall both at least the current
model's. Every intake replica then switches to it on its next corrections poll (and at start-up),
retraining the same deterministic model from the same rows. Run it as a scheduled job (nightly).
"""

import asyncio
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from services.intake import store
from services.intake.evaluate import Scores, measure
from services.intake.settings import IntakeSettings
from services.intake.triage_models import accepted_model, correction_examples, load_triage_model, read_heldout
from shared.db import apply_migrations, create_pool, schema_name
from shared.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str
    version: str
    corrections_through: int
    candidate: Scores
    current: Scores


def not_worse(candidate: Scores, current: Scores) -> tuple[bool, str]:
    """Whether the candidate may replace the current model, and why, in the scores' words."""
    if candidate.category_accuracy < current.category_accuracy:
        return False, (
            f"category accuracy on held-out data would fall from {current.category_accuracy:.1%} "
            f"to {candidate.category_accuracy:.1%}"
        )
    if candidate.urgent_recall < current.urgent_recall:
        return False, (
            f"urgent recall on held-out data would fall from {current.urgent_recall:.1%} "
            f"to {candidate.urgent_recall:.1%}"
        )
    return True, (
        f"not worse on held-out data: category {candidate.category_accuracy:.1%} "
        f"(was {current.category_accuracy:.1%}), urgent recall {candidate.urgent_recall:.1%} "
        f"(was {current.urgent_recall:.1%})"
    )


async def retrain(pool: asyncpg.Pool, settings: IntakeSettings, taxonomy: Taxonomy) -> Decision | None:
    """Train, compare and record one candidate; None when no correction came since the last run."""
    async with pool.acquire() as conn:
        last = await store.last_correction_id(conn)
        previous = await store.accepted_triage_model(conn)
        through = previous["corrections_through"] if previous else 0
        if last == through:
            return None
        current = await accepted_model(conn, settings, taxonomy)
        rows = await store.corrections_through(conn, last_id=last)
    base = await asyncio.to_thread(load_triage_model, settings, taxonomy)
    extra = correction_examples(rows, taxonomy=taxonomy, model=base)
    candidate = await asyncio.to_thread(load_triage_model, settings, taxonomy, extra=extra)
    heldout = read_heldout(settings.triage_training_dir)
    candidate_scores, current_scores = measure(candidate, heldout), measure(current, heldout)
    accepted, reason = not_worse(candidate_scores, current_scores)
    async with pool.acquire() as conn:
        await store.insert_triage_model(
            conn,
            version=candidate.version,
            corrections_through=last,
            accepted=accepted,
            candidate_scores=asdict(candidate_scores),
            current_scores=asdict(current_scores),
            reason=reason,
        )
    return Decision(accepted, reason, candidate.version, last, candidate_scores, current_scores)


async def run(settings: IntakeSettings) -> Decision | None:
    pool = await create_pool(settings)
    try:
        await apply_migrations(pool, schema=schema_name(settings), service_dir=Path(__file__).parent)
        return await retrain(pool, settings, load_taxonomy(settings.responsibility_list_path))
    finally:
        await pool.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    decision = asyncio.run(run(IntakeSettings(service_name="intake")))
    if decision is None:
        print("No correction since the last retraining: nothing to do.")
    else:
        verdict = "accepted: every replica switches to it" if decision.accepted else "kept the current model"
        print(f"triage model {decision.version} (corrections through {decision.corrections_through}): {verdict}")
        print(f"  {decision.reason}")


if __name__ == "__main__":
    main()
