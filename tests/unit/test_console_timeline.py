"""What the console's case timeline says of a step, besides its name."""

from services.console.pages import step_label, timeline_note


def test_disputes_and_doubtful_photos_are_spelled_out_for_the_dispatcher():
    assert step_label("overrule_return") == "驳回退回" and step_label("uphold_return") == "同意退回并改派"
    assert step_label("evidence_flagged") == "照片存疑"
    flagged = timeline_note({"action": "evidence_flagged", "detail": {"media_id": "m1", "flags": ["reused_photo"]}})
    assert "媒体核验存疑：reused_photo" in flagged
    resolved = timeline_note(
        {"reason": None, "detail": {"result": "已更换", "flagged_media": {"m1": ["reused_photo"], "m2": ["x"]}}}
    )
    assert "已更换" in resolved and "2 张存疑" in resolved
    ruling = timeline_note({"reason": "市政道路井盖", "detail": {"ruling": "overruled"}})
    assert "市政道路井盖" in ruling
    assert timeline_note({"detail": {}}) == ""
