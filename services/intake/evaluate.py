"""Measure triage honestly: leave-one-style-out cross-validation on the shipped training data (the
headline), the held-out sets written in a voice no training style uses, and a labelled JSONL file
that is evaluated only, never trained on or tuned on.

    python -m services.intake.evaluate [--labelled ../shared/acceptance/public.jsonl] [--compare]

Leave-one-style-out: for each source style, a model is trained on every other style and tested on
that one; rows made from the same hand-written phrase are left out of training too, so a fold never
sees the test rows' content in another voice. Nested: what training chooses (the category head, the
temperatures, the urgency model's regularisation, its Platt scaling and its threshold) it chooses on
held-out styles of its own training rows, so the test style never informs a choice. Pooled over
folds: category accuracy, urgent recall and precision, per-category recall, the most frequent
confusions, per-style accuracy and calibration (expected calibration error); then the held-out set
and the labelled file, and a table with the figures side by side.
"""

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.intake.settings import IntakeSettings
from services.intake.triage import CATEGORY_HEADS, Calibration, Lexicon, TriageModel, parse_lexicon
from services.intake.triage_data import Example
from services.intake.triage_models import read_heldout, read_training
from shared.settings import PROJECT_ROOT
from shared.taxonomy import Taxonomy, load_taxonomy

PUBLIC_FILE = PROJECT_ROOT.parent / "shared" / "acceptance" / "public.jsonl"


@dataclass
class Predictions:
    """What a model said about labelled examples, pooled over folds."""

    examples: list[Example] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    urgency: list[float] = field(default_factory=list)
    said_urgent: list[bool] = field(default_factory=list)  # at the threshold of the model that said it
    manual: list[bool] = field(default_factory=list)
    calibrations: list[tuple[str, Calibration]] = field(default_factory=list)  # each fold's choices

    def add(self, model: TriageModel, examples: list[Example]) -> None:
        texts = [e.text for e in examples]
        probs = model._scores(model._text_features(texts))
        urgency = model.urgency_probability(texts)
        for i, e in enumerate(examples):
            best = int(np.argmax(probs[i]))
            category = model.categories[best]
            self.examples.append(e)
            self.categories.append(category)
            self.confidences.append(float(probs[i, best]))
            self.urgency.append(float(urgency[i]))
            self.said_urgent.append(bool(urgency[i] >= model.calibration.urgent_threshold))
            self.manual.append(float(probs[i, best]) < model.threshold or category == "other")

    def subset(self, keep: list[int]) -> "Predictions":
        return Predictions(
            examples=[self.examples[i] for i in keep],
            categories=[self.categories[i] for i in keep],
            confidences=[self.confidences[i] for i in keep],
            urgency=[self.urgency[i] for i in keep],
            said_urgent=[self.said_urgent[i] for i in keep],
            manual=[self.manual[i] for i in keep],
            calibrations=self.calibrations,
        )


@dataclass(frozen=True)
class Scores:
    n: int
    category_accuracy: float
    urgent_recall: float
    urgent_precision: float
    urgent: int
    false_urgent: int
    manual: int
    accuracy_when_sure: float  # category accuracy of the reports not sent to manual triage
    calibration_error: float  # expected calibration error of the confidences, 10 bins

    def line(self) -> str:
        return (
            f"{self.n} reports: category {self.category_accuracy:.1%}, urgent recall {self.urgent_recall:.1%} "
            f"of {self.urgent}, urgent precision {self.urgent_precision:.1%} ({self.false_urgent} false urgent); "
            f"{self.manual} to manual triage, {self.accuracy_when_sure:.1%} right among the rest; "
            f"calibration error {self.calibration_error:.3f}"
        )


def scores(p: Predictions, *, threshold: float | None = None) -> Scores:
    """The figures; urgent as each model decided, or at one `threshold` of the urgency probability."""
    right = [c == e.category for c, e in zip(p.categories, p.examples, strict=True)]
    said_urgent = p.said_urgent if threshold is None else [u >= threshold for u in p.urgency]
    is_urgent = [e.priority == "urgent" for e in p.examples]
    hits = sum(s and u for s, u in zip(said_urgent, is_urgent, strict=True))
    sure = [r for r, m in zip(right, p.manual, strict=True) if not m]
    return Scores(
        n=len(right),
        category_accuracy=sum(right) / len(right),
        urgent_recall=hits / sum(is_urgent) if any(is_urgent) else 1.0,
        urgent_precision=hits / sum(said_urgent) if any(said_urgent) else 1.0,
        urgent=sum(is_urgent),
        false_urgent=sum(s and not u for s, u in zip(said_urgent, is_urgent, strict=True)),
        manual=sum(p.manual),
        accuracy_when_sure=sum(sure) / len(sure) if sure else 0.0,
        calibration_error=calibration_error(p.confidences, right),
    )


