"""kubeflow_runner.py compiles the same pipeline into a KFP v2 pipeline spec, with its image and parameters.

Expected tasks and edges are derived from the pipeline object the runner builds, not listed here, so a
component added to pipeline/pipeline.py is checked without editing this file.
"""

import json
import socket
import subprocess
import sys

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.pusher import executor as pusher_executor_lib
from tfx.dsl.components.base import base_executor
from tfx.proto import trainer_pb2
from tfx.utils import import_utils, name_utils, proto_utils

import kubeflow_runner
from components.validation import drift
from config import images
from config import kubeflow as kubeflow_config
from config import pipeline as configs
from config.kubeflow import KubeflowConfig
from runners import kubeflow_spec, kubeflow_submit

IMAGE = "registry.example/imdb:1"
ENTRYPOINT = ["python", "-m", "runners.kfp_entrypoint"]
BASE_FLAGS = [
    "--pipeline-root",
    "gs://bucket/root",
    "--data",
    "gs://bucket/aclImdb",
    "--serving-model-dir",
    "gs://bucket/serving",
    "--image",
    IMAGE,
]


def compile_with(tmp_path, *flags):
    """Compiles with BASE_FLAGS + flags; returns the pipeline object, the job JSON and the parsed spec."""
    args = kubeflow_runner.parse_args([*BASE_FLAGS, "--output-file", str(tmp_path / "spec.json"), *flags])
    pipeline, defaults = kubeflow_spec.build_pipeline(args)
    spec_path = kubeflow_spec.compile_pipeline(args, pipeline, defaults)
    job = json.loads(open(spec_path).read())
    return pipeline, job, json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_with(tmp_path_factory.mktemp("kfp"), "--train-steps", "500")


def executors(job) -> dict:
    return job["pipelineSpec"]["deploymentSpec"]["executors"]


def _node(pipeline, node_id):
    return next(node for node in pipeline.components if node.id == node_id)


def test_dag_is_the_local_pipelines_components_and_edges(compiled):
    pipeline, _, spec = compiled
    tasks = spec.root.dag.tasks
    assert set(tasks) == {node.id for node in pipeline.components}
    for node in pipeline.components:
        task = tasks[node.id]
        assert set(task.dependent_tasks) == {u.id for u in node.upstream_nodes}, node.id
        # Every data edge: the task reads the same output key of the same producer as the local node.
        for key, channel in node.inputs.items():
            source = task.inputs.artifacts[key].task_output_artifact
            assert source.producer_task == channel.producer_component_id, (node.id, key)
            assert source.output_artifact_key == channel.output_key, (node.id, key)
        assert set(task.inputs.artifacts) == set(node.inputs), node.id


def test_each_task_runs_the_image_and_a_resolvable_tfx_executor(compiled):
    pipeline, job, spec = compiled
    containers = 0
    for node in pipeline.components:
        container = executors(job)[spec.components[node.id].executor_label]["container"]
        assert container["image"] == IMAGE
        assert container["command"] == ENTRYPOINT
        import_utils.import_func_from_module(ENTRYPOINT[2], "main")  # the entrypoint exists in the environment
        args = container["args"]
        class_path = args[args.index("--executor_class_path") + 1]
        executor_class = import_utils.import_class_by_path(class_path)
        assert issubclass(executor_class, base_executor.BaseExecutor)
        assert class_path == name_utils.get_full_name(node.executor_spec.executor_class)
        assert args[args.index("--json_serialized_invocation_args") + 1] == "{{$}}"
        containers += 1
    assert containers == len(pipeline.components)
    images = {e["container"]["image"] for e in executors(job).values() if "container" in e}
    assert images == {IMAGE}


def test_trainer_run_fn_is_importable_by_the_name_the_spec_gives(compiled):
    _, _, spec = compiled
    run_fn = spec.root.dag.tasks["Trainer"].inputs.parameters["run_fn"].runtime_value.constant.string_value
    assert callable(import_utils.import_func_from_module(*run_fn.rsplit(".", 1)))


