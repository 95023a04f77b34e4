"""Triage's training data: hand-written reports in the county's voices, and more made from hand-written
problem phrases put in those voices and places.

Files (shared/data/triage/): one per source style, `<style>.txt`, each line `category U|N text`
(U urgent, N normal; '#' starts a comment); `phrases.txt` holds problem phrases in the same format,
which `voiced_examples` wraps in each voice; `heldout/` holds sets written in a voice no training file
uses (12345 hotline work orders): they gate retraining and are never trained on.

Every example records its style (the voice it is written in) and its group (the hand-written text it
came from), so cross-validation can leave a whole style out, and also every row made from the same
phrase, and so measure the model on writers it has never seen. Pure: the caller reads the files.
"""

import random
import re
from dataclasses import dataclass

PRIORITIES = {"U": "urgent", "N": "normal"}


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    priority: str = "normal"
    style: str = "resident"
    group: str = ""  # examples with the same group come from one hand-written text or phrase


def parse_rows(text: str, *, style: str) -> list[Example]:
    """Examples from a style file's text: `category U|N report` per line; '#' starts a comment."""
    examples = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.strip().split(" ", 2)
        if len(parts) != 3 or parts[1] not in PRIORITIES or not parts[2].strip():
            raise ValueError(f"{style} line {n} is not 'category U|N text'")
        category, mark, report = parts
        examples.append(
            Example(
                text=report.strip(),
                category=category,
                priority=PRIORITIES[mark],
                style=style,
                group=f"{style}:{n}",
            )
        )
    return examples


# Places the voices put problems in: invented, county-like.
PLACES = (
    "人民路口",
    "幸福小区3栋",
    "东关菜市场门口",
    "二小后门",
    "滨河公园",
    "老街",
    "城南安置房",
    "村口",
    "锦华小区北门",
    "文化路",
    "新华街",
    "建设路与光明路交叉口",
    "杨家村",
    "金色家园",
    "河堤东段",
    "步行街",
    "实验中学门口",
    "工业园北门",
    "南门桥头",
    "红星村三组",
    "春晖小区",
    "农贸市场",
    "长安小区5号楼",
    "老年活动中心",
    "城关镇政府对面",
    "解放路",
    "北关村",
    "向阳街",
    "丰收路12号",
)
# A voice's endings and actions never depend on the label: people say 赶紧来人 of grill smoke too, and
# a wrapper chosen by the label would teach the model the wrapper (and inflate every figure).
ENDINGS = (
    "麻烦有空来看看",
    "方便时处理一下",
    "希望有人管管",
    "已经好几天了",
    "谁来管管",
    "赶紧来人",
    "请马上处理",
    "快来人看看",
    "太吓人了，赶紧处理",
    "请尽快派人",
)
GRID_WORKER_ACTIONS = ("已登记", "已拍照上报", "待处置", "已告知相关方", "已设置警示，请处置", "请相关部门处理")
CHAT_OPENERS = ("大家好", "各位早", "群里说一下", "刚路过", "哈哈今天好热", "有人知道吗", "吃了吗各位", "[图片]")
CHAT_TAGS = ("@网格员", "@社区", "@物业", "@所有人", "@网格长小李", "")
EMOJI = ("😱", "😡", "🙏", "😷", "🙄", "👀", "😤", "🥺", "⚠️", "🆘", "😂", "👍")
CHAT_TAILS = ("谁管管啊", "转给相关部门吧", "明天还要上班呢", "都看看", "先这样", "拜托了")
FILLERS = ("喂", "喂喂", "那个", "那个那个", "嗯", "就是说", "我跟你讲啊", "哎呀", "你好")
# Speech-to-text writes a word by its sound: the typos elderly residents' voice messages arrive with.
HOMOPHONES = {
    "井盖": "警盖",
    "燃气": "然气",
    "电梯": "电提",
    "垃圾": "拉鸡",
    "路灯": "路登",
    "暖气": "暖期",
    "保健品": "保见品",
    "红绿灯": "红绿等",
    "漏气": "露气",
    "停电": "停点",
    "噪音": "造音",
    "油烟": "油眼",
    "污水": "乌水",
    "补贴": "补帖",
    "工资": "工子",
}
# Colloquial and dialect words for common ones.
DIALECT = {
    "怎么办": "咋整",
    "很": "贼",
    "太": "老",
    "这里": "这嘎达",
    "那里": "那旮沓",
    "脏": "埋汰",
    "小孩": "娃娃",
    "没有": "没得",
    "什么": "啥子",
    "不行": "不得行",
    "好几天": "好些天",
    "看看": "瞅瞅",
    "东西": "玩意儿",
}
DIALECT_ENDINGS = ("咋整啊", "中不中", "恼火得很", "闹心巴拉的", "管管嘛", "快点整")
_PUNCTUATION = re.compile(r"[，。！？、,.!?；;：:\s]+")


