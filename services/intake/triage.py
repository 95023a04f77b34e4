"""Triage: category, lead department, priority and a confidence from a report's Chinese text.

Category = complement naive Bayes over jieba words and character bigrams, trained on the
examples the project ships (shared/data/triage_training.tsv), plus evidence from the taxonomy
lexicon (shared/data/triage_lexicon.yaml). Naive Bayes learns by counting, so a dispatcher's
correction is one more (weighted) example counted in place: the model improves without a
redeploy. Below the confidence threshold a report goes to manual triage at the grid centre.

Priority is decided by rules, not learned: missing an emergency costs far more than a false
alarm, so any danger cue makes a report urgent; a category that is urgent by default
(燃气, 电梯, 消防…) stays urgent unless the wording is clearly calm and has no danger cue.

Pure: no I/O here. The caller reads the data files and passes their text in.
"""

import math
import re
import threading
from collections import defaultdict
from dataclasses import dataclass

import jieba
import yaml

from shared.taxonomy import Taxonomy

MANUAL_TRIAGE_DEPARTMENT = "grid_center"
FALLBACK_CATEGORY = "other"
# A dispatcher's correction counts as this many ordinary training examples.
CORRECTION_WEIGHT = 3.0
# Laplace smoothing of feature counts. This and the two constants below were chosen by 5-fold
# cross-validation on the shipped training data only.
ALPHA = 1.0
# log-odds added per matched lexicon keyword (longer keywords are more specific: scaled by length).
KEYWORD_WEIGHT = 2.0
# Scores are divided by this before the softmax: naive Bayes multiplies many non-independent
# features and is wildly over-confident; this brings confidences near observed accuracy.
TEMPERATURE = 4.0

jieba.setLogLevel(60)  # jieba logs its dictionary loading at INFO on first use
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_ASCII_WORD = re.compile(r"[A-Za-z]+|\d+")
_STOP = set("的了是在我你他她它们这那就都也还和与及或被把给让很太吧吗呢啊呀嘛哦哈么着过又有没不个一")


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    priority: str = "normal"


@dataclass(frozen=True)
class Lexicon:
    keywords: dict[str, tuple[str, ...]]
    urgent_cues: tuple[re.Pattern, ...]
    calm_cues: tuple[re.Pattern, ...]


@dataclass(frozen=True)
class TriageResult:
    category: str  # best guess, also when manual triage is needed
    category_name: str
    department: str  # MANUAL_TRIAGE_DEPARTMENT when needs_manual_triage
    priority: str  # urgent | normal
    confidence: float  # probability of `category`, 0..1
    needs_manual_triage: bool
    urgent_cues: tuple[str, ...]  # what made it urgent, for the dispatcher
    alternatives: tuple[tuple[str, float], ...]  # next best categories with their probability

    def as_dict(self) -> dict:
        return {
            "category": self.category,
            "category_name": self.category_name,
            "department": self.department,
            "priority": self.priority,
            "confidence": round(self.confidence, 4),
            "needs_manual_triage": self.needs_manual_triage,
            "urgent_cues": list(self.urgent_cues),
            "alternatives": [{"category": c, "confidence": round(p, 4)} for c, p in self.alternatives],
        }


def parse_examples(text: str) -> list[Example]:
    """Training examples from TSV text: category <TAB> priority <TAB> report; '#' starts a comment."""
    examples = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in ("urgent", "normal"):
            raise ValueError(f"training line {n} is not 'category<TAB>priority<TAB>text'")
        examples.append(Example(text=parts[2].strip(), category=parts[0].strip(), priority=parts[1]))
    return examples


def parse_lexicon(text: str) -> Lexicon:
    """The lexicon from its YAML text; cue patterns are compiled here so a bad one fails at startup."""
    data = yaml.safe_load(text)
    return Lexicon(
        keywords={c: tuple(words) for c, words in data["keywords"].items()},
        urgent_cues=tuple(re.compile(p) for p in data["urgent_cues"]),
        calm_cues=tuple(re.compile(p) for p in data["calm_cues"]),
    )


def features(text: str) -> list[str]:
    """Words (jieba) and character bigrams: bigrams survive segmentation mistakes and new words."""
    out = []
    for word in jieba.lcut(text):
        word = word.strip().lower()
        if not (_CJK_RUN.fullmatch(word) or _ASCII_WORD.fullmatch(word)):
            continue  # punctuation, spaces, mixed tokens
        if len(word) == 1 and (word in _STOP or not _CJK_RUN.fullmatch(word)):
            continue  # particles and lone digits carry no topic
        out.append("w:" + word)
    for run in _CJK_RUN.findall(text):
        out.extend("b:" + run[i : i + 2] for i in range(len(run) - 1))
    return out


def urgency(text: str, *, category_priority: str, lexicon: Lexicon) -> tuple[str, tuple[str, ...]]:
    """(priority, the danger cues found). Danger cues always win; calm wording only demotes a
    category that is urgent by default."""
    cues = tuple(m.group(0) for p in lexicon.urgent_cues for m in [p.search(text)] if m)
    if cues:
        return "urgent", cues
    if category_priority == "urgent" and not any(p.search(text) for p in lexicon.calm_cues):
        return "urgent", ()
    return "normal", ()