def test_pusher_is_gated_by_the_evaluators_blessing(compiled):
    pipeline, job, spec = compiled
    pusher = next(n for n in pipeline.components if isinstance(n, tfx.components.Pusher))
    blessing = spec.root.dag.tasks[pusher.id].inputs.artifacts["model_blessing"].task_output_artifact
    producer = spec.root.dag.tasks[blessing.producer_task]
    producer_executor = executors(job)[spec.components[producer.component_ref.name].executor_label]["container"]
    class_path = producer_executor["args"][producer_executor["args"].index("--executor_class_path") + 1]
    assert issubclass(import_utils.import_class_by_path(class_path), evaluator_executor.Executor)
    assert blessing.output_artifact_key == "blessing"
    assert blessing.producer_task in spec.root.dag.tasks[pusher.id].dependent_tasks
    # TFX's Pusher executor checks the blessing; ours adds the atomic push (tested by running it:
    # test_kfp_backend_conformance.py, test_reliability.py).
    pusher_executor = executors(job)[spec.components[pusher.id].executor_label]["container"]
    pusher_class = pusher_executor["args"][pusher_executor["args"].index("--executor_class_path") + 1]
    assert pusher_class == "components.serving.atomic_pusher.Executor"
    assert issubclass(import_utils.import_class_by_path(pusher_class), pusher_executor_lib.Executor)


def test_runtime_parameters_default_to_the_compiled_values(compiled):
    pipeline, job, spec = compiled
    root_parameters = spec.root.input_definitions.parameters
    assert set(root_parameters) == set(kubeflow_config.RUNTIME_PARAMETERS)
    for name, (component_id, exec_property, _) in kubeflow_config.RUNTIME_PARAMETERS.items():
        task = spec.root.dag.tasks[component_id]
        assert task.inputs.parameters[exec_property].component_input_parameter == name
        assert root_parameters[name].is_optional
        assert job["runtimeConfig"]["parameterValues"][name] == root_parameters[name].default_value.string_value
        parameter = _node(pipeline, component_id).exec_properties[exec_property]
        assert isinstance(parameter, tfx.dsl.experimental.RuntimeParameter) and parameter.name == name
    assert root_parameters["data_source"].default_value.string_value == "gs://bucket/aclImdb"
    train_args = proto_utils.json_to_proto(
        root_parameters["train_args"].default_value.string_value, trainer_pb2.TrainArgs()
    )
    assert train_args == trainer_pb2.TrainArgs(splits=["train"], num_steps=500)
    eval_config = json.loads(root_parameters["eval_config"].default_value.string_value)
    accuracy = next(m for m in eval_config["metrics_specs"][0]["metrics"] if m["class_name"] == "BinaryAccuracy")
    (overall,) = accuracy["per_slice_thresholds"]
    assert overall["threshold"]["value_threshold"]["lower_bound"] == configs.EvaluationConfig().accuracy_threshold


def test_parameter_flag_sets_the_runs_value_and_dataflow_flags_reach_every_container(tmp_path):
    _, job, spec = compile_with(
        tmp_path,
        "--parameter",
        'train_args={"splits": ["train"], "num_steps": 7}',
        "--dataflow-project",
        "my-project",
        "--dataflow-region",
        "europe-west4",
    )
    assert job["runtimeConfig"]["parameterValues"]["train_args"] == '{"splits": ["train"], "num_steps": 7}'
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    for executor in executors(job).values():
        if "container" in executor:
            args = executor["container"]["args"]
            for expected in (
                "--runner=DataflowRunner",
                "--project=my-project",
                "--region=europe-west4",
                "--temp_location=gs://bucket/root/beam-temp",
                f"--sdk_container_image={IMAGE}",
            ):
                assert expected in args


def test_unknown_parameter_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        kubeflow_runner.parse_args([*BASE_FLAGS, "--parameter", "num_steps=5"])
    assert "expected NAME=VALUE with NAME one of data_source, train_args" in capsys.readouterr().err


