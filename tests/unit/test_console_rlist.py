"""The responsibility-list editor's rows: the document as rows and back, typed department names,
errors found before dispatch is asked, dispatch's errors placed on their rows, and version diffs."""

from starlette.datastructures import FormData

from services.console.rlist import (
    NOT_HERE,
    Row,
    compare,
    department_codes,
    document_of,
    place_errors,
    rows_from_form,
    rows_of,
    scope_names,
)

DEPARTMENTS = {"zhujian": "住房和城乡建设局", "chengguan": "城市管理局", "police": "公安局"}
DOCUMENT = {
    "version": "v1",
    "co_handlers": {"construction_site": ["chengguan", "police"]},
    "levels": {"town": {"manhole": {"lead": "zhujian", "co": ["chengguan"]}, "noise": None}},
    "overrides": {"330727001": {"noise": {"lead": "police"}}},
}


def test_a_document_becomes_rows_and_the_rows_the_same_document():
    rows = rows_of(DOCUMENT)
    assert [(r.scope, r.category, r.lead, r.co) for r in rows] == [
        ("county", "construction_site", "", ["chengguan", "police"]),
        ("town", "manhole", "zhujian", ["chengguan"]),
        ("town", "noise", NOT_HERE, []),
        ("330727001", "noise", "police", []),
    ]
    assert document_of(rows, version="v1") == DOCUMENT


def test_departments_are_typed_by_name_or_code():
    assert department_codes("城市管理局、police，城市管理局", DEPARTMENTS) == (["chengguan", "police"], [])
    assert department_codes(" 城管局 ,zhujian", DEPARTMENTS) == (["zhujian"], ["城管局"])
    assert department_codes("", DEPARTMENTS) == ([], [])


def form(*rows: tuple[str, str, str, str]) -> FormData:
    return FormData(
        [(name, value) for row in rows for name, value in zip(("scope", "category", "lead", "co"), row, strict=True)]
    )


def test_the_editor_finds_what_it_can_before_asking_dispatch():
    rows = rows_from_form(
        form(
            ("各乡镇（街道）", "manhole", "zhujian", "城市管理局"),
            ("town", "", "", ""),  # an empty row: ignored
            ("town", "manhole", "police", ""),  # the same scope and category again
            ("33", "noise", "police", "城管局"),  # not a division code; an unknown department
            ("village", "noise", "", ""),  # no lead
            ("城关街道", "construction_site", "", "公安局"),
        ),
        DEPARTMENTS,
        scope_names({"330727": "示范县", "330727001": "城关街道"}),
    )
    assert [r.errors for r in rows] == [
        [],
        ["与上面一行的适用范围和类别重复"],
        ["不认识的部门：城管局（请写部门全称，用顿号分隔）", "适用范围请从列表中选择，或填写 6、9、12 位的区划代码"],
        ["请选择主办部门（或选「不在本级办理」）"],
        ["请选择主办部门（或选「不在本级办理」）"],
    ]
    assert (rows[0].scope, rows[0].co) == ("town", ["chengguan"])
    assert (rows[4].scope, rows[4].co) == ("330727001", ["police"])


def test_dispatchs_errors_go_next_to_their_rows():
    rows = [Row("town", "manhole", "zhujian"), Row("330727001", "noise", "x"), Row("county", "road_damage")]
    left = place_errors(
        rows,
        [
            {"field": "overrides.330727001.noise", "message": "主办部门「x」不是已知部门"},
            {"field": "co_handlers.road_damage", "message": "协办部门「y」不是已知部门"},
            {"field": "version", "message": "请填写版本号"},
        ],
    )
    assert left == ["请填写版本号"]
    assert [r.errors for r in rows] == [[], ["主办部门「x」不是已知部门"], ["协办部门「y」不是已知部门"]]


def test_two_versions_are_compared_row_by_row():
    newer = {
        "version": "v2",
        "co_handlers": DOCUMENT["co_handlers"],
        "levels": {"town": {"manhole": {"lead": "chengguan"}, "noise": None, "road_damage": {"lead": "zhujian"}}},
        "overrides": {},
    }
    changes = compare(DOCUMENT, newer)
    assert [(c.kind, c.scope, c.category) for c in changes] == [
        ("删除", "330727001", "noise"),
        ("修改", "town", "manhole"),
        ("新增", "town", "road_damage"),
    ]
    assert compare(DOCUMENT, DOCUMENT) == []
