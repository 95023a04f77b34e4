"""Triage: category, lead department, priority, a calibrated confidence and the terms that decided
it, from a report's Chinese text.

Features: TF-IDF character 1–3-grams (they survive missing punctuation, homophone typos and words
jieba does not know), jieba words and the taxonomy lexicon's keyword hits, trained on the data the
project ships (shared/data/triage/, see triage_data.py).

Category: complement naive Bayes and a linear SVM over those features, each turned into
probabilities by its own temperature, and averaged. Training itself chooses and calibrates, on
held-out styles of its own training rows (leave one style out, without any row sharing a
hand-written source with the held-out ones): the temperatures (out-of-fold negative
log-likelihood), and which head to use — naive Bayes, the SVM or their average — by out-of-fold
accuracy. So a confidence of 0.6 is right about 60 % of the time and the manual-triage threshold
means what it says; and `evaluate`'s leave-one-style-out figures are nested: no choice ever saw the
test style.

Urgency is its own judgement, not the category's default and not a list of alarming words: a linear
SVM over the same text features plus explicit features for present danger, vulnerable people and
happening now (and their products), calm wording, danger only feared or denied (万一着火, 没人受伤),
a danger that is over (已经散了) and how often the likely category is urgent. Its
regularisation is chosen, its decision Platt-scaled into a probability, and its threshold set where
98 % of the held-out urgent reports are found — the same held-out styles, the same nesting.

A dispatcher's correction helps at once only for texts much like the corrected one (a correction
memory); the model itself changes only through the retraining job (services/intake/retrain.py),
which keeps a new model only if it is not worse on held-out data.

Pure: no I/O here. The caller reads the data files and passes their text in.
"""

import copy
import dataclasses
import hashlib
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
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
FALLBACK_CATEGORY = "other"
# The category heads: complement naive Bayes and a linear SVM over the same features, and their
# average (each calibrated by its own temperature). Training picks one by category accuracy on
# held-out styles of its own training data (`Calibration`); the regularisation of each is fixed.
NB_ALPHA = 0.3
CATEGORY_SVM_C = 0.5
CATEGORY_HEADS = ("ensemble", "complement_nb", "linear_svm")  # ties go to the first
# The urgency model: a linear SVM over the text features plus the danger x vulnerable x now cues;
# training picks its regularisation among these by urgent precision at the target recall on
# held-out styles, then Platt-scales its decision on those held-out rows.
URGENCY_CS = (1.0, 3.0, 10.0)
# The urgent threshold is where, on a typical held-out style (the median of each style's own), this
# share of urgent reports is found: a missed urgent report is a 10-minute clock that never starts.
URGENT_RECALL_TARGET = 0.98
# Held-out calibration folds: the training styles in at most this many blocks, each left out once
# (with more styles than blocks, several styles are left out together). Leaving one style out at a
# time, as the evaluation does, makes the held-out rows most like a new writer's.
CALIBRATION_FOLDS = 16
TEMPERATURE_GRID = tuple(round(0.025 * k, 3) for k in range(1, 121))
DEFAULT_TEMPERATURES = (0.3, 0.15)  # (naive Bayes, SVM) when there is no held-out style to fit on
# A correction decides a text whose character bigrams overlap the corrected text's this much.
CORRECTION_SIMILARITY = 0.45
TOP_TERMS = 5

jieba.setLogLevel(60)  # jieba logs its dictionary loading at INFO on first use
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_WORD = re.compile(r"[\u4e00-\u9fff]+|[A-Za-z]+|\d+")
_STOP = set("的了是在我你他她它们这那就都也还和与及或被把给让很太吧吗呢啊呀嘛哦哈么着过又有没不个一")
_NOT_TEXT = re.compile(r"[^\u4e00-\u9fffA-Za-z0-9]+")


@dataclass(frozen=True, eq=False)  # hashed by identity: `urgency_features` caches by (text, lexicon)
class Lexicon:
    keywords: dict[str, tuple[str, ...]]
    urgent_cues: tuple[re.Pattern, ...]  # present danger
    vulnerable_cues: tuple[re.Pattern, ...]  # people who cannot get out of the way
    now_cues: tuple[re.Pattern, ...]  # happening now
    calm_cues: tuple[re.Pattern, ...]
    # Words just before a danger cue that make it no present fact: feared or supposed (万一着火,
    # 怕出事, 真着火了) or denied (没人受伤).
    unreal_cues: tuple[re.Pattern, ...] = ()
    past_cues: tuple[re.Pattern, ...] = ()  # the danger is over or was another day: 已经散了, 上次
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
        unreal_cues=patterns("unreal_cues"),
        past_cues=patterns("past_cues"),
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