def test_submit_without_a_reachable_endpoint_fails_clearly_after_compiling(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{s.getsockname()[1]}"
    output = tmp_path / "spec.json"
    with pytest.raises(kubeflow_submit.SubmitError) as failure:
        kubeflow_runner.main([*BASE_FLAGS, "--output-file", str(output), "--submit", "kfp", "--kfp-host", host])
    message = str(failure.value)
    assert f"Compiled {output}" in message and f"Kubeflow Pipelines at {host} failed" in message
    assert "kubectl port-forward" in message
    assert output.exists()
    package = tmp_path / "spec.kfp.yaml"  # what kfp.Client uploads: the bare PipelineSpec
    import yaml

    assert json_format.ParseDict(yaml.safe_load(package.read_text()), pipeline_spec_pb2.PipelineSpec()).root.dag.tasks


def test_the_default_encoder_and_recipe_are_the_local_defaults_on_real_data_and_tf_hub_stays_a_flag(compiled):
    from runners import offline_assets

    default = kubeflow_runner.parse_args(BASE_FLAGS)
    in_image = offline_assets.minilm_paths(f"{KubeflowConfig.image_project_root}/{kubeflow_config.IMAGE_CACHE_DIR}")
    local = offline_assets.minilm_paths(configs.CACHE_DIR)  # local_runner.py's default
    assert (default.config.training.encoder_handle, default.config.training.preprocess_handle) == (
        str(in_image.encoder),
        str(in_image.preprocess),
    )
    assert in_image.encoder.relative_to(in_image.root.parent) == local.encoder.relative_to(local.root.parent)
    assert default.recipe == configs.REAL_DATA_RECIPE
    _, job, _ = compiled
    assert "tfhub.dev" not in json.dumps(job)
    named = kubeflow_runner.parse_args([*BASE_FLAGS, "--encoder", "electra_small"])
    assert (
        named.config.training.encoder_handle.startswith("https://tfhub.dev/")
        and "electra_small" in named.config.training.encoder_handle
    )


@pytest.mark.parametrize("target", ["kfp", "vertex"])
def test_compiling_for_a_cluster_without_an_image_it_can_pull_refuses_in_one_line(target, capsys):
    flags = [f for f in BASE_FLAGS if f not in ("--image", IMAGE)]
    for image_flags in ([], ["--image", "imdb-bert-tfx:test"]):
        with pytest.raises(SystemExit) as exit_:
            kubeflow_runner.parse_args([*flags, *image_flags, "--target", target])
        assert exit_.value.code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert "names none" in line and f"make image push IMAGE={images.IMAGE_EXAMPLE})" in line
        assert "--image" in line
    # The refusal's example is itself an image a cluster can pull.
    example = ["--image", images.IMAGE_EXAMPLE, "--target", target]
    assert kubeflow_runner.parse_args([*flags, *example]).kubeflow.image == images.IMAGE_EXAMPLE
    local = ["--target", "kfp-local", "--pipeline-root", "/r", "--data", "/d", "--serving-model-dir", "/s"]
    assert kubeflow_runner.parse_args([*flags, *local]).kubeflow.image == KubeflowConfig.image
    with pytest.raises(SystemExit):  # kfp.local pulls nothing, but still runs a reference
        kubeflow_runner.parse_args([*flags, *local, "--image", "imdb-bert-tfx:TAG"])
    assert "--image imdb-bert-tfx:TAG: `TAG` is a placeholder from the README" in capsys.readouterr().err


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "image, parts",
    [
        ("registry.example:5000/team/imdb-bert-tfx:1.0", ("registry.example:5000", "team/imdb-bert-tfx", "1.0", "")),
        (f"us-docker.pkg.dev/p/r/imdb-bert-tfx@{DIGEST}", ("us-docker.pkg.dev", "p/r/imdb-bert-tfx", "", DIGEST)),
        (f"gcr.io/p/imdb-bert-tfx:1.0@{DIGEST}", ("gcr.io", "p/imdb-bert-tfx", "1.0", DIGEST)),
        ("localhost:5000/x:1", ("localhost:5000", "x", "1", "")),
        ("user/name:tag", ("", "user/name", "tag", "")),  # Docker Hub: no '.', ':' or capital in `user`
        ("10.0.0.1:5000/a__b/c--d.e_f:V1.2-rc_3", ("10.0.0.1:5000", "a__b/c--d.e_f", "V1.2-rc_3", "")),
        ("[::1]:5000/x", ("[::1]:5000", "x", "", "")),
        ("registry.example/x:" + "v" * 128, ("registry.example", "x", "v" * 128, "")),
        (images.IMAGE_EXAMPLE, ("us-docker.pkg.dev", "my-project/my-repo/imdb-bert-tfx", "1.0", "")),
    ],
)
def test_image_references_of_the_grammar_are_accepted_and_read_as_docker_reads_them(image, parts):
    assert kubeflow_runner.parse_args([*BASE_FLAGS, "--image", image]).kubeflow.image == image
    reference = images.image_reference(image)
    assert (reference.registry, reference.path, reference.tag, reference.digest) == parts