class TriageModel:
    """Complement naive Bayes with lexicon evidence; `learn` updates it in place (thread-safe)."""

    def __init__(self, *, taxonomy: Taxonomy, lexicon: Lexicon, examples: list[Example], threshold: float):
        unknown = {e.category for e in examples} - set(taxonomy.categories)
        if unknown:
            raise ValueError(f"training examples name unknown categories: {sorted(unknown)}")
        self.taxonomy, self.lexicon, self.threshold = taxonomy, lexicon, threshold
        self.categories = list(taxonomy.categories)
        # Weighted counts (a correction weighs CORRECTION_WEIGHT, not 1), hence floats; a feature not
        # counted reads as 0.0 through .get, so scoring a text adds no entries.
        self.feature_counts: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self.feature_totals: dict[str, float] = {}
        self.all_counts: dict[str, float] = {}
        # The same counts by feature (feature → category → count): scoring a text visits only the
        # categories that have seen its features, not every category for every feature.
        self.feature_categories: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self.vocabulary: set[str] = set()
        self.corrections_applied = 0
        self._lock = threading.Lock()
        for word in {w for words in lexicon.keywords.values() for w in words}:
            jieba.add_word(word)
        for e in examples:
            self._count(e.text, e.category, 1.0)

    def _count(self, text: str, category: str, weight: float) -> None:
        counts = self.feature_counts[category]
        for f in features(text):
            counts[f] = counts.get(f, 0.0) + weight
            self.feature_categories[f][category] = counts[f]
            self.feature_totals[category] = self.feature_totals.get(category, 0.0) + weight
            self.all_counts[f] = self.all_counts.get(f, 0.0) + weight
            self.vocabulary.add(f)

    def learn(self, *, text: str, category: str) -> None:
        """Count a dispatcher's correction: the text belongs to `category`."""
        if category not in self.taxonomy.categories:
            raise ValueError(f"unknown category {category!r}")
        with self._lock:
            self._count(text, category, CORRECTION_WEIGHT)
            self.corrections_applied += 1

    def _keyword_evidence(self, text: str) -> dict[str, float]:
        evidence = {}
        for category, words in self.lexicon.keywords.items():
            hits = [w for w in words if w in text]
            # Keep only the longest of overlapping hits (垃圾桶 over 垃圾) so one phrase counts once.
            hits = [w for w in hits if not any(w != h and w in h for h in hits)]
            if hits:
                evidence[category] = KEYWORD_WEIGHT * sum(min(len(w), 4) / 2 for w in hits)
        return evidence

    def probabilities(self, text: str) -> dict[str, float]:
        """P(category | text) for every category."""
        feats = features(text)
        keywords = self._keyword_evidence(text)
        with self._lock:
            # Complement naive Bayes (Rennie et al. 2003): a class is scored by how badly the
            # *other* classes explain the text, which is far steadier than plain multinomial NB
            # when each class has only a few short examples.
            # score(c) = Σ_f [denominator(c) - log(all(f) - count(c, f) + α)]. The part every
            # category shares, Σ_f log(all(f) + α), is left out (it cancels in the softmax below),
            # which leaves a correction only where a category has counted a feature.
            v = len(self.vocabulary) + 1
            all_total = sum(self.feature_totals.values())
            scores = {
                c: len(feats) * math.log(all_total - self.feature_totals.get(c, 0.0) + ALPHA * v)
                for c in self.categories
            }
            for f in feats:
                seen_in = self.feature_categories.get(f)
                if not seen_in:
                    continue
                all_f = self.all_counts[f]
                shared = math.log(all_f + ALPHA)
                for c, count in seen_in.items():
                    scores[c] -= math.log(all_f - count + ALPHA) - shared
        # Keywords are evidence in the same log-odds units, added after tempering the model.
        scaled = {c: s / TEMPERATURE + keywords.get(c, 0.0) for c, s in scores.items()}
        top = max(scaled.values())
        exp = {c: math.exp(s - top) for c, s in scaled.items()}
        z = sum(exp.values())
        return {c: e / z for c, e in exp.items()}

    def classify(self, text: str) -> TriageResult:
        """Category, department, priority and confidence for a report text."""
        probs = self.probabilities(text)
        ranked = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)
        category, confidence = ranked[0]
        spec = self.taxonomy.categories[category]
        manual = confidence < self.threshold or category == FALLBACK_CATEGORY
        # An unsure guess must not make a report urgent by its category: only danger cues do then.
        default_priority = "normal" if manual else spec.priority
        priority, cues = urgency(text, category_priority=default_priority, lexicon=self.lexicon)
        return TriageResult(
            category=category,
            category_name=spec.name,
            department=MANUAL_TRIAGE_DEPARTMENT if manual else spec.department_code,
            priority=priority,
            confidence=confidence,
            needs_manual_triage=manual,
            urgent_cues=cues,
            alternatives=tuple(ranked[1:3]),
        )
