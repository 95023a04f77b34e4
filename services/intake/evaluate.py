"""Measure triage: k-fold cross-validation on the shipped training data, and (optionally) accuracy
on a labelled JSONL file that is evaluated only, never trained on.

    python -m services.intake.evaluate [--labelled ../shared/acceptance/public.jsonl]
"""

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from services.intake.settings import IntakeSettings
from services.intake.triage import Example, Lexicon, TriageModel, parse_examples, parse_lexicon
from shared.taxonomy import Taxonomy, load_taxonomy


@dataclass(frozen=True)
class Scores:
    n: int
    category_accuracy: float
    department_accuracy: float  # manual triage counts as grid_center
    urgent_recall: float
    urgent: int
    false_urgent: int
    manual: int

    def line(self) -> str:
        return (
            f"{self.n} reports: category accuracy {self.category_accuracy:.1%}, department accuracy "
            f"{self.department_accuracy:.1%} ({self.manual} to manual triage), urgent recall "
            f"{self.urgent_recall:.1%} of {self.urgent}, {self.false_urgent} false urgent"
        )


def measure(model: TriageModel, labelled: list[Example], taxonomy: Taxonomy) -> Scores:
    """Scores of a model on labelled examples."""
    results = [model.classify(e.text) for e in labelled]
    pairs = list(zip(results, labelled, strict=True))
    urgent = [r.priority == "urgent" for r, e in pairs if e.priority == "urgent"]
    return Scores(
        n=len(labelled),
        category_accuracy=sum(r.category == e.category for r, e in pairs) / len(pairs),
        department_accuracy=sum(r.department == taxonomy.categories[e.category].department_code for r, e in pairs)
        / len(pairs),
        urgent_recall=sum(urgent) / len(urgent) if urgent else 1.0,
        urgent=len(urgent),
        false_urgent=sum(r.priority == "urgent" for r, e in pairs if e.priority == "normal"),
        manual=sum(r.needs_manual_triage for r in results),
    )


def cross_validate(
    examples: list[Example], *, taxonomy: Taxonomy, lexicon: Lexicon, threshold: float, folds: int = 5, seed: int = 0
) -> Scores:
    """Pooled scores of `folds` models, each tested on the examples it was not trained on."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    results = []
    for k in range(folds):
        held_out = set(order[k::folds])
        model = TriageModel(
            taxonomy=taxonomy,
            lexicon=lexicon,
            threshold=threshold,
            examples=[e for i, e in enumerate(examples) if i not in held_out],
        )
        part = [examples[i] for i in sorted(held_out)]
        results.append((measure(model, part, taxonomy), len(part)))
    total = sum(n for _, n in results)
    urgent = sum(s.urgent for s, _ in results)
    return Scores(
        n=total,
        category_accuracy=sum(s.category_accuracy * n for s, n in results) / total,
        department_accuracy=sum(s.department_accuracy * n for s, n in results) / total,
        urgent_recall=sum(s.urgent_recall * s.urgent for s, _ in results) / urgent if urgent else 1.0,
        urgent=urgent,
        false_urgent=sum(s.false_urgent for s, _ in results),
        manual=sum(s.manual for s, _ in results),
    )


def read_labelled(path: Path) -> list[Example]:
    """JSONL rows with text, category and priority."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Example(text=r["text"], category=r["category"], priority=r.get("priority", "normal")) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", type=Path, help="a labelled JSONL file to evaluate on (never trained on)")
    args = parser.parse_args()
    settings = IntakeSettings()
    taxonomy = load_taxonomy(settings.responsibility_list_path)
    lexicon = parse_lexicon(settings.triage_lexicon_path.read_text(encoding="utf-8"))
    examples = parse_examples(settings.triage_training_path.read_text(encoding="utf-8"))
    cv = cross_validate(examples, taxonomy=taxonomy, lexicon=lexicon, threshold=settings.triage_min_confidence)
    print("5-fold cross-validation on the training data:", cv.line())
    if args.labelled:
        model = TriageModel(
            taxonomy=taxonomy, lexicon=lexicon, examples=examples, threshold=settings.triage_min_confidence
        )
        print(f"{args.labelled}:", measure(model, read_labelled(args.labelled), taxonomy).line())


if __name__ == "__main__":
    main()