@pytest.mark.parametrize(
    "image, message",
    [
        ("registry.example/Team/imdb-bert-tfx:1", "the repository path 'Team/imdb-bert-tfx' must be lower case"),
        # The forms docs/kubeflow.md (and README.md) and the usage write.
        ("REGISTRY/imdb-bert-tfx:TAG", "`REGISTRY`, `TAG` are placeholders from the README; put your registry's"),
        (
            "REGION-docker.pkg.dev/PROJECT/REPOSITORY/imdb-bert-tfx:TAG",
            "`REGION`, `PROJECT`, `REPOSITORY`, `TAG` are placeholders from the README",
        ),
        ("registry.example/imdb-bert-tfx:", "the tag '' must be 1 to 128"),
        ("registry.example/imdb-bert-tfx:" + "v" * 129, "the tag 'vvv"),
        ("registry.example/imdb-bert-tfx:-1", "the tag '-1'"),
        ("registry.example/imdb-bert-tfx@" + DIGEST[:-1], f"the digest '{DIGEST[:-1]}' must be sha256: and 64"),
        ("registry.example/imdb-bert-tfx@" + DIGEST.upper().replace("SHA", "sha"), "lower-case hex digits"),
        ("registry.example/imdb-bert-tfx@md5:" + "0" * 32, "the digest 'md5:"),
        ("registry.example/a--/b:1", "the repository path 'a--/b' must be parts of lower-case letters"),
        ("registry-.example/imdb-bert-tfx:1", "the registry 'registry-.example' is not a host name"),
    ],
)
def test_images_outside_the_reference_grammar_or_with_placeholders_are_refused_in_one_line(image, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        kubeflow_runner.parse_args([*BASE_FLAGS, "--image", image])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"error: --image {image}: " in line and message in line
    assert line.endswith(f"e.g. {images.IMAGE_EXAMPLE} (see --help)")


def test_a_bad_image_ends_the_command_in_one_line_before_kubernetes_or_tensorflow_load():
    run_then_list_loaded = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_path('kubeflow_runner.py', run_name='__main__')\n"
        "finally:\n"
        "    print(sorted({'kubernetes', 'kfp', 'tensorflow', 'tfx'} & set(sys.modules)))\n"
    )
    image = "REGISTRY/imdb-bert-tfx:TAG"
    result = subprocess.run(
        [sys.executable, "-c", run_then_list_loaded, *BASE_FLAGS, "--image", image],
        cwd=configs.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"kubeflow_runner.py: error: --image {image}: `REGISTRY`, `TAG` are placeholders")
    assert result.stdout.strip() == "[]"


def test_the_gpu_image_is_the_images_repository_with_the_suffix_after_its_tag():
    for image, gpu_image in (
        ("registry.example/x:1", "registry.example/x:1-gpu"),
        ("localhost:5000/x", "localhost:5000/x:latest-gpu"),
        (f"registry.example/x:1@{DIGEST}", "registry.example/x:1-gpu"),  # the digest pins the CPU image only
    ):
        assert kubeflow_runner.parse_args([*BASE_FLAGS, "--image", image]).kubeflow.trainer_image() == gpu_image


@pytest.mark.parametrize("flag", ["--pipeline-root", "--serving-model-dir"])
@pytest.mark.parametrize("root", ["gs://bucket", "gs://bucket/", "gs://bucket//"])
def test_a_buckets_root_is_refused_where_the_pods_write_in_one_line(flag, root, capsys):
    with pytest.raises(SystemExit) as exit_:
        kubeflow_runner.parse_args([*BASE_FLAGS, flag, root])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"error: {flag} {root}: a bucket's root" in line and "storage.buckets.get" in line and "(403)" in line
    assert "use a folder in it, e.g. gs://bucket/imdb-bert-tfx" in line


