"""Triage on the data the project ships: the training data's voices, urgency as its own judgement,
confusable neighbours, the terms that decided, calibration, corrections, the honest evaluation and
the retraining decision; and the measured figures on ../shared/acceptance/public.jsonl (evaluated
only, never trained on)."""

import shutil
from collections import Counter

import numpy as np
import pytest

from services.intake import evaluate
from services.intake.app import load_triage_model
from services.intake.evaluate import (
    Predictions,
    calibration_error,
    confusions,
    leave_one_style_out,
    measure,
    per_category_recall,
    per_style,
    read_labelled,
    report,
    scores,
    urgent_thresholds,
)
from services.intake.retrain import not_worse
from services.intake.settings import IntakeSettings
from services.intake.triage import (
    MANUAL_TRIAGE_DEPARTMENT,
    URGENCY_FEATURE_NAMES,
    TriageModel,
    asserted_danger,
    fit_temperature,
    parse_lexicon,
    recall_threshold,
    style_recall_threshold,
    urgency_features,
    words,
)
from services.intake.triage_data import VOICES, Example, parse_rows, voiced_examples
from services.intake.triage_models import correction_examples, read_heldout, read_training
from shared.settings import PROJECT_ROOT
from shared.taxonomy import load_taxonomy

ACCEPTANCE = PROJECT_ROOT.parent / "shared" / "acceptance" / "public.jsonl"
HAND_WRITTEN_STYLES = ("elderly_voice", "group_chat", "worker_log", "dialect", "indirect", "two_problems")


@pytest.fixture(scope="module")
def settings():
    return IntakeSettings()


@pytest.fixture(scope="module")
def taxonomy(settings):
    return load_taxonomy(settings.responsibility_list_path)


