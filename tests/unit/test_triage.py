"""Triage on the data the project ships: rules, learning from corrections, and the measured
accuracy on ../shared/acceptance/public.jsonl (evaluated only, never trained on)."""

from collections import Counter

import pytest

from services.intake.app import load_triage_model
from services.intake.evaluate import cross_validate, measure, read_labelled
from services.intake.settings import IntakeSettings
from services.intake.triage import (
    MANUAL_TRIAGE_DEPARTMENT,
    TriageModel,
    features,
    parse_examples,
    parse_lexicon,
    urgency,
)
from shared.settings import PROJECT_ROOT
from shared.taxonomy import load_taxonomy

ACCEPTANCE = PROJECT_ROOT.parent / "shared" / "acceptance" / "public.jsonl"


@pytest.fixture(scope="module")
def settings():
    return IntakeSettings()


@pytest.fixture(scope="module")
def taxonomy(settings):
    return load_taxonomy(settings.responsibility_list_path)


@pytest.fixture(scope="module")
def model(settings, taxonomy):
    return load_triage_model(settings, taxonomy)


@pytest.fixture
def fresh_model(settings, taxonomy):
    """A model of its own, for tests that teach it."""
    return load_triage_model(settings, taxonomy)


def test_shipped_training_data_covers_every_category_in_every_style(settings, taxonomy):
    examples = parse_examples(settings.triage_training_path.read_text(encoding="utf-8"))
    per_category = Counter(e.category for e in examples)
    assert set(per_category) == set(taxonomy.categories)
    assert min(per_category.values()) >= 12
    assert len(examples) >= 500
    assert len({e.text for e in examples}) == len(examples)
    # Grid workers' reports (巡查发现/网格员…) appear in every category.
    worker_style = Counter(e.category for e in examples if e.text.startswith(("巡查发现", "网格员")))
    assert set(worker_style) == set(taxonomy.categories)


def test_bad_training_lines_and_unknown_categories_are_refused(settings, taxonomy):
    with pytest.raises(ValueError):
        parse_examples("manhole\tsoon\t井盖没了\n")
    lexicon = parse_lexicon(settings.triage_lexicon_path.read_text(encoding="utf-8"))
    with pytest.raises(ValueError):
        TriageModel(
            taxonomy=taxonomy, lexicon=lexicon, examples=parse_examples("ufo\tnormal\t天上有飞碟\n"), threshold=0.2
        )


def test_features_are_words_and_bigrams():
    feats = features("井盖没了，很危险")
    assert "w:井盖" in feats and "b:井盖" in feats and "b:危险" in feats
    assert not any("，" in f for f in feats)


@pytest.mark.parametrize(
    "text,category,department",
    [
        ("东门口的下水井盖被人撬走了，只剩个大洞", "manhole", "zhujian"),
        ("三单元电梯停在半空，里面有两个孩子出不来", "elevator", "market"),
        ("夜里两点隔壁工地还在打混凝土，吵得睡不着", "construction_site", "zhujian"),
        ("公交站牌边上那家烧烤店的油烟全吹到楼上了", "cooking_fume", "eco_env"),
        ("老板拖了我们半年工钱，现在电话也不接", "social_insurance", "hrss"),
        ("河边那排柳树中间堆满了生活垃圾，很久没人清理", "exposed_garbage", "huanwei"),
        ("小区门口有人私自装了三个地锁占车位", "parking_lock", "chengguan"),
    ],
)
def test_clear_reports_are_classified_and_routed(model, text, category, department):
    result = model.classify(text)
    assert (result.category, result.department) == (category, department), result
    assert not result.needs_manual_triage and 0 < result.confidence <= 1


def test_danger_cues_make_any_report_urgent(model):
    lexicon = model.lexicon
    assert urgency("路边的大树被风吹得随时要倒", category_priority="normal", lexicon=lexicon)[0] == "urgent"
    assert urgency("楼道里一股煤气味", category_priority="normal", lexicon=lexicon)[0] == "urgent"
    assert urgency("有人受伤了在流血", category_priority="normal", lexicon=lexicon)[0] == "urgent"
    # A category that is urgent by default stays urgent without calm wording…
    assert urgency("小区电梯停运了", category_priority="urgent", lexicon=lexicon)[0] == "urgent"
    # …and calm wording demotes it only when there is no danger cue.
    assert urgency("电梯年检合格证过期了，麻烦有空来看看", category_priority="urgent", lexicon=lexicon)[0] == "normal"
    assert urgency("电梯过期了，还把人困在里面了", category_priority="urgent", lexicon=lexicon)[0] == "urgent"
    assert urgency("路灯不亮了", category_priority="normal", lexicon=lexicon) == ("normal", ())


def test_vague_text_goes_to_manual_triage_at_the_grid_centre(model):
    result = model.classify("这个事情到底有没有人管")
    assert result.needs_manual_triage and result.department == MANUAL_TRIAGE_DEPARTMENT
    assert result.as_dict()["department"] == "grid_center"


def test_corrections_teach_the_model_without_a_restart(fresh_model):
    # Local slang the shipped data does not know: "猫眼灯" for a kind of street lamp.
    text = "三岔口那几盏猫眼灯又瞎了"
    before = fresh_model.classify(text)
    assert before.needs_manual_triage or before.category != "signboard_lighting"
    for variant in ("猫眼灯瞎了好几盏", "北街猫眼灯又瞎了", "猫眼灯全瞎了没人修"):
        fresh_model.learn(text=variant, category="signboard_lighting")
    after = fresh_model.classify(text)
    assert after.category == "signboard_lighting" and after.department == "chengguan"
    assert not after.needs_manual_triage and after.confidence > before.confidence
    assert fresh_model.corrections_applied == 3
    with pytest.raises(ValueError):
        fresh_model.learn(text=text, category="ufo")


def test_cross_validation_on_the_shipped_data(settings, taxonomy):
    """A regression guard on reports each fold's model never saw (the shipped data only)."""
    scores = cross_validate(
        parse_examples(settings.triage_training_path.read_text(encoding="utf-8")),
        taxonomy=taxonomy,
        lexicon=parse_lexicon(settings.triage_lexicon_path.read_text(encoding="utf-8")),
        threshold=settings.triage_min_confidence,
    )
    print(f"\ntriage, 5-fold cross-validation on the training data: {scores.line()}")
    assert scores.category_accuracy >= 0.80 and scores.urgent_recall >= 0.93


def test_acceptance_set_accuracy(model, taxonomy):
    if not ACCEPTANCE.exists():
        pytest.skip(f"acceptance file {ACCEPTANCE} is not present (it lives in ../shared beside the repo)")
    scores = measure(model, read_labelled(ACCEPTANCE), taxonomy)
    print(f"\ntriage on the acceptance set (never trained on): {scores.line()}")
    assert scores.category_accuracy >= 0.90
    assert scores.urgent_recall >= 0.98