def test_vertex_submission_needs_a_project(capsys):
    with pytest.raises(SystemExit):
        kubeflow_runner.parse_args([*BASE_FLAGS, "--submit", "vertex"])
    assert "--submit vertex needs --vertex-project" in capsys.readouterr().err


def test_a_malformed_proto_parameter_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match="runtime parameter 'train_args': not a valid TrainArgs in JSON"):
        compile_with(tmp_path, "--parameter", 'train_args={"num_stepz": 5}')


# What open-source KFP's Argo compiler turns into a workflow (backend/src/v2/compiler/argocompiler: container
# and importer executors; `resolver executors not implemented`), and all kfp.local runs.
OSS_KFP_EXECUTORS = {"container", "importer"}


def test_the_kfp_target_spec_has_only_executors_open_source_kfp_runs(tmp_path):
    _, job, _ = compile_with(tmp_path, "--target", "kfp")
    kinds = {name: set(executor) for name, executor in executors(job).items()}
    assert all(kind <= OSS_KFP_EXECUTORS and len(kind) == 1 for kind in kinds.values()), kinds
    assert "LatestServedModel_executor" in kinds  # the baseline is a task, not a resolver


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pipeline-root", "minio://mlpipeline/v2"], "--pipeline-root minio://mlpipeline/v2: the pipeline's pods"),
        (["--serving-model-dir", "s3://bucket/serving"], "s3:// needs tensorflow-io's plugin"),
        (["--data", "/local/aclImdb"], "--data /local/aclImdb: the pipeline's pods open it"),
        (["--target", "kfp-local"], "--pipeline-root gs://bucket/root: --target kfp-local mounts absolute local paths"),
        (["--target", "vertex", "--submit", "kfp"], "--submit kfp runs the spec on kfp, not --target vertex"),
    ],
)
def test_paths_the_targets_pods_cannot_open_are_refused_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        kubeflow_runner.parse_args([*BASE_FLAGS, *flags])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_cluster_filesystems_are_the_ones_this_tensorflow_opens():
    import tensorflow as tf

    schemes = {scheme.removesuffix("://") for target in ("kfp", "vertex") for scheme in kubeflow_config.TARGETS[target]}
    assert schemes <= set(tf.io.gfile.get_registered_schemes())
    assert "s3" not in tf.io.gfile.get_registered_schemes()  # kubeflow_config.FILESYSTEMS_NOTE says why


