"""The image (deploy/Dockerfile): multi-stage, base pinned by digest, runtime dependencies only and
each checked by hash, unbuffered output, the pods' numeric user, and a build context of only what
it copies. (No Docker daemon runs here: these read the files the build would.)"""

import re

import yaml

from shared.settings import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")


def pins(path: str) -> dict[str, str]:
    text = (PROJECT_ROOT / path).read_text(encoding="utf-8")
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s\\;]+)", text, re.M)}


def test_the_base_is_pinned_by_digest_and_the_build_is_multi_stage():
    [base] = re.findall(r"^ARG PYTHON=(\S+)$", DOCKERFILE, re.M)
    assert re.fullmatch(r"python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base)
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert stages == ["${PYTHON}", "${PYTHON}"]
    assert "--require-hashes" in DOCKERFILE and "COPY --from=build" in DOCKERFILE
    assert re.search(r"PYTHONUNBUFFERED=1", DOCKERFILE)


def test_the_lock_holds_every_runtime_pin_with_hashes_and_no_test_tool():
    runtime, lock, everything = (
        pins("requirements-runtime.txt"),
        pins("requirements-runtime.lock"),
        pins("requirements.txt"),
    )
    assert runtime and all(lock.get(name) == version for name, version in runtime.items()), "regenerate the lock"
    assert not set(everything) & set(lock), "a test or gate tool is in the runtime lock"
    text = (PROJECT_ROOT / "requirements-runtime.lock").read_text(encoding="utf-8")
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9_.-]+(?:\[[^\]]*\])?==)", text) if "==" in b]
    assert blocks and all("--hash=sha256:" in block for block in blocks)
    assert "-r requirements-runtime.txt" in (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8")


def test_the_image_runs_as_the_pods_user():
    [user] = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE, re.M)
    for path in (PROJECT_ROOT / "deploy" / "k8s").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "Deployment":
                context = doc["spec"]["template"]["spec"]["securityContext"]
                assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user, path


def test_the_build_context_is_only_what_the_image_copies():
    ignore = (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # everything is left out unless let in
    let_in = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    copied = {src.rstrip("/") for src in re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.M)}
    assert copied == let_in