@pytest.fixture(scope="module")
def lexicon(settings):
    return parse_lexicon(settings.triage_lexicon_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def examples(settings):
    return read_training(settings.triage_training_dir)


@pytest.fixture(scope="module")
def model(settings, taxonomy):
    return load_triage_model(settings, taxonomy)


@pytest.fixture
def fresh_model(settings, taxonomy):
    """A model of its own (its own correction memory), for tests that teach it."""
    return load_triage_model(settings, taxonomy)


def test_training_data_speaks_in_many_voices_and_covers_every_category(settings, taxonomy, examples):
    assert len(examples) >= 3000
    styles = Counter(e.style for e in examples)
    assert set(HAND_WRITTEN_STYLES) <= set(styles) and {"resident", "grid_worker", "frontline"} <= set(styles)
    hand_written = [e for e in examples if e.group.split(":")[0] == e.style]
    assert len(hand_written) >= 1000
    for style in ("elderly_voice", "group_chat", "worker_log", "indirect"):
        covered = {e.category for e in hand_written if e.style == style}
        assert covered == set(taxonomy.categories), (style, set(taxonomy.categories) - covered)
    per_category = Counter(e.category for e in examples)
    assert set(per_category) == set(taxonomy.categories) and min(per_category.values()) >= 40
    assert {e.priority for e in examples} == {"urgent", "normal"}
    # Voice messages come without punctuation; group chatter with emoji or @-mentions.
    assert all("，" not in e.text and "。" not in e.text for e in examples if e.style == "elderly_voice")
    chat = [e for e in hand_written if e.style == "group_chat" and e.group.startswith("group_chat:")]
    assert sum("@" in e.text for e in chat) >= 30


def test_held_out_set_is_another_voice_and_never_in_training(settings, taxonomy, examples):
    heldout = read_heldout(settings.triage_training_dir)
    assert {e.category for e in heldout} == set(taxonomy.categories)
    assert {e.style for e in heldout}.isdisjoint({e.style for e in examples})
    assert not {e.text for e in heldout} & {e.text for e in examples}
    if ACCEPTANCE.exists():  # the public file is evaluation-only: not one of its texts is trained on
        assert not {e.text for e in read_labelled(ACCEPTANCE)} & {e.text for e in examples}


def test_rows_parse_with_their_style_and_bad_lines_are_refused(settings, taxonomy, lexicon):
    [row] = parse_rows("# comment\n\nmanhole U 井盖没了 有人掉下去了\n", style="group_chat")
    assert (row.category, row.priority, row.style) == ("manhole", "urgent", "group_chat")
    assert row.text == "井盖没了 有人掉下去了"
    for bad in ("manhole soon 井盖没了", "manhole U", "manhole"):
        with pytest.raises(ValueError):
            parse_rows(bad, style="x")
    with pytest.raises(ValueError, match="unknown categories"):
        TriageModel(
            taxonomy=taxonomy,
            lexicon=lexicon,
            examples=[Example("天上有飞碟", "ufo"), Example("井盖没了", "manhole", "urgent")],
            threshold=0.2,
        )
    with pytest.raises(ValueError, match="two categories"):
        TriageModel(taxonomy=taxonomy, lexicon=lexicon, examples=[Example("井盖没了", "manhole")], threshold=0.2)


def test_voices_are_deterministic_and_keep_their_phrase_group():
    phrase = Example("井盖不见了只剩一个黑洞", "manhole", "urgent", "phrase", "phrase:3")
    first, again = voiced_examples([phrase]), voiced_examples([phrase])
    assert first == again and len(first) == 3 * len(VOICES)
    assert {e.group for e in first} == {"phrase:3"} and {e.style for e in first} == set(VOICES)
    elderly = [e.text for e in first if e.style == "elderly_voice"]
    assert all("，" not in t for t in elderly)


def test_a_voice_never_tells_the_label():
    """The same phrase marked urgent or normal is voiced identically: the wrapper carries no label."""
    urgent = Example("楼道里堆满了纸箱", "fire_hazard", "urgent", "phrase", "phrase:1")
    normal = Example("楼道里堆满了纸箱", "fire_hazard", "normal", "phrase", "phrase:1")
    assert [e.text for e in voiced_examples([urgent])] == [e.text for e in voiced_examples([normal])]


def test_word_features_drop_particles_and_punctuation():
    found = words("井盖没了，很危险！")
    assert "井盖" in found and "危险" in found
    assert not {"，", "！", "了", "很"} & set(found)


@pytest.mark.parametrize(
    "text,category,department",
    [
        ("东门口的下水井盖被人撬走了，只剩个大洞", "manhole", "zhujian"),
        ("三单元电梯停在半空，里面有两个孩子出不来", "elevator", "market"),
        ("夜里两点隔壁工地还在打混凝土，吵得睡不着", "construction_site", "zhujian"),
        ("公交站牌边上那家烧烤店的油烟全吹到楼上了", "cooking_fume", "eco_env"),
        ("老板拖了我们半年工钱，现在电话也不接", "social_insurance", "hrss"),
        ("小区门口有人私自装了三个地锁占车位", "parking_lock", "chengguan"),
        ("喂那个我们楼下那个警盖没得了一个大洞洞你们快来看下嘛", "manhole", "zhujian"),
        ("@物业 😱 5号楼电提卡在两层中间了 里面有人", "elevator", "market"),
    ],
)
def test_clear_reports_are_classified_and_routed(model, text, category, department):
    result = model.classify(text)
    assert (result.category, result.department) == (category, department), result
    assert not result.needs_manual_triage and 0 < result.confidence <= 1


@pytest.mark.parametrize(
    "text,category",
    [
        ("楼上装修电钻从早响到晚", "noise"),  # not construction_site
        ("工地夜里还在打桩", "construction_site"),  # not noise
        ("车站门口私家车拉客不打表", "unlicensed_taxi"),  # not illegal_parking
        ("小区门口乱停车把路堵了", "illegal_parking"),  # not unlicensed_taxi
        ("楼道里堆满纸箱还有人抽烟", "fire_hazard"),
        ("路边下水道往外冒黑臭的水", "sewage"),  # not road_damage
        ("路面塌了个坑", "road_damage"),  # not sewage
        ("桥洞下睡着一个流浪汉", "vagrancy"),  # not public_order
        ("几个人在广场打架", "public_order"),  # not vagrancy
    ],
)
def test_confusable_neighbours_are_told_apart(model, text, category):
    assert model.classify(text).category == category


@pytest.mark.parametrize(
    "text",
    [
        "塔吊吊着一捆钢管在小学操场上空转来转去，孩子们正在上体育课",  # a swinging load over children
        "人行道上一根管子裂开了，滚烫的蒸汽往外喷，行人从旁边走",  # hot steam onto a pavement
        "我妈正在电话里按对方说的转账，说是公安局的，已经转了两万",  # a scam happening now
        "公园里一群喝醉的人在推搡路人",  # a drunk group pushing passers-by
        "楼道里一股很冲的煤气味",
        "南门菜场后面的井盖不见了，晚上黑乎乎的，差点有人掉下去",
    ],
)
def test_danger_to_people_now_is_urgent_without_an_alarming_keyword(model, text):
    result = model.classify(text)
    assert result.priority == "urgent", result
    assert result.urgent_cues and result.urgency >= 0.5


@pytest.mark.parametrize(
    "text",
    [
        "吓死人了，楼下烧烤油烟好大",  # alarming words, no one in danger
        "电梯年检合格证过期了，麻烦有空来看看",
        "路灯不亮了",
        "工地夜里还在打桩",
    ],
)
def test_alarming_words_without_present_danger_are_not_urgent(model, text):
    result = model.classify(text)
    assert result.priority == "normal", result
    assert result.urgent_cues == ()


def test_urgency_features_are_danger_vulnerable_people_and_now(lexicon):
    text = "吊车吊着预制板在幼儿园上空晃，孩子正在院子里"
    features = dict(zip(URGENCY_FEATURE_NAMES, urgency_features(text, lexicon), strict=True))
    named = ("危险", "弱势人群", "正在发生", "危险×弱势", "危险×正在", "危险×弱势×正在")
    assert [features[n] for n in named] == [1] * 6
    assert features["语气平和"] == features["只是担心或否认的危险"] == features["已经过去"] == 0
    calm = dict(zip(URGENCY_FEATURE_NAMES, urgency_features("路灯不亮了，不急", lexicon), strict=True))
    assert calm["语气平和"] == 1 and sum(calm.values()) == 1


@pytest.mark.parametrize(
    "text,fact,unreal",
    [
        ("楼道里一股很冲的煤气味", True, False),
        ("南门菜场后面的井盖不见了，差点有人掉下去", True, False),
        ("楼道里堆满纸箱，真着火了跑都跑不出去", False, True),  # feared, not happening
        ("应急电话打不通，万一困人都没法求救", False, True),
        ("两车轻微剐蹭，没人受伤", False, True),  # denied
        ("还以为着火了，原来是楼下烧烤", False, True),  # a misreading
        ("楼道里闻着像煤气味，越来越浓", True, False),  # 像 is how people describe a smell, no doubt
        ("路灯不亮了", False, False),  # no danger named at all
        # A cue stated as a fact anywhere makes it a fact, whatever else is feared.
        ("怕出事，现在已经冒烟了", True, False),
    ],
)
def test_danger_feared_or_denied_is_not_danger_stated_as_a_fact(lexicon, text, fact, unreal):
    assert asserted_danger(text, lexicon) == (fact, unreal)


def test_a_danger_that_is_over_is_told_from_one_happening_now(lexicon):
    over = dict(zip(URGENCY_FEATURE_NAMES, urgency_features("广场上两伙人推搡了几下，已经散了", lexicon), strict=True))
    now = dict(zip(URGENCY_FEATURE_NAMES, urgency_features("广场上两伙人推搡起来了，还在打", lexicon), strict=True))
    assert (over["已经过去"], over["危险×已经过去"]) == (1, 1)
    assert (now["已经过去"], now["危险×正在"]) == (0, 1)


def test_the_answer_names_the_terms_that_decided_and_the_model(model):
    result = model.classify("楼下饭店的油烟全排到我家窗户里了")
    assert result.category == "cooking_fume"
    assert result.top_terms and any("油烟" in t for t in result.top_terms)
    assert all(len(t) >= 2 for t in result.top_terms) and len(result.top_terms) <= 5
    answer = result.as_dict()
    assert answer["model_version"] == model.version and len(model.version) == 12
    assert answer["top_terms"] == list(result.top_terms) and 0 <= answer["urgency"] <= 1
    assert set(answer) >= {"category", "department", "priority", "confidence", "alternatives", "urgent_cues"}


def test_vague_text_goes_to_manual_triage_at_the_grid_centre(model):
    result = model.classify("这个事情到底有没有人管")
    assert result.needs_manual_triage and result.department == MANUAL_TRIAGE_DEPARTMENT
    assert result.as_dict()["department"] == "grid_center"


def test_confidence_is_calibrated_on_the_held_out_voice(settings, model):
    """The manual-triage threshold means what it says: what triage is sure of is right that often."""
    held = measure(model, read_heldout(settings.triage_training_dir))
    print(f"\ntriage on the held-out sets: {held.line()}")
    assert held.calibration_error <= 0.10
    # 15 urgent reports: one miss is 93 %. The urgent threshold (the median of the held-out styles'
    # own) trades about a point of recall for seven of precision; this set's one miss scores a
    # hair under it (services/intake/README.md, Figures).
    assert held.accuracy_when_sure >= 0.9 and held.category_accuracy >= 0.9 and held.urgent_recall >= 0.9


def test_the_same_data_gives_the_same_model(settings, taxonomy, model):
    again = load_triage_model(settings, taxonomy)
    assert again.version == model.version and again is not model
    text = "小区门口垃圾桶满了三天没人拉"
    assert again.classify(text) == model.classify(text)


def test_corrections_teach_texts_like_them_at_once(fresh_model, model):
    # Local slang the shipped data does not know: "猫眼眨巴" for street lamps that flicker.
    text = "三岔口那几只猫眼又眨巴了"
    before = fresh_model.classify(text)
    assert before.needs_manual_triage or before.category != "signboard_lighting"
    for variant in ("猫眼眨巴了好几只", "北街猫眼又眨巴了", "猫眼全眨巴了没人修"):
        fresh_model.learn(text=variant, category="signboard_lighting")
    after = fresh_model.classify(text)
    assert after.category == "signboard_lighting" and after.department == "chengguan"
    assert not after.needs_manual_triage and after.confidence > before.confidence
    assert after.top_terms[0] == "调度员纠正"
    assert fresh_model.corrections_applied == 3
    # Unlike texts are untouched, and another app's model (the same trained one) learned nothing.
    assert fresh_model.classify("楼道里一股很冲的煤气味").category == "gas_leak"
    assert model.classify(text).category == before.category and model.corrections_applied == 0
    with pytest.raises(ValueError):
        fresh_model.learn(text=text, category="ufo")


def test_corrections_become_weighted_training_rows(taxonomy, model):
    rows = [
        {"id": 1, "text": "猫眼眨巴了", "category": "signboard_lighting", "priority": None},
        {"id": 2, "text": "电梯里关着人", "category": "elevator", "priority": "urgent"},
        {"id": 3, "text": "天上有飞碟", "category": "ufo", "priority": None},  # no longer a category
    ]
    extra = correction_examples(rows, taxonomy=taxonomy, model=model)
    assert [e.category for e in extra] == ["signboard_lighting"] * 3 + ["elevator"] * 3
    assert extra[0].priority == "normal" and extra[3].priority == "urgent" and extra[0].style == "correction"


def test_a_new_model_replaces_the_old_only_if_not_worse():
    def s(category, recall):
        return evaluate.Scores(66, category, recall, 0.8, 15, 3, 5, 0.95, 0.04)

    assert not_worse(s(0.95, 1.0), s(0.95, 1.0))[0]
    assert not_worse(s(0.97, 1.0), s(0.95, 1.0))[0]
    refused, reason = not_worse(s(0.94, 1.0), s(0.95, 1.0))
    assert not refused and "category accuracy" in reason
    refused, reason = not_worse(s(0.99, 0.93), s(0.95, 1.0))
    assert not refused and "urgent recall" in reason


def test_leave_one_style_out_never_trains_on_a_test_rows_source(taxonomy, lexicon, examples):
    """The evaluation machinery, on a small slice of the data so it runs in seconds."""
    small = [e for e in examples if e.style in ("worker_log", "indirect", "two_problems", "dialect")]
    p = leave_one_style_out(small, taxonomy=taxonomy, lexicon=lexicon, threshold=0.4)
    assert len(p.examples) == len(small) and set(per_style(p)) == {"worker_log", "indirect", "two_problems", "dialect"}
    s = scores(p)
    assert 0.5 < s.category_accuracy <= 1 and 0 < s.urgent_recall <= 1 and 0 < s.urgent_precision <= 1
    assert set(per_category_recall(p)) == {e.category for e in small}
    assert all(t != g and n >= 1 for t, g, n in confusions(p))
    # Each fold chose its head, temperatures and urgent threshold without the test style.
    assert [style for style, _ in p.calibrations] == sorted({e.style for e in small})
    assert all(c.rows and c.head_accuracy and 0 < c.urgent_threshold < 1 for _, c in p.calibrations)
    recalls = [r for _, r, _ in urgent_thresholds(p)]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold never finds more
    lines = report(p, "small")
    assert lines[0].startswith("small: ") and "hand-written rows only" in lines[1]  # dialect has voiced phrases
    assert "per-category recall" in lines[2] and "confusions" in lines[3] and "per-style" in lines[4]


def test_temperature_and_recall_threshold_are_fitted_on_held_out_rows():
    # Margins that are right but overconfident at temperature 1 are softened (t > 1), and the reverse.
    truth = np.array([0, 1] * 50)
    sure = np.array([[4.0, 0.0], [0.0, 4.0]] * 50)
    sure[:30] = sure[:30][:, ::-1]  # 30 % wrong
    assert fit_temperature(sure, truth) > 1.0
    timid = np.array([[0.1, 0.0], [0.0, 0.1]] * 50)
    assert fit_temperature(timid, truth) < 0.5
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    urgent = np.array([True] * 5 + [False] * 5)
    assert recall_threshold(p, urgent, 1.0) == 0.5  # every urgent one found
    assert recall_threshold(p, urgent, 0.8) == 0.6  # four of five
    assert recall_threshold(p, np.zeros(10, dtype=bool), 0.98) == 0.5


def test_the_urgent_threshold_is_the_median_of_each_held_out_styles_own():
    """One hard style's tail (its urgent reports scored low) does not set the threshold for all."""
    p = np.array([0.9, 0.8, 0.2, 0.1] + [0.9, 0.7, 0.3, 0.2] + [0.05, 0.6, 0.04, 0.01])
    urgent = np.array([True, True, False, False] * 2 + [True, True, False, False])
    splits = np.repeat([0, 1, 2], 4)
    # Each split's 98 % threshold: 0.8, 0.7 and (its tail) 0.05; pooled it would be 0.05 for all.
    assert recall_threshold(p, urgent, 0.98) == 0.05
    assert style_recall_threshold(p, urgent, splits) == 0.7
    assert style_recall_threshold(p, np.zeros(12, dtype=bool), splits) == 0.5


def test_calibration_error_is_the_gap_between_confidence_and_accuracy():
    assert calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert calibration_error([1.0] * 4, [True, False, True, False]) == pytest.approx(0.5)
    empty = Predictions()
    assert empty.examples == []


def test_evaluate_prints_the_headline_and_the_public_figures(tmp_path, settings, capsys):
    data = tmp_path / "triage"
    (data / "heldout").mkdir(parents=True)
    for name in ("worker_log.txt", "indirect.txt", "two_problems.txt", "phrases.txt"):
        shutil.copy(settings.triage_training_dir / name, data / name)
    shutil.copy(settings.triage_training_dir / "heldout" / "hotline.txt", data / "heldout" / "hotline.txt")
    evaluate.main(["--data", str(data), "--labelled", str(ACCEPTANCE)])
    out = capsys.readouterr().out
    assert "leave-one-style-out (nested" in out and "per-category recall" in out and "top confusions" in out
    assert "urgent precision" in out and "held-out sets" in out and "calibration" in out
    assert "hand-written rows only" in out and "choices made in training" in out
    table = out[out.index("figures side by side:") :].splitlines()
    assert "leave-one-style-out" in table[1] and "held-out" in table[1]
    assert any(line.split()[:2] == ["urgent", "precision"] for line in table)
    assert any(line.split()[:2] == ["recall", "manhole"] for line in table)
    if ACCEPTANCE.exists():
        assert "(evaluated only)" in out and "public file" in table[1]


def test_acceptance_set_accuracy(model):
    if not ACCEPTANCE.exists():
        pytest.skip(f"acceptance file {ACCEPTANCE} is not present (it lives in ../shared beside the repo)")
    scores_ = measure(model, read_labelled(ACCEPTANCE))
    print(f"\ntriage on the acceptance set (never trained on): {scores_.line()}")
    assert scores_.category_accuracy >= 0.90
    assert scores_.urgent_recall >= 0.98


@pytest.mark.parametrize(
    "text", ["楼道里一股很冲的煤气味", "喂那个我们楼下那个警盖没得了", "@物业 😱 电梯卡住了", "谢谢", "x"]
)
def test_one_report_at_a_time_scores_exactly_as_a_batch(model, text):
    """classify's hand-made TF-IDF (fast, one text) agrees with sklearn's batch transform."""
    result = model.classify(text)
    batch = model.probabilities(text)
    assert result.confidence == pytest.approx(batch[result.category], abs=1e-9)
    assert result.urgency == pytest.approx(float(model.urgency_probability([text])[0]), abs=1e-9)