# What kfp.local hands a task as an upstream output's type, and what the open-source KFP driver does (an
# empty schema: kubeflow/pipelines backend/src/v2/metadata/client.go, GetOutputArtifactsByExecutionId).
@pytest.mark.parametrize(
    "passed_type", [{"schemaTitle": "system.Artifact"}, {"instanceSchema": ""}], ids=["kfp.local", "open-source driver"]
)
def test_the_entrypoint_types_input_artifacts_by_the_compiled_inputs_spec(compiled, passed_type):
    from runners import kfp_entrypoint

    _, job, _ = compiled
    args = executors(job)["StatisticsGen_executor"]["container"]["args"]
    inputs_spec = args[args.index(kfp_entrypoint.INPUTS_SPEC_FLAG) + 1]
    invocation = json.dumps(
        {
            "inputs": {
                "artifacts": {"examples": {"artifacts": [{"name": "a1", "uri": "/root/examples", "type": passed_type}]}}
            }
        }
    )
    argv = [
        "--executor_class_path",
        "x.Executor",
        kfp_entrypoint.INVOCATION_FLAG,
        invocation,
        kfp_entrypoint.INPUTS_SPEC_FLAG,
        inputs_spec,
        "--runner=DirectRunner",
    ]
    conformed = kfp_entrypoint.conformed_argv(argv)
    artifact = json.loads(conformed[3])["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert "title: tfx.Examples" in artifact["type"]["instanceSchema"] and artifact["uri"] == "/root/examples"
    assert conformed[:3] + conformed[4:] == argv[:3] + argv[4:]
    assert kfp_entrypoint.conformed_argv(argv[:4]) == argv[:4]  # no inputs spec: unchanged


def entrypoint_argv(job, executor: str, invocation: dict) -> list[str]:
    """The compiled task's arguments with `invocation` for `{{$}}`, as the launcher substitutes it."""
    args = executors(job)[executor]["container"]["args"]
    return [json.dumps(invocation) if arg == "{{$}}" else arg for arg in args]


def test_the_entrypoint_shows_tfx_only_the_declared_outputs_typed_and_drops_its_own_flag(compiled):
    from runners import kfp_entrypoint

    _, job, _ = compiled
    logs = {"uri": "gs://b/r/t/u/executor-logs", "type": {"schemaTitle": "system.Artifact"}}
    invocation = {
        "outputs": {
            "artifacts": {
                "statistics": {
                    "artifacts": [{"uri": "gs://b/r/t/u/statistics", "type": {"schemaTitle": "system.Artifact"}}]
                },
                "executor-logs": {"artifacts": [logs]},
            },
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        }
    }
    argv = entrypoint_argv(job, "StatisticsGen_executor", invocation)
    assert kfp_entrypoint.OUTPUTS_SPEC_FLAG in argv
    conformed = kfp_entrypoint.conformed_argv(argv)
    assert kfp_entrypoint.OUTPUTS_SPEC_FLAG not in conformed and len(conformed) == len(argv) - 2
    outputs = json.loads(conformed[conformed.index(kfp_entrypoint.INVOCATION_FLAG) + 1])["outputs"]["artifacts"]
    assert set(outputs) == {"statistics"}  # executor-logs: the launcher writes and records it itself
    assert outputs["statistics"]["artifacts"][0]["type"]["instanceSchema"].startswith("title: tfx.ExampleStatistics\n")


def test_wrapped_metadata_reaches_tfx_as_its_producer_wrote_it(compiled):
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    from components.validation import anomalies_gate
    from runners import kfp_entrypoint

    _, job, _ = compiled
    # As the KFP driver hands back what the launcher recorded (converter.go): lists and objects wrapped,
    # bools as numbers; a value passed on twice is wrapped twice.
    metadata = {
        "blessed": {"struct": {"train": 1, "eval": 1}},
        "skipped_pairs": {"struct": {"list": ["a_b"]}},
        "split_names": '["train", "eval"]',
        "display_name": "anomalies",
    }
    invocation = {
        "inputs": {
            "artifacts": {
                "anomalies": {
                    "artifacts": [
                        {"name": "7", "uri": "/nowhere", "type": {"instanceSchema": ""}, "metadata": metadata}
                    ]
                }
            }
        }
    }
    conformed = kfp_entrypoint.conformed_argv(entrypoint_argv(job, "AnomaliesGate_executor", invocation))
    executor_input = json.loads(conformed[conformed.index(kfp_entrypoint.INVOCATION_FLAG) + 1])
    parsed = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(
        json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput()).inputs.artifacts, {}
    )
    (anomalies,) = parsed["anomalies"]
    assert anomalies.get_json_value_custom_property("blessed") == {"train": 1, "eval": 1}
    assert anomalies.get_json_value_custom_property("skipped_pairs") == ["a_b"]
    assert anomalies_gate.describe_anomalies(anomalies) == []  # blessed splits: no anomaly file is read


def test_the_spec_names_its_pipeline_root_and_compiling_writes_the_uis_yaml(tmp_path):
    import yaml

    _, job, _ = compile_with(tmp_path)
    assert job["pipelineSpec"]["defaultPipelineRoot"] == "gs://bucket/root"
    package = yaml.safe_load((tmp_path / "spec.kfp.yaml").read_text())
    assert package == job["pipelineSpec"]