@lru_cache(maxsize=20_000)
def char_grams(text: str) -> tuple[str, ...]:
    """The character 1–3-grams of a text (the char features). Cached like `words`: training with
    held-out choices fits the vectorizers once per training style. (Scoring one report calls the
    uncached function: a live service's texts would only fill the cache.)"""
    chars = _chars(text)
    return tuple(chars[i : i + n] for n in (1, 2, 3) for i in range(len(chars) - n + 1))


def _cues(patterns: tuple[re.Pattern, ...], text: str) -> list[str]:
    return [m.group(0) for p in patterns for m in [p.search(text)] if m]


# How far before a danger cue a 万一 or 没 still governs it (within its clause).
UNREAL_WINDOW = 6
_CLAUSE_END = re.compile(r"[，。！？、,.!?；;：:\s]")


def asserted_danger(text: str, lexicon: Lexicon) -> tuple[bool, bool]:
    """(a danger cue stated as a fact, a danger cue only feared, supposed or denied). A cue is not
    a fact when an unreal cue (万一, 怕, 真…了, 没) stands in the few characters of its clause
    before it: "万一着火了跑不出去" fears a fire, "没人受伤" denies an injury."""
    asserted = unreal = False
    for pattern in lexicon.urgent_cues:
        for m in pattern.finditer(text):
            before = text[max(0, m.start() - UNREAL_WINDOW) : m.start()]
            before = _CLAUSE_END.split(before)[-1]
            if any(p.search(before) for p in lexicon.unreal_cues):
                unreal = True
            else:
                asserted = True
    return asserted, unreal and not asserted


def urgency_features(text: str, lexicon: Lexicon) -> list[float]:
    """Present danger (stated as a fact), vulnerable people, now, and the products that make
    urgency; calm wording, danger only feared or denied, a danger that is over. How alarmed the
    reporter sounds (吓死人了) is no feature: people say it of smoke from a grill and of a load
    swinging over children alike."""
    fact, unreal = asserted_danger(text, lexicon)
    danger, only_unreal = float(fact), float(unreal)
    vulnerable = float(bool(_cues(lexicon.vulnerable_cues, text)))
    now = float(bool(_cues(lexicon.now_cues, text)))
    calm = float(bool(_cues(lexicon.calm_cues, text)))
    past = float(bool(_cues(lexicon.past_cues, text)))
    return [
        danger,
        vulnerable,
        now,
        calm,
        danger * vulnerable,
        danger * now,
        danger * vulnerable * now,
        only_unreal,
        past,
        danger * past,
    ]


@lru_cache(maxsize=20_000)
def cached_urgency_features(text: str, lexicon: Lexicon) -> tuple[float, ...]:
    """`urgency_features`, cached for training (held-out choices score the same texts many times;
    scoring one report calls the uncached function, like `char_grams`)."""
    return tuple(urgency_features(text, lexicon))


URGENCY_FEATURE_NAMES = (
    "危险",
    "弱势人群",
    "正在发生",
    "语气平和",
    "危险×弱势",
    "危险×正在",
    "危险×弱势×正在",
    "只是担心或否认的危险",
    "已经过去",
    "危险×已经过去",
)


