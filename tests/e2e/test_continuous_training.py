"""The weekly loop, on three synthetic spans, with the real LocalDagRunner and ML Metadata:

1. span 1, --warm-start with nothing served yet -> trained from the encoder, blessed and pushed (no previous
   span: drift not compared);
2. span 2, same distribution, --warm-start -> trained from span 1's served model (the lineage in ML Metadata
   and the model's own record say so), compared with it on span 2's eval data, pushed when not worse;
3. span 3, 90% positive reviews, --stop-on-drift -> the label drift is reported and the run stops before
   training: nothing is trained or pushed.

Then a rollback makes span 1's version the served one again.
"""

import contextlib
import io
import re
import time
from pathlib import Path

import ml_metadata as mlmd
import pytest
from ml_metadata.proto import metadata_store_pb2

import local_runner
from components.ingestion.synthetic_corpus import SyntheticCorpusSpec, write_synthetic_corpus
from components.serving import atomic_pusher, served_baseline
from components.training.trainer_component import PROVENANCE_FILE
from config import pipeline as configs
from modules import serving_versions
from tests.support.serving_checks import snapshot

pytestmark = pytest.mark.slow

REVIEWS_PER_LABEL = {"train": 100, "test": 20}
GOOD_TRAINING = ("--epochs", "2", "--train-steps", "120", "--learning-rate", "1e-3")
WARM_START = ("--warm-start", "--warm-start-learning-rate", "1e-4", "--warm-start-epochs", "1", "--train-steps", "20")


class Story:
    def __init__(self, root: Path, bert):
        self.reviews, self.output, self.bert = root / "reviews", root / "output", bert
        self.printed: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self.wall_seconds: dict[int, float] = {}
        self.serving = Path(configs.serving_model_dir(str(self.output)))

    def drop(self, span: int, positive_share: float) -> None:
        write_synthetic_corpus(
            self.reviews / f"span-{span}",
            SyntheticCorpusSpec(reviews_per_label=REVIEWS_PER_LABEL, positive_share=positive_share, seed=span),
        )

    def run(self, span: int, *flags: str) -> str:
        printed, errors = io.StringIO(), io.StringIO()
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
                local_runner.main(
                    [
                        "--output-dir",
                        str(self.output),
                        "--data",
                        str(self.reviews / "span-{SPAN}"),
                        "--preprocess-handle",
                        str(self.bert.preprocess),
                        "--encoder-handle",
                        str(self.bert.encoder),
                        "--seq-length",
                        "64",
                        "--accuracy-threshold",
                        "0.7",
                        "--max-accuracy-drop",
                        "0.1",
                        *flags,
                    ]
                )
        finally:
            self.wall_seconds[span] = round(time.monotonic() - started)
            self.printed[span], self.errors[span] = printed.getvalue(), errors.getvalue()
        return self.printed[span]

    def report(self, span: int) -> str:
        html_path = re.search(r"^Evaluation report: (.+)$", self.printed[span], re.MULTILINE)[1]
        return (Path(html_path).parent / "report.md").read_text()

    def store(self) -> mlmd.MetadataStore:
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = configs.metadata_path(str(self.output))
        return mlmd.MetadataStore(config)


def executions(store: mlmd.MetadataStore, type_suffix: str) -> list[metadata_store_pb2.Execution]:
    types = {t.id: t.name for t in store.get_execution_types()}
    return sorted((e for e in store.get_executions() if types[e.type_id].endswith(type_suffix)), key=lambda e: e.id)


def inputs_of(
    store: mlmd.MetadataStore, execution: metadata_store_pb2.Execution
) -> dict[str, metadata_store_pb2.Artifact]:
    """Input artifacts of an execution by input key (one per key here)."""
    events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == metadata_store_pb2.Event.INPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    return {e.path.steps[0].key: artifacts[e.artifact_id] for e in events}


def span_of(examples: metadata_store_pb2.Artifact) -> int:
    return examples.properties["span"].int_value