def test_every_task_requests_cpu_and_memory_and_the_trainer_the_most(compiled):
    from config.task_resources import TaskResources

    _, job, _ = compiled
    requests = {
        name.removesuffix("_executor"): TaskResources(
            e["container"]["resources"]["resourceCpuRequest"], e["container"]["resources"]["resourceMemoryRequest"]
        )
        for name, e in executors(job).items()
    }
    assert set(requests) == {n.removesuffix("_executor") for n in executors(job)}
    trainer = requests.pop("Trainer")
    assert all(trainer.cpu_cores > r.cpu_cores and trainer.memory_gb > r.memory_gb for r in requests.values())
    assert not any("accelerator" in e["container"]["resources"] for e in executors(job).values())
    assert {e["container"]["image"] for e in executors(job).values()} == {IMAGE}


def test_resource_and_gpu_flags_reach_the_tasks_pods(tmp_path):
    _, job, _ = compile_with(
        tmp_path, "--task-resources", "Evaluator=3,10Gi", "--task-resources", "default=500m,1Gi", "--trainer-gpus", "2"
    )
    resources = {n: e["container"]["resources"] for n, e in executors(job).items()}
    assert resources["Evaluator_executor"] == {"resourceCpuRequest": "3", "resourceMemoryRequest": "10Gi"}
    assert resources["Pusher_executor"] == {"resourceCpuRequest": "500m", "resourceMemoryRequest": "1Gi"}
    # The driver puts accelerator.resource_type, verbatim, into the pod's limits (driver.go initPodSpecPatch).
    assert resources["Trainer_executor"]["accelerator"] == {"resourceType": "nvidia.com/gpu", "resourceCount": "2"}
    assert executors(job)["Trainer_executor"]["container"]["image"] == IMAGE + "-gpu"
    assert {e["container"]["image"] for n, e in executors(job).items() if n != "Trainer_executor"} == {IMAGE}
    _, vertex, _ = compile_with(tmp_path, "--target", "vertex", "--trainer-gpus", "1", "--gpu-image", "r/gpu:2")
    trainer = executors(vertex)["Trainer_executor"]["container"]
    assert trainer["resources"]["accelerator"] == {"type": "NVIDIA_TESLA_T4", "count": "1"}
    assert trainer["resources"]["cpuLimit"] == 4 and trainer["image"] == "r/gpu:2"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--task-resources", "Trainer=8"], "expected ID=CPU,MEMORY"),
        (["--task-resources", "Trainer=lots,8Gi"], "CPU 'lots'"),
        (["--task-resources", "Trainer=8,8 gigs"], "memory '8 gigs'"),
        (["--trainer-gpus", "1", "--gpu-type", "NVIDIA_TESLA_T4"], "the Kubernetes resource name"),
        (["--trainer-gpus", "-1"], "--trainer-gpus -1"),
        (["--gpu-image", "REGISTRY/imdb-bert-tfx:TAG-gpu"], "--gpu-image REGISTRY/imdb-bert-tfx:TAG-gpu: `REGISTRY`"),
    ],
)
def test_resource_flags_a_cluster_would_refuse_are_refused_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        kubeflow_runner.parse_args([*BASE_FLAGS, *flags])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_task_resources_flag_for_no_such_task_names_the_tasks(tmp_path):
    from config.task_resources import ResourceError

    with pytest.raises(ResourceError, match="Traner: no such task; the tasks are .*Trainer"):
        compile_with(tmp_path, "--task-resources", "Traner=8,32Gi")
    _, job, _ = compile_with(tmp_path, "--test-split", "")  # the defaults name TestSetEvaluator, not there now
    assert "TestSetEvaluator_executor" not in executors(job) and "Trainer_executor" in executors(job)