def calibration_error(confidences: list[float], right: list[bool], bins: int = 10) -> float:
    """Expected calibration error: how far confidence is from accuracy, weighted by bin size."""
    total = 0.0
    for b in range(bins):
        inside = [(c, r) for c, r in zip(confidences, right, strict=True) if b / bins < c <= (b + 1) / bins]
        if inside:
            total += len(inside) * abs(
                sum(c for c, _ in inside) / len(inside) - sum(r for _, r in inside) / len(inside)
            )
    return total / len(confidences)


def urgent_thresholds(p: Predictions) -> list[tuple[float, float, float]]:
    """(threshold, urgent recall, urgent precision) at a few thresholds, for choosing one."""
    out = []
    for t in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8):
        s = scores(p, threshold=t)
        out.append((t, s.urgent_recall, s.urgent_precision))
    return out


def leave_one_style_out(
    examples: list[Example],
    *,
    taxonomy: Taxonomy,
    lexicon: Lexicon,
    threshold: float,
    head: str | None = None,
) -> Predictions:
    """Pooled out-of-fold predictions: each style tested by a model trained on the others, without
    any row that shares a hand-written source with the test rows."""
    pooled = Predictions()
    for style in sorted({e.style for e in examples}):
        test = [e for e in examples if e.style == style]
        groups = {e.group for e in test}
        train = [e for e in examples if e.style != style and e.group not in groups]
        model = TriageModel(taxonomy=taxonomy, lexicon=lexicon, threshold=threshold, examples=train, head=head)
        pooled.add(model, test)
        pooled.calibrations.append((style, model.calibration))
    return pooled


def per_category_recall(p: Predictions) -> dict[str, float]:
    totals = Counter(e.category for e in p.examples)
    right = Counter(e.category for c, e in zip(p.categories, p.examples, strict=True) if c == e.category)
    return {c: right[c] / n for c, n in sorted(totals.items())}


def confusions(p: Predictions, top: int = 12) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted) pairs among the mistakes."""
    pairs = Counter((e.category, c) for c, e in zip(p.categories, p.examples, strict=True) if c != e.category)
    return [(t, g, n) for (t, g), n in pairs.most_common(top)]


def per_style(p: Predictions) -> dict[str, float]:
    totals = Counter(e.style for e in p.examples)
    right = Counter(e.style for c, e in zip(p.categories, p.examples, strict=True) if c == e.category)
    return {s: right[s] / n for s, n in sorted(totals.items())}


def read_labelled(path: Path) -> list[Example]:
    """JSONL rows with text, category, priority (and style)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        Example(
            text=r["text"],
            category=r["category"],
            priority=r.get("priority", "normal"),
            style=r.get("style", "labelled"),
        )
        for r in rows
    ]


def measure(model: TriageModel, labelled: list[Example]) -> Scores:
    """Scores of one model on labelled examples."""
    p = Predictions()
    p.add(model, labelled)
    return scores(p)


def hand_written(p: Predictions) -> Predictions:
    """Only the rows written by hand in their style (not phrases put in a voice): each phrase gives
    fifteen rows, so a phrase missed weighs fifteen times in the pooled figures."""
    return p.subset([i for i, e in enumerate(p.examples) if e.group.split(":")[0] == e.style])


def report(p: Predictions, title: str) -> list[str]:
    lines = [f"{title}: {scores(p).line()}"]
    written = hand_written(p)
    if written.examples and len(written.examples) < len(p.examples):
        lines.append(f"  hand-written rows only: {scores(written).line()}")
    lines.append("  per-category recall: " + ", ".join(f"{c} {r:.0%}" for c, r in per_category_recall(p).items()))
    lines.append("  top confusions (true -> predicted): " + ", ".join(f"{t}->{g} {n}" for t, g, n in confusions(p)))
    lines.append("  per-style accuracy: " + ", ".join(f"{s} {a:.1%}" for s, a in per_style(p).items()))
    return lines


