"""kubeflow_runner.py compiles the same pipeline into a KFP v2 pipeline spec."""

import json

from kfp.pipeline_spec import pipeline_spec_pb2
from google.protobuf import json_format

import kubeflow_runner


def test_compiles_all_components_with_the_image(tmp_path):
    spec_path = kubeflow_runner.main([
        "--pipeline-root", "gs://bucket/root", "--data", "gs://bucket/aclImdb",
        "--serving-model-dir", "gs://bucket/serving", "--image", "registry.example/imdb:1",
        "--output-file", str(tmp_path / "spec.json"),
    ])
    job = json.loads(open(spec_path).read())
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True)
    tasks = set(spec.root.dag.tasks)
    assert {"ImdbExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "AnomaliesGate", "Trainer",
            "latest_blessed_model_resolver-model-resolver", "latest_blessed_model_resolver-model-blessing-resolver",
            "Evaluator", "Pusher", "TestSetEvaluator", "EvaluationReport"} <= tasks
    assert "AnomaliesGate" in spec.root.dag.tasks["Trainer"].dependent_tasks
    deployment = job["pipelineSpec"]["deploymentSpec"]["executors"]
    container_images = {e["container"]["image"] for e in deployment.values() if "container" in e}
    assert container_images == {"registry.example/imdb:1"}
    assert set(spec.root.dag.tasks["Pusher"].dependent_tasks) == {"Evaluator", "Trainer"}
    assert set(spec.root.dag.tasks["EvaluationReport"].dependent_tasks) == {"Evaluator", "Pusher", "TestSetEvaluator"}