def test_spans_warm_start_and_the_drift_stop_compile_into_the_spec(tmp_path):
    pipeline, job, spec = compile_with(
        tmp_path, "--data", "gs://bucket/reviews/span-{SPAN}", "--spans", "2", "--warm-start", "--stop-on-drift"
    )
    tasks = spec.root.dag.tasks
    range_config = json.loads(
        tasks["ImdbExampleGen"].inputs.parameters["range_config"].runtime_value.constant.string_value
    )
    assert range_config == {"rolling_range": {"num_spans": 2}}
    assert job["runtimeConfig"]["parameterValues"]["data_source"] == "gs://bucket/reviews/span-{SPAN}"
    base_model = tasks["Trainer"].inputs.artifacts["base_model"].task_output_artifact
    assert (base_model.producer_task, base_model.output_artifact_key) == ("LatestServedModel", "model")
    validator = tasks["DistributionValidator"].inputs.artifacts
    assert {validator[k].task_output_artifact.producer_task for k in ("statistics", "baseline_statistics")} == {
        "StatisticsGen"
    }
    assert "DriftGate" in tasks["Trainer"].dependent_tasks
    custom_config = json.loads(tasks["Trainer"].inputs.parameters["custom_config"].runtime_value.constant.string_value)
    assert custom_config["warm_start"] is True
    drift_config = json.loads(
        tasks["DistributionValidator"]
        .inputs.parameters["distribution_validator_config"]
        .runtime_value.constant.string_value
    )
    assert drift_config == json_format.MessageToDict(drift.load_config(configs.DRIFT_CONFIG_FILE))


def test_without_the_flags_the_trainer_starts_from_the_encoder_and_nothing_stops_on_drift(compiled):
    _, _, spec = compiled
    tasks = spec.root.dag.tasks
    assert "base_model" not in tasks["Trainer"].inputs.artifacts
    assert "DriftGate" not in tasks and "DistributionValidator" in tasks


def test_the_default_requests_fit_an_8_vcpu_32gb_node_that_also_holds_gkes_and_kubeflows_own_pods():
    from config.task_resources import GIB, TaskResources, quantity
    from runners import kubeflow_resources as resources

    node = TaskResources("8", "32Gi")
    room = resources.node_room(node)  # e2-standard-8's allocatable on GKE
    assert abs(quantity(room.cpu) - quantity("7910m")) < quantity("1m")
    assert abs(float(quantity(room.memory) / GIB) - 28.34) < 0.01
    defaults = {task: TaskResources(*value) for task, value in kubeflow_config.TASK_RESOURCES.items()}
    others = [
        TaskResources(*kubeflow_config.SYSTEM_PODS),
        TaskResources(*kubeflow_config.KUBEFLOW_PODS),
    ]
    shared = resources.node_room(node, *others)
    assert abs(quantity(shared.cpu) - quantity("4910m")) < quantity("1m")
    assert kubeflow_config.NODE_SHAPE == ("8", "32Gi")
    assert resources.misfits(defaults, shared) == []
    # The node reports a little less memory than the machine has (the kernel's own): a gigabyte to spare.
    assert resources.misfits(defaults, resources.node_room(node, *others, TaskResources("0", "1Gi"))) == []
    # Both evaluators (they run at the same time) fit one such node together.
    evaluators = [defaults["Evaluator"], defaults["TestSetEvaluator"]]
    assert (
        resources.misfits(
            {
                "both": TaskResources(
                    str(sum(e.cpu_cores for e in evaluators)),
                    f"{sum(quantity(e.memory) for e in evaluators)}",
                )
            },
            shared,
        )
        == []
    )
    assert resources.misfits({"Trainer": TaskResources("8", "32Gi")}, room) == ["Trainer requests 8 CPU and 32.0Gi"]


def test_compiling_warns_in_one_line_when_a_request_cannot_fit_the_named_node_shape(tmp_path, capsys):
    flags = [*BASE_FLAGS, "--output-file", str(tmp_path / "spec.json")]
    kubeflow_runner.main(flags)
    assert "warning" not in capsys.readouterr().err
    kubeflow_runner.main([*flags, "--node-shape", "4,16Gi"])
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.startswith("kubeflow_runner.py: warning: ") and "; Trainer requests 4 CPU and 10.0Gi; " in warning
    assert "more than a node of 4,16Gi can give one pod" in warning and "--task-resources" in warning
    assert "could stay Pending (FailedScheduling)" in warning
    kubeflow_runner.main([*flags, "--node-shape", "16,64Gi", "--task-resources", "Trainer=12,48Gi"])
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        kubeflow_runner.parse_args([*BASE_FLAGS, "--node-shape", "8"])
    assert "--node-shape '8': expected CPU,MEMORY, e.g. 8,32Gi" in capsys.readouterr().err