def choices(p: Predictions) -> list[str]:
    """What each fold's training chose on held-out styles of its own rows (nested selection)."""
    lines = []
    for style, c in p.calibrations:
        heads = ", ".join(f"{h} {a:.1%}" for h, a in c.head_accuracy.items())
        precision = ", ".join(f"C={k} {v:.1%}" for k, v in c.urgent_precision.items())
        lines.append(
            f"    without {style}: head {c.head} ({heads}); temperatures NB {c.temperatures[0]}, "
            f"SVM {c.temperatures[1]}; urgency C={c.urgency_c} (precision at the target recall: {precision}); "
            f"urgent at P >= {c.urgent_threshold:.3f}"
        )
    return lines


def side_by_side(columns: list[tuple[str, Predictions]]) -> list[str]:
    """The headline figures and per-category recall, one column per evaluation."""
    width = max(12, *(len(name) for name, _ in columns)) + 2
    figures = [(name, scores(p)) for name, p in columns]
    lines = ["figures side by side:", f"  {'':26s}" + "".join(f"{name:>{width}s}" for name, _ in columns)]
    for label, value in (
        ("reports", lambda s: f"{s.n}"),
        ("category accuracy", lambda s: f"{s.category_accuracy:.1%}"),
        ("urgent recall", lambda s: f"{s.urgent_recall:.1%} of {s.urgent}"),
        ("urgent precision", lambda s: f"{s.urgent_precision:.1%}"),
        ("calibration error", lambda s: f"{s.calibration_error:.3f}"),
    ):
        lines.append(f"  {label:26s}" + "".join(f"{value(s):>{width}s}" for _, s in figures))
    recalls = [per_category_recall(p) for _, p in columns]
    for category in sorted({c for r in recalls for c in r}):
        cells = [f"{r[category]:.0%}" if category in r else "-" for r in recalls]
        lines.append(f"  {'recall ' + category:26s}" + "".join(f"{c:>{width}s}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--labelled", type=Path, default=PUBLIC_FILE, help="a labelled JSONL file, evaluated only")
    parser.add_argument("--compare", action="store_true", help="also cross-validate each category head alone")
    parser.add_argument("--data", type=Path, help="a training data directory (default: the shipped one)")
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    data = args.data or settings.triage_training_dir
    taxonomy = load_taxonomy(settings.responsibility_list_path)
    lexicon = parse_lexicon(settings.triage_lexicon_path.read_text(encoding="utf-8"))
    examples = read_training(data)
    threshold = settings.triage_min_confidence
    styles = Counter(e.style for e in examples)
    print(
        f"training data: {len(examples)} rows in {len(styles)} styles: "
        + ", ".join(f"{s} {n}" for s, n in styles.items())
    )
    p = leave_one_style_out(examples, taxonomy=taxonomy, lexicon=lexicon, threshold=threshold)
    print("\n".join(report(p, "leave-one-style-out (nested: choices made without the test style)")))
    print("  choices made in training, on held-out styles of its own rows:")
    print("\n".join(choices(p)))
    print(
        "  urgent at one threshold for all folds (recall, precision): "
        + ", ".join(f"{th}: {r:.1%}/{pr:.1%}" for th, r, pr in urgent_thresholds(p))
    )
    if args.compare:
        for head in CATEGORY_HEADS:
            forced = leave_one_style_out(examples, taxonomy=taxonomy, lexicon=lexicon, threshold=threshold, head=head)
            print(f"leave-one-style-out, {head} head forced: {scores(forced).line()}")
            print(f"  hand-written rows only: {scores(hand_written(forced)).line()}")
    model = TriageModel(taxonomy=taxonomy, lexicon=lexicon, examples=examples, threshold=threshold)
    columns = [("leave-one-style-out", p), ("LOSO hand-written", hand_written(p))]
    sets = [("held-out", "held-out sets (a voice no training style uses)", read_heldout(data))]
    if args.labelled.exists():
        sets.append(("public file", f"{args.labelled} (evaluated only)", read_labelled(args.labelled)))
    for name, title, labelled in sets:
        q = Predictions()
        q.add(model, labelled)
        print("\n".join(report(q, title)))
        columns.append((name, q))
    print("\n".join(side_by_side(columns)))


if __name__ == "__main__":
    main()