@pytest.fixture(scope="module")
def story(tmp_path_factory, tiny_bert) -> Story:
    story = Story(tmp_path_factory.mktemp("weekly"), tiny_bert)
    story.drop(1, 0.5)
    story.run(1, *GOOD_TRAINING, "--warm-start")  # nothing is served yet: trains from the encoder
    story.first_version = serving_versions.versions(str(story.serving))[-1]
    story.drop(2, 0.5)
    story.run(2, *WARM_START)
    story.drop(3, 0.9)
    story.serving_before_span_3 = snapshot(story.serving)
    with pytest.raises(SystemExit) as stopped:
        story.run(3, *WARM_START, "--stop-on-drift")
    assert stopped.value.code == 4  # runners/failures.py: the data failed validation
    (story.stop_message,) = [line for line in story.errors[3].splitlines() if line.startswith("local_runner.py:")]
    assert story.stop_message.startswith("local_runner.py: error in DriftGate: Drift beyond its bounds")
    print("span 3 stopped:", story.stop_message)
    print("wall seconds per span's run:", story.wall_seconds)
    return story


def test_span_1_is_trained_from_the_encoder_blessed_and_pushed_without_a_drift_comparison(story):
    report = story.report(1)
    assert "Blessed: yes" in report and "none: nothing is served yet (first run)" in report
    assert "not compared: no previous span (first run)" in report
    assert re.search(
        r"\| candidate \| spans 1 of \S+span-\{SPAN\} \(span 1 v\S*: \d+ files, sha256 of names, "
        r"sizes and times [0-9a-f]{64}\); trained from the pretrained encoder \|",
        report,
    ), report


def test_span_2_warm_starts_from_span_1s_model_and_is_compared_with_it_on_span_2s_eval_data(story):
    store = story.store()
    trainers = executions(store, "Trainer")
    assert len(trainers) == 2
    trained = inputs_of(store, trainers[1])
    assert span_of(trained["examples"]) == 2
    base = trained["base_model"]  # LatestServedModel's copy of what was served: span 1's model
    assert base.custom_properties[served_baseline.SERVED_VERSION_PROPERTY].int_value == story.first_version
    evaluators = executions(store, "gating_evaluator.GatingEvaluator")
    judged = inputs_of(store, evaluators[-1])
    assert span_of(judged["examples"]) == 2 and judged["baseline_model"].id == base.id
    # The model records it too, and the report says it.
    versions = serving_versions.versions(str(story.serving))
    assert len(versions) == 2, "span 2's model is no worse on span 2's data, so it is pushed"
    record = (story.serving / str(versions[-1]) / PROVENANCE_FILE).read_text()
    assert '"spans": [\n    2\n  ]' in record and f'"served_version": {story.first_version}' in record
    report = story.report(2)
    assert re.search(
        rf"\| candidate \| spans 2 of [^|]+; warm-started from served version {story.first_version} \|", report
    ), report
    assert re.search(r"\| baseline \(served\) \| spans 1 of [^|]+; trained from the pretrained encoder \|", report)
    assert "evaluated on this run's 'eval' split, from span 2." in report
    assert "drift: this span's train split vs the previous span | label | Jensen-Shannon divergence" in report


def test_span_3s_label_drift_stops_the_run_before_training_and_nothing_is_pushed(story):
    assert "feature 'label', Jensen-Shannon divergence" in story.stop_message
    assert "above the bound 0.0500" in story.stop_message
    store = story.store()
    assert len(executions(store, "Trainer")) == 2  # no Trainer ran for span 3
    # The same statistics are both of DistributionValidator's inputs: ML Metadata may record one input event.
    validated_spans = [
        {span_of(a) for a in inputs_of(store, e).values()} for e in executions(store, "drift.DistributionValidator")
    ]
    assert validated_spans == [{1}, {2}, {3}]
    assert snapshot(story.serving) == story.serving_before_span_3


def test_a_rollback_serves_span_1s_model_again(story):
    versions = serving_versions.versions(str(story.serving))
    new_version, path = atomic_pusher.rollback(str(story.serving), story.first_version)
    assert serving_versions.versions(str(story.serving)) == versions + [int(new_version)]
    assert snapshot(Path(path)) == snapshot(story.serving / str(story.first_version))
