"""Triage: category, lead department, priority, a calibrated confidence and the terms that decided
it, from a report's Chinese text.

Category: a linear model over TF-IDF character 1–3-grams (they survive missing punctuation,
homophone typos and words jieba does not know), jieba words and the taxonomy lexicon's keyword hits,
trained on the data the project ships (shared/data/triage/, see triage_data.py): complement naive
Bayes, chosen over a linear SVM and logistic regression by leave-one-style-out cross-validation
(`python -m services.intake.evaluate --compare`). Its scores are divided by a temperature fitted on
out-of-fold predictions, so a confidence of 0.6 is right about 60 % of the time and the manual-triage
threshold means what it says.

Urgency is its own judgement, not the category's default and not a list of alarming words: a second
logistic regression over the same text features plus explicit features for present danger,
vulnerable people and happening now (and their products), from the lexicon's cue lists. Its
threshold is set low, by measurement, because a missed urgent report is a 10-minute clock that never
starts.

A dispatcher's correction helps at once only for texts much like the corrected one (a correction
memory); the model itself changes only through the retraining job (services/intake/retrain.py),
which keeps a new model only if it is not worse on held-out data.

Pure: no I/O here. The caller reads the data files and passes their text in.
"""

import copy
import hashlib
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import jieba
import numpy as np
import yaml
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC

from services.intake.triage_data import Example
from shared.taxonomy import Taxonomy

MANUAL_TRIAGE_DEPARTMENT = "grid_center"
# Chosen by leave-one-style-out cross-validation on the shipped training data only (evaluate.py):
# inverse regularisation of the category and urgency models,
CATEGORY_C = 0.5
URGENCY_C = 4.0
FALLBACK_CATEGORY = "other"
# Category classifiers compared by leave-one-style-out cross-validation (evaluate.py --compare);
# the first is the one used: complement naive Bayes led on the pooled figures (category and urgent
# recall), the linear SVM on hand-written rows alone (see services/intake/README.md).
CLASSIFIERS = {
    "complement_nb": lambda: ComplementNB(alpha=0.3),
    "linear_svm": lambda: LinearSVC(C=CATEGORY_C),
    "logistic": lambda: LogisticRegression(C=20.0, max_iter=1000),
}
# the temperature that calibrates category confidences (out-of-fold negative log-likelihood),
TEMPERATURE = 0.3
# and the urgency probability above which a report is urgent (urgent recall first).
URGENT_THRESHOLD = 0.15
# A correction decides a text whose character bigrams overlap the corrected text's this much.
CORRECTION_SIMILARITY = 0.45
TOP_TERMS = 5

jieba.setLogLevel(60)  # jieba logs its dictionary loading at INFO on first use
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_WORD = re.compile(r"[\u4e00-\u9fff]+|[A-Za-z]+|\d+")
_STOP = set("的了是在我你他她它们这那就都也还和与及或被把给让很太吧吗呢啊呀嘛哦哈么着过又有没不个一")
_NOT_TEXT = re.compile(r"[^\u4e00-\u9fffA-Za-z0-9]+")


@dataclass(frozen=True)
class Lexicon:
    keywords: dict[str, tuple[str, ...]]
    urgent_cues: tuple[re.Pattern, ...]  # present danger
    vulnerable_cues: tuple[re.Pattern, ...]  # people who cannot get out of the way
    now_cues: tuple[re.Pattern, ...]  # happening now
    calm_cues: tuple[re.Pattern, ...]
    version: str = ""


@dataclass(frozen=True)
class TriageResult:
    category: str  # best guess, also when manual triage is needed
    category_name: str
    department: str  # MANUAL_TRIAGE_DEPARTMENT when needs_manual_triage
    priority: str  # urgent | normal
    confidence: float  # calibrated probability of `category`, 0..1
    needs_manual_triage: bool
    urgent_cues: tuple[str, ...]  # the danger, vulnerable-people and now cues found, for the dispatcher
    alternatives: tuple[tuple[str, float], ...]  # next best categories with their probability
    urgency: float = 0.0  # the urgency model's probability
    top_terms: tuple[str, ...] = ()  # the text's terms that weighed most for `category`
    model_version: str = ""

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
            "urgency": round(self.urgency, 4),
            "top_terms": list(self.top_terms),
            "model_version": self.model_version,
        }


def parse_lexicon(text: str) -> Lexicon:
    """The lexicon from its YAML text; cue patterns are compiled here so a bad one fails at startup."""
    data = yaml.safe_load(text)

    def patterns(key: str) -> tuple[re.Pattern, ...]:
        return tuple(re.compile(p) for p in data.get(key, ()))

    return Lexicon(
        keywords={c: tuple(words) for c, words in data["keywords"].items()},
        urgent_cues=patterns("urgent_cues"),
        vulnerable_cues=patterns("vulnerable_cues"),
        now_cues=patterns("now_cues"),
        calm_cues=patterns("calm_cues"),
        version=str(data.get("version", "")),
    )