def fingerprint(examples: list[Example], lexicon_text: str = "") -> str:
    """A short hash of what a model is trained on and how: its version."""
    h = hashlib.sha256()
    h.update(
        f"{NB_ALPHA}|{CATEGORY_SVM_C}|{CATEGORY_HEADS}|{URGENCY_CS}|{URGENT_RECALL_TARGET}|{CALIBRATION_FOLDS}"
        f"|{lexicon_text}".encode()
    )
    for e in examples:
        h.update(f"\n{e.category}\t{e.priority}\t{e.style}\t{e.text}".encode())
    return h.hexdigest()[:12]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def fit_temperature(margins: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of held-out margins (temperature
    scaling), from a fixed grid so training stays deterministic."""

    def nll(t: float) -> float:
        z = margins / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(truth)), truth].mean())

    return min(TEMPERATURE_GRID, key=nll)


def recall_threshold(probabilities: np.ndarray, urgent: np.ndarray, target: float) -> float:
    """The highest threshold at which at least `target` of the urgent rows are found."""
    found = np.sort(probabilities[urgent])
    if not len(found):
        return 0.5
    # How many may be missed; the epsilon keeps 0.2 * 5 from flooring to 0 in binary floating point.
    return float(found[int(math.floor((1 - target) * len(found) + 1e-9))])


def style_recall_threshold(probabilities: np.ndarray, urgent: np.ndarray, blocks: np.ndarray) -> float:
    """The urgent threshold for a writer not yet seen: each held-out split's own recall threshold,
    and their median. Pooling the splits lets the one hardest split's tail set it for everyone."""
    per_split = [
        recall_threshold(probabilities[blocks == b], urgent[blocks == b], URGENT_RECALL_TARGET)
        for b in np.unique(blocks)
        if urgent[blocks == b].any()
    ]
    return float(np.median(per_split)) if per_split else 0.5


@dataclass(frozen=True)
class Calibration:
    """What training chose on held-out styles of its own training data (nested: an evaluation's test
    style is never among them): the two category models' temperatures, the category head, the
    urgency model's regularisation, its Platt scaling and its threshold."""

    temperatures: tuple[float, float] = DEFAULT_TEMPERATURES
    head: str = CATEGORY_HEADS[0]
    urgency_c: float = URGENCY_CS[1]
    platt: tuple[float, float] = (1.0, 0.0)  # P(urgent) = sigmoid(a * decision + b)
    urgent_threshold: float = 0.5
    # The held-out figures the choices were made on (evaluate prints them).
    head_accuracy: dict[str, float] = field(default_factory=dict)
    urgent_precision: dict[float, float] = field(default_factory=dict)
    rows: int = 0


def _style_blocks(examples: list[Example], folds: int) -> list[set[str]]:
    """The training styles in `folds` blocks, round robin by size (deterministic)."""
    sizes = Counter(e.style for e in examples)
    styles = sorted(sizes, key=lambda s: (-sizes[s], s))
    blocks: list[set[str]] = [set() for _ in range(min(folds, len(styles)))]
    for k, style in enumerate(styles):
        blocks[k % len(blocks)].add(style)
    return blocks


class TriageModel:
    """The category and urgency models trained on `examples`; deterministic for the same input.

    Training fits the features and models on all rows, and first, unless `calibrate` is off, the
    same models on held-out splits of the training styles (`CALIBRATION_FOLDS` blocks of styles,
    each left out with every row sharing a hand-written source with it) to choose and calibrate:
    see `Calibration`."""

    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        lexicon: Lexicon,
        examples: list[Example],
        threshold: float,
        version: str | None = None,
        calibrate: bool = True,
        calibration: Calibration | None = None,
        urgency_cs: tuple[float, ...] | None = None,
        head: str | None = None,
    ):
        unknown = {e.category for e in examples} - set(taxonomy.categories)
        if unknown:
            raise ValueError(f"training examples name unknown categories: {sorted(unknown)}")
        if len({e.category for e in examples}) < 2 or len({e.priority for e in examples}) < 2:
            raise ValueError("training needs at least two categories and both priorities")
        self.taxonomy, self.lexicon, self.threshold = taxonomy, lexicon, threshold
        self.version = version or fingerprint(examples)
        # Sorted: jieba suggests each added word's frequency from the words added before it, so the
        # order changes how texts are cut; a set's order changes with the process's hash seed, and
        # every replica must train the same model from the same rows.
        for word in sorted({w for ws in lexicon.keywords.values() for w in ws}):
            jieba.add_word(word)
        if calibration is None:
            calibration = self._calibrate(examples) if calibrate else Calibration()
        if head is not None:  # a head forced, for comparing them (evaluate --compare)
            if head not in CATEGORY_HEADS:
                raise ValueError(f"unknown category head {head!r}")
            calibration = dataclasses.replace(calibration, head=head)
        self.calibration = calibration
        self.keyword_categories = list(lexicon.keywords)
        texts = [e.text for e in examples]
        self.char_vectorizer = TfidfVectorizer(analyzer=char_grams, sublinear_tf=True, min_df=2)
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
        labels = [e.category for e in examples]
        nb = ComplementNB(alpha=NB_ALPHA).fit(x, labels)
        self.categories = [str(c) for c in nb.classes_]
        # Dense weights: one report is scored by a small matrix product, no sklearn overhead. Naive
        # Bayes scores by (complement) log-probabilities: its weights are those.
        self._nb_coef = np.asarray(nb.feature_log_prob_)
        self._nb_intercept = np.zeros(len(self.categories))
        svm = LinearSVC(C=CATEGORY_SVM_C).fit(x, labels)
        if len(self.categories) == 2:  # a binary SVM has one row of weights: the second class's
            w, b = np.asarray(svm.coef_)[0], float(svm.intercept_[0])
            self._svm_coef, self._svm_intercept = np.vstack([-w, w]) / 2, np.array([-b, b]) / 2
        else:
            self._svm_coef, self._svm_intercept = np.asarray(svm.coef_), np.asarray(svm.intercept_)
        # The weights that decided a category, for the dispatcher: each head's scores at its temperature.
        t_nb, t_svm = calibration.temperatures
        self._coef = {
            "complement_nb": self._nb_coef / t_nb,
            "linear_svm": self._svm_coef / t_svm,
            "ensemble": self._nb_coef / t_nb + self._svm_coef / t_svm,
        }[calibration.head]
        # How often each category's reports are urgent: what a report's likely category says about
        # its urgency, one feature of the urgency model.
        totals, urgent = Counter(labels), Counter(e.category for e in examples if e.priority == "urgent")
        self._urgent_rate = np.array([urgent[c] / totals[c] for c in self.categories])
        # One report at a time, sklearn's input checks cost more than the arithmetic: `_vector` does
        # the same TF-IDF by hand from the fitted vocabularies and idf weights.
        self._char_vocabulary, self._char_idf = self.char_vectorizer.vocabulary_, self.char_vectorizer.idf_
        self._word_vocabulary, self._word_idf = self.word_vectorizer.vocabulary_, self.word_vectorizer.idf_
        self._word_offset = len(self._char_idf)
        self._keyword_offset = self._word_offset + len(self._word_idf)
        # Urgency: its own model over the text, the danger x vulnerable x now cues and the likely
        # category's urgent rate (from the category model's in-sample probabilities).
        urgency_x = self._urgency_features(x, texts)
        is_urgent = [e.priority == "urgent" for e in examples]
        self._urgency: dict[float, tuple[np.ndarray, np.ndarray, float]] = {}
        for c in urgency_cs or (calibration.urgency_c,):
            svc = LinearSVC(C=c, class_weight="balanced").fit(urgency_x, is_urgent)
            weights = np.asarray(svc.coef_)[0]
            n = len(self.feature_names)
            self._urgency[c] = (weights[:n], weights[n:], float(svc.intercept_[0]))
        self._corrections: list[tuple[frozenset[str], str]] = []
        self.corrections_applied = 0
        self._lock = threading.Lock()

    def _calibrate(self, examples: list[Example]) -> Calibration:
        """Train the same models on held-out splits of the training styles and choose from their
        predictions on the styles left out: the temperatures, the category head, the urgency
        regularisation, the Platt scaling and the urgent threshold."""
        blocks = _style_blocks(examples, CALIBRATION_FOLDS)
        if len(blocks) < 2:
            return Calibration()
        categories = sorted({e.category for e in examples})
        nb_margins: list[np.ndarray] = []
        svm_margins: list[np.ndarray] = []
        truth: list[int] = []
        urgent: list[bool] = []
        decisions: dict[float, list[np.ndarray]] = {c: [] for c in URGENCY_CS}
        block_of: list[int] = []  # which held-out split each row was predicted in
        for n_block, block in enumerate(blocks):
            test = [e for e in examples if e.style in block]
            groups = {e.group for e in test if e.group}
            train = [e for e in examples if e.style not in block and e.group not in groups]
            if len({e.category for e in train}) < 2 or len({e.priority for e in train}) < 2:
                continue
            inner = TriageModel(
                taxonomy=self.taxonomy,
                lexicon=self.lexicon,
                examples=train,
                threshold=self.threshold,
                version="calibration",
                calibration=Calibration(),
                urgency_cs=URGENCY_CS,
            )
            texts = [e.text for e in test]
            x = inner._text_features(texts)
            # Margins in the full category order; a category this split never saw scores lowest.
            columns = [inner.categories.index(c) if c in inner.categories else -1 for c in categories]
            for heads, coef, intercept in (
                (nb_margins, inner._nb_coef, inner._nb_intercept),
                (svm_margins, inner._svm_coef, inner._svm_intercept),
            ):
                m = np.asarray(x @ coef.T + intercept)
                heads.append(np.where(np.array(columns) >= 0, m[:, columns], m.min() - 10.0))
            truth.extend(categories.index(e.category) for e in test)
            urgent.extend(e.priority == "urgent" for e in test)
            block_of.extend([n_block] * len(test))
            urgency_x = inner._urgency_features(x, texts)
            for c in URGENCY_CS:
                text_w, extra_w, b = inner._urgency[c]
                decisions[c].append(np.asarray(urgency_x @ np.concatenate([text_w, extra_w])) + b)
        if not truth:
            return Calibration()
        nb_m, svm_m, y = np.vstack(nb_margins), np.vstack(svm_margins), np.array(truth)
        t_nb, t_svm = fit_temperature(nb_m, y), fit_temperature(svm_m, y)
        p_nb, p_svm = _softmax(nb_m / t_nb), _softmax(svm_m / t_svm)
        accuracy = {
            head: float(np.mean(p.argmax(axis=1) == y))
            for head, p in (("ensemble", (p_nb + p_svm) / 2), ("complement_nb", p_nb), ("linear_svm", p_svm))
        }
        head = max(CATEGORY_HEADS, key=lambda h: (accuracy[h], -CATEGORY_HEADS.index(h)))
        is_urgent = np.array(urgent)
        choices = {}
        for c in URGENCY_CS:
            d = np.concatenate(decisions[c])
            platt = LogisticRegression(C=1e4).fit(d[:, None], is_urgent)
            a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
            p = 1 / (1 + np.exp(-(a * d + b)))
            t = style_recall_threshold(p, is_urgent, np.array(block_of))
            said = p >= t
            choices[c] = (float(np.mean(is_urgent[said])) if said.any() else 0.0, (a, b), t)
        best = max(URGENCY_CS, key=lambda c: (choices[c][0], -URGENCY_CS.index(c)))
        return Calibration(
            temperatures=(t_nb, t_svm),
            head=head,
            urgency_c=best,
            platt=choices[best][1],
            urgent_threshold=choices[best][2],
            head_accuracy=accuracy,
            urgent_precision={c: v[0] for c, v in choices.items()},
            rows=len(y),
        )

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's features as (indices, values): exactly what `_text_features` gives for it."""
        char_counts = Counter(char_grams.__wrapped__(text))
        word_counts = Counter(words.__wrapped__(text))
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

    def _urgency_extra(self, cues: tuple[float, ...] | list[float], category_probabilities: np.ndarray) -> np.ndarray:
        """A text's urgency cues (`urgency_features`) and how urgent its likely category usually is."""
        return np.array([*cues, float(category_probabilities @ self._urgent_rate)])

    def _urgency_features(self, x: sparse.csr_matrix, texts: list[str]) -> sparse.csr_matrix:
        probabilities = self._scores(x)
        extra = np.array(
            [
                self._urgency_extra(cached_urgency_features(t, self.lexicon), p)
                for t, p in zip(texts, probabilities, strict=True)
            ]
        )
        return sparse.hstack([x, sparse.csr_matrix(extra)], format="csr")

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

    def _mix(self, nb: np.ndarray, svm: np.ndarray) -> np.ndarray:
        """Calibrated category probabilities from the two heads' margins (rows or one vector)."""
        t_nb, t_svm = self.calibration.temperatures
        head = self.calibration.head
        if head == "complement_nb":
            return _softmax(nb / t_nb)
        if head == "linear_svm":
            return _softmax(svm / t_svm)
        return (_softmax(nb / t_nb) + _softmax(svm / t_svm)) / 2

    def _scores(self, x: sparse.csr_matrix) -> np.ndarray:
        """Calibrated category probabilities for each row of x."""
        nb = np.asarray(x @ self._nb_coef.T + self._nb_intercept)
        svm = np.asarray(x @ self._svm_coef.T + self._svm_intercept)
        return self._mix(nb, svm)

    def probabilities(self, text: str) -> dict[str, float]:
        """P(category | text) for every category the model knows."""
        return dict(zip(self.categories, self._scores(self._text_features([text]))[0].tolist(), strict=True))

    def _urgency_probability(self, decision: np.ndarray) -> np.ndarray:
        a, b = self.calibration.platt
        return 1 / (1 + np.exp(-(a * decision + b)))

    def urgency_probability(self, texts: list[str]) -> np.ndarray:
        """Calibrated P(urgent | text) for each text."""
        text_w, extra_w, b = self._urgency[self.calibration.urgency_c]
        d = np.asarray(self._urgency_features(self._text_features(texts), texts) @ np.concatenate([text_w, extra_w]))
        return self._urgency_probability(d + b)

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
        scores = self._mix(
            self._nb_coef[:, idx] @ vals + self._nb_intercept, self._svm_coef[:, idx] @ vals + self._svm_intercept
        )
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
        text_w, extra_w, b = self._urgency[self.calibration.urgency_c]
        z = float(text_w[idx] @ vals + extra_w @ self._urgency_extra(urgency_features(text, self.lexicon), scores) + b)
        p_urgent = float(self._urgency_probability(np.array(z)))
        cues = tuple(
            dict.fromkeys(
                _cues(self.lexicon.urgent_cues, text)
                + _cues(self.lexicon.vulnerable_cues, text)
                + _cues(self.lexicon.now_cues, text)
            )
        )
        priority = "urgent" if p_urgent >= self.calibration.urgent_threshold else "normal"
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