def _elderly(rng: random.Random, place: str, phrase: str) -> str:
    opening = f"{rng.choice(FILLERS)}{rng.choice(FILLERS)}"
    text = f"{opening}我们{place}那里啊{phrase}{rng.choice(FILLERS)}{rng.choice(ENDINGS)}"
    for word, typo in HOMOPHONES.items():
        if word in text and rng.random() < 0.6:
            text = text.replace(word, typo)
    return _PUNCTUATION.sub("", text)


def _dialect(rng: random.Random, place: str, phrase: str) -> str:
    text = f"{place}{phrase}"
    for word, local in DIALECT.items():
        if word in text and rng.random() < 0.7:
            text = text.replace(word, local)
    return f"{text} {rng.choice(DIALECT_ENDINGS)}"


def _group_chat(rng: random.Random, place: str, phrase: str) -> str:
    return (
        f"{rng.choice(CHAT_OPENERS)}{rng.choice(EMOJI)} {rng.choice(CHAT_TAGS)} {place}{phrase}"
        f"{rng.choice(EMOJI)} {rng.choice(CHAT_TAILS)}"
    ).strip()


def _grid_worker(rng: random.Random, place: str, phrase: str) -> str:
    action = rng.choice(GRID_WORKER_ACTIONS)
    if rng.random() < 0.5:
        return f"巡查发现：{place}{phrase}，{action}。"
    return f"{rng.randint(7, 22)}:{rng.randint(0, 5)}0 {place} {phrase} {action}"


def _resident(rng: random.Random, place: str, phrase: str) -> str:
    opening = rng.choice(("我们", "", "我家", "您好，"))
    return f"{opening}{place}{rng.choice(('这边', '', '附近'))}{phrase}，{rng.choice(ENDINGS)}"


VOICES = {
    "resident": _resident,
    "group_chat": _group_chat,
    "grid_worker": _grid_worker,
    "elderly_voice": _elderly,
    "dialect": _dialect,
}


def voiced_examples(phrases: list[Example], *, per_voice: int = 3, seed: int = 17) -> list[Example]:
    """Each phrase in each voice, `per_voice` times at different places; deterministic for a seed.
    An example keeps its phrase's group, so a fold that tests a phrase trains on none of its rows."""
    rng = random.Random(seed)
    out = []
    for phrase in phrases:
        for voice, make in VOICES.items():
            for place in rng.sample(PLACES, per_voice):
                out.append(
                    Example(
                        text=make(rng, place, phrase.text),
                        category=phrase.category,
                        priority=phrase.priority,
                        style=voice,
                        group=phrase.group,
                    )
                )
    return out


def training_examples(style_texts: dict[str, str], phrases_text: str) -> list[Example]:
    """The hand-written rows of every style file, then the phrases in every voice."""
    examples = [e for style, text in sorted(style_texts.items()) for e in parse_rows(text, style=style)]
    return examples + voiced_examples(parse_rows(phrases_text, style="phrase"))