@lru_cache(maxsize=50_000)
def words(text: str) -> tuple[str, ...]:
    """jieba words without particles, punctuation and lone digits (the word features). Cached:
    cross-validation and retraining segment the same texts many times."""
    out = []
    for word in jieba.lcut(text.lower()):
        if not _WORD.fullmatch(word):
            continue
        if len(word) == 1 and (word in _STOP or not _CJK_RUN.fullmatch(word)):
            continue
        out.append(word)
    return tuple(out)


def _chars(text: str) -> str:
    """The text for character n-grams: emoji, punctuation and spaces dropped, so a voice message
    without punctuation and a typed report give the same n-grams."""
    return _NOT_TEXT.sub("", text.lower())


def _cues(patterns: tuple[re.Pattern, ...], text: str) -> list[str]:
    return [m.group(0) for p in patterns for m in [p.search(text)] if m]


def urgency_features(text: str, lexicon: Lexicon) -> list[float]:
    """Danger, vulnerable people, now, calm wording, and the products that make urgency."""
    danger = float(bool(_cues(lexicon.urgent_cues, text)))
    vulnerable = float(bool(_cues(lexicon.vulnerable_cues, text)))
    now = float(bool(_cues(lexicon.now_cues, text)))
    calm = float(bool(_cues(lexicon.calm_cues, text)))
    return [danger, vulnerable, now, calm, danger * vulnerable, danger * now, danger * vulnerable * now]


URGENCY_FEATURE_NAMES = ("危险", "弱势人群", "正在发生", "语气平和", "危险×弱势", "危险×正在", "危险×弱势×正在")


def fingerprint(examples: list[Example], lexicon_text: str = "") -> str:
    """A short hash of what a model is trained on and how: its version."""
    h = hashlib.sha256()
    h.update(f"{CATEGORY_C}|{URGENCY_C}|{TEMPERATURE}|{URGENT_THRESHOLD}|{lexicon_text}".encode())
    for e in examples:
        h.update(f"\n{e.category}\t{e.priority}\t{e.text}".encode())
    return h.hexdigest()[:12]


