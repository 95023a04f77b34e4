from services.dispatch.domain import route_report
from shared.settings import Settings
from shared.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy(Settings().responsibility_list_path)


def test_category_routes_to_its_lead_department_with_the_rule_recorded():
    decision = route_report(taxonomy=TAXONOMY, category="manhole")
    assert decision.department_code == "zhujian"
    assert decision.department_name == "住房和城乡建设局"
    assert decision.priority == "urgent"
    assert decision.rule == "category:manhole->zhujian"
    assert decision.list_version == TAXONOMY.version


def test_unclassified_report_goes_to_grid_centre_for_manual_triage():
    for category in (None, "no_such_category"):
        decision = route_report(taxonomy=TAXONOMY, category=category)
        assert decision.department_code == "grid_center"
        assert decision.category == "other"
        assert decision.rule.startswith("unclassified(")


def test_taxonomy_has_all_categories_and_departments():
    assert len(TAXONOMY.categories) == 33
    assert len(TAXONOMY.departments) == 18