class TriageModel:
    """The category and urgency models trained on `examples`; deterministic for the same input."""

    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        lexicon: Lexicon,
        examples: list[Example],
        threshold: float,
        version: str | None = None,
        classifier: str = "complement_nb",
    ):
        unknown = {e.category for e in examples} - set(taxonomy.categories)
        if unknown:
            raise ValueError(f"training examples name unknown categories: {sorted(unknown)}")
        if len({e.category for e in examples}) < 2 or len({e.priority for e in examples}) < 2:
            raise ValueError("training needs at least two categories and both priorities")
        self.taxonomy, self.lexicon, self.threshold = taxonomy, lexicon, threshold
        self.version = version or fingerprint(examples)
        for word in {w for ws in lexicon.keywords.values() for w in ws}:
            jieba.add_word(word)
        self.keyword_categories = list(lexicon.keywords)
        texts = [e.text for e in examples]
        self.char_vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, preprocessor=_chars
        )
        self.word_vectorizer = TfidfVectorizer(analyzer=words, sublinear_tf=True, min_df=2)
        self._keyword_patterns = [
            re.compile("|".join(map(re.escape, lexicon.keywords[c]))) for c in self.keyword_categories
        ]
        x = sparse.hstack(
            [
                self.char_vectorizer.fit_transform(texts),
                self.word_vectorizer.fit_transform(texts),
                self._keyword_hits(texts),
            ],
            format="csr",
        )
        self.feature_names = np.concatenate(
            [
                self.char_vectorizer.get_feature_names_out(),
                self.word_vectorizer.get_feature_names_out(),
                np.array([f"词表:{c}" for c in self.keyword_categories]),
            ]
        )
        self.category_model = CLASSIFIERS[classifier]()
        self.category_model.fit(x, [e.category for e in examples])
        self.categories = [str(c) for c in self.category_model.classes_]
        # How often each category's reports are urgent: what a report's category says about urgency,
        # one feature of the urgency model (the category model's probabilities weight it).
        totals, urgent = (
            Counter(e.category for e in examples),
            Counter(e.category for e in examples if e.priority == "urgent"),
        )
        self._urgent_rate = np.array([urgent[c] / totals[c] for c in self.categories])
        self.urgency_model = LogisticRegression(C=URGENCY_C, solver="liblinear", class_weight="balanced")
        # Trained with each row's own category's rate (what a perfect category model would give).
        rates = np.array([[self._urgent_rate[self.categories.index(e.category)]] for e in examples])
        self.urgency_model.fit(self._urgency_features(x, texts, rates), [e.priority == "urgent" for e in examples])
        # Dense weights: one report is scored by a small matrix product, no sklearn overhead. Naive
        # Bayes scores by (complement) log-probabilities: its weights are those.
        if hasattr(self.category_model, "coef_"):
            self._coef = np.asarray(self.category_model.coef_)
            self._intercept = np.asarray(self.category_model.intercept_)
        else:
            self._coef = np.asarray(self.category_model.feature_log_prob_)
            self._intercept = np.zeros(len(self.categories))
        # One report at a time, sklearn's input checks cost more than the arithmetic: `_vector` does
        # the same TF-IDF by hand from the fitted vocabularies and idf weights.
        self._char_vocabulary, self._char_idf = self.char_vectorizer.vocabulary_, self.char_vectorizer.idf_
        self._word_vocabulary, self._word_idf = self.word_vectorizer.vocabulary_, self.word_vectorizer.idf_
        self._word_offset = len(self._char_idf)
        self._keyword_offset = self._word_offset + len(self._word_idf)
        urgency_weights = np.asarray(self.urgency_model.coef_)[0]
        self._urgency_text, self._urgency_extra = (
            urgency_weights[: len(self.feature_names)],
            urgency_weights[len(self.feature_names) :],
        )
        self._urgency_intercept = float(self.urgency_model.intercept_[0])
        self._corrections: list[tuple[frozenset[str], str]] = []
        self.corrections_applied = 0
        self._lock = threading.Lock()

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's features as (indices, values): exactly what `_text_features` gives for it."""
        chars = _chars(text)
        char_counts = Counter(chars[i : i + n] for n in (1, 2, 3) for i in range(len(chars) - n + 1))
        word_counts = Counter(words(text))
        idx: list[int] = []
        vals: list[float] = []
        for counts, vocabulary, idf, offset in (
            (char_counts, self._char_vocabulary, self._char_idf, 0),
            (word_counts, self._word_vocabulary, self._word_idf, self._word_offset),
        ):
            block = [
                (vocabulary[g], (1 + math.log(n)) * idf[vocabulary[g]]) for g, n in counts.items() if g in vocabulary
            ]
            norm = math.sqrt(sum(v * v for _, v in block)) or 1.0
            idx.extend(offset + j for j, _ in block)
            vals.extend(v / norm for _, v in block)
        for k, pattern in enumerate(self._keyword_patterns):
            if pattern.search(text):
                idx.append(self._keyword_offset + k)
                vals.append(1.0)
        return np.array(idx, dtype=np.int64), np.array(vals)

    def _keyword_hits(self, texts: list[str]) -> sparse.csr_matrix:
        """1 where a text has any of a category's lexicon keywords."""
        return sparse.csr_matrix(
            np.array([[float(bool(p.search(t))) for p in self._keyword_patterns] for t in texts]).reshape(
                len(texts), -1
            )
        )

    def _text_features(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.hstack(
            [
                self.char_vectorizer.transform(texts),
                self.word_vectorizer.transform(texts),
                self._keyword_hits(texts),
            ],
            format="csr",
        )

    def _urgency_features(
        self, x: sparse.csr_matrix, texts: list[str], rates: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        """The text's features, the danger × vulnerable × now cues, and how urgent its category
        usually is (by default from the category model's probabilities)."""
        cues = np.array([urgency_features(t, self.lexicon) for t in texts])
        if rates is None:
            rates = (self._scores(x) @ self._urgent_rate)[:, None]
        return sparse.hstack([x, sparse.csr_matrix(cues), sparse.csr_matrix(rates)], format="csr")

    def copy(self, *, threshold: float) -> "TriageModel":
        """The same trained model with its own threshold and an empty correction memory (training
        takes seconds: a process trains a version once and copies it for each app)."""
        twin = copy.copy(self)
        twin.threshold, twin._corrections, twin.corrections_applied = threshold, [], 0
        twin._lock = threading.Lock()
        return twin

    def learn(self, *, text: str, category: str) -> None:
        """Remember a dispatcher's correction: texts much like this one get its category at once.
        The model itself changes only through the retraining job."""
        if category not in self.taxonomy.categories:
            raise ValueError(f"unknown category {category!r}")
        with self._lock:
            self._corrections.append((_bigrams(text), category))
            self.corrections_applied += 1

    def _corrected(self, text: str) -> tuple[str, float] | None:
        """The category of the most similar correction and its similarity, when similar enough."""
        grams = _bigrams(text)
        best: tuple[str, float] | None = None
        with self._lock:
            for corrected, category in self._corrections:
                overlap = len(grams & corrected) / max(1, min(len(grams), len(corrected)))
                if overlap >= CORRECTION_SIMILARITY and (best is None or overlap >= best[1]):
                    best = (category, overlap)
        return best

    def decision(self, x: sparse.csr_matrix) -> np.ndarray:
        """The category model's raw scores (margins) for each row of x."""
        return np.asarray(x @ self._coef.T + self._intercept)

    def _scores(self, x: sparse.csr_matrix, temperature: float | None = None) -> np.ndarray:
        """Calibrated category probabilities for each row of x."""
        logits = self.decision(x) / (temperature or TEMPERATURE)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def probabilities(self, text: str) -> dict[str, float]:
        """P(category | text) for every category the model knows."""
        return dict(zip(self.categories, self._scores(self._text_features([text]))[0].tolist(), strict=True))

    def urgency_probability(self, texts: list[str]) -> np.ndarray:
        x = self._text_features(texts)
        return self.urgency_model.predict_proba(self._urgency_features(x, texts))[:, 1]

    def top_terms(self, idx: np.ndarray, vals: np.ndarray, category: str, text: str) -> tuple[str, ...]:
        """The text's features that pushed most towards `category` (weight × value), longest first
        among overlapping n-grams, so the dispatcher sees why. A lexicon hit is named by the
        keywords found."""
        # Relative to the average category: a word every category weighs alike decided nothing.
        weights = self._coef[:, idx]
        contributions = vals * (weights[self.categories.index(category)] - weights.mean(axis=0))
        scored = sorted(
            ((float(c), str(self.feature_names[j])) for j, c in zip(idx, contributions, strict=True)), reverse=True
        )
        terms: list[str] = []
        for score, name in scored:
            if score <= 0 or len(terms) >= TOP_TERMS:
                break
            if name.startswith("词表:"):
                found = [w for w in self.lexicon.keywords[name[3:]] if w in text]
                name = "/".join(w for w in found if not any(w != o and w in o for o in found))
            if len(name.strip()) < 2:
                continue  # single characters say little to a person
            if any(name in t for t in terms):
                continue
            terms = [t for t in terms if t not in name] + [name]
        return tuple(terms)

    def classify(self, text: str) -> TriageResult:
        """Category, department, priority, confidence and the deciding terms for a report text."""
        idx, vals = self._vector(text)
        logits = (self._coef[:, idx] @ vals + self._intercept) / TEMPERATURE
        exp = np.exp(logits - logits.max())
        scores = exp / exp.sum()
        probs = dict(zip(self.categories, scores.tolist(), strict=True))
        corrected = self._corrected(text)
        if corrected:
            # The dispatcher said so for a text like this: the correction's category wins, as sure
            # as the texts are alike.
            category, similarity = corrected
            probs = {c: p * (1 - similarity) for c, p in probs.items()}
            probs[category] = probs.get(category, 0.0) + similarity
        ranked = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)
        category, confidence = ranked[0]
        spec = self.taxonomy.categories[category]
        manual = confidence < self.threshold or category == FALLBACK_CATEGORY
        extra = urgency_features(text, self.lexicon) + [float(scores @ self._urgent_rate)]
        z = float(self._urgency_text[idx] @ vals + self._urgency_extra @ np.array(extra) + self._urgency_intercept)
        p_urgent = 1 / (1 + math.exp(-z))
        cues = tuple(
            dict.fromkeys(
                _cues(self.lexicon.urgent_cues, text)
                + _cues(self.lexicon.vulnerable_cues, text)
                + _cues(self.lexicon.now_cues, text)
            )
        )
        priority = "urgent" if p_urgent >= URGENT_THRESHOLD else "normal"
        terms = self.top_terms(idx, vals, category, text) if category in self.categories else ()
        if corrected:
            terms = ("调度员纠正",) + terms[: TOP_TERMS - 1]
        return TriageResult(
            category=category,
            category_name=spec.name,
            department=MANUAL_TRIAGE_DEPARTMENT if manual else spec.department_code,
            priority=priority,
            confidence=confidence,
            needs_manual_triage=manual,
            urgent_cues=cues if priority == "urgent" else (),
            alternatives=tuple(ranked[1:3]),
            urgency=p_urgent,
            top_terms=terms,
            model_version=self.version,
        )


def _bigrams(text: str) -> frozenset[str]:
    chars = _chars(text)
    return frozenset(chars[i : i + 2] for i in range(len(chars) - 1))
