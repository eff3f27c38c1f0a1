"""The gate's TFMA config, the one rule for "an empty serving directory or served-model artifact is no served
model", and the report's rendering, without running a pipeline (tests/e2e/test_model_validation.py runs them end to
end)."""

import pytest
from tfx.types import standard_artifacts, standard_component_specs

from components.evaluation import report_rendering, tfma_config
from components.serving import served_baseline
from modules import serving_versions


def test_the_eval_config_gates_the_overall_accuracy_and_slices_by_each_feature():
    config = tfma_config.create_eval_config(0.7, 0.1, ("rating", "length_bucket"))
    ((name, threshold),) = tfma_config.configured_thresholds(config)
    assert name == tfma_config.ACCURACY_METRIC and tfma_config.metric_name(name) == "binary_accuracy"
    assert threshold.value_threshold.lower_bound.value == pytest.approx(0.7)
    assert threshold.change_threshold.absolute.value == pytest.approx(-0.1)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["rating"], ["length_bucket"]]
    reported = [m.class_name for m in config.metrics_specs[0].metrics]
    assert reported == [*tfma_config.REPORTED_METRICS, *tfma_config.REPORTED_PLOTS]
    assert tfma_config.configured_thresholds(tfma_config.create_eval_config(None, None, ())) == []
    with pytest.raises(ValueError, match="max_accuracy_drop is required"):
        tfma_config.create_eval_config(0.7, None, ())


def test_an_empty_serving_directory_or_served_model_artifact_is_no_served_model(tmp_path):
    # One rule, `serving_versions.served_model`, for predict, the Evaluator's baseline and the warm start.
    serving = tmp_path / "serving"
    assert serving_versions.served_model(None) is None and serving_versions.served_model(str(serving)) is None
    serving.mkdir()
    assert serving_versions.served_model(str(serving)) is None
    for name in ("9", "17", "notes"):
        (serving / name).mkdir()
    assert serving_versions.served_model(str(serving)) == str(serving / "17")  # the highest version is served
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    model.set_string_custom_property(served_baseline.SERVED_FROM_PROPERTY, "/serving")
    key = standard_component_specs.BASELINE_MODEL_KEY
    assert served_baseline.baseline_model_uri(model) is None and served_baseline.baseline_model_uri([]) is None
    assert served_baseline.describe_served_model(model) == "none: nothing is served yet (first run)"
    assert served_baseline.without_empty_baseline({key: [model]}, key) == {key: []}
    (tmp_path / "model" / "Format-Serving").mkdir(parents=True)
    assert served_baseline.baseline_model_uri([model]) is None  # an empty folder: nothing was served
    (tmp_path / "model" / "Format-Serving" / "saved_model.pb").write_bytes(b"")
    model.set_int_custom_property(served_baseline.SERVED_VERSION_PROPERTY, 17)
    assert served_baseline.baseline_model_uri([model]) == str(tmp_path / "model" / "Format-Serving")
    assert served_baseline.describe_served_model(model) == "served version 17 from /serving"
    assert served_baseline.without_empty_baseline({key: [model]}, key) == {key: [model]}


def test_the_report_renders_the_same_tables_as_markdown_and_html():
    section = report_rendering.Section(
        "Verdict",
        paragraphs=["Blessed: no, because: the model's accuracy."],
        tables=[("Thresholds", ["metric", "measured"], [["accuracy", "0.5000"]])],
    )
    markdown = report_rendering.render_markdown("Model evaluation", [section])
    assert "| metric | measured |\n| --- | --- |\n| accuracy | 0.5000 |" in markdown
    page = report_rendering.render_html("Model evaluation", [section])
    assert "<p>Blessed: no, because: the model&#39;s accuracy.</p>" in page  # escaped
    assert "<tr><td>accuracy</td><td>0.5000</td></tr>" in page
    assert report_rendering.format_metric({"auc": 0.0, "mean_label": 1.0}, "auc") == report_rendering.ONE_CLASS
    assert report_rendering.format_metric({"example_count": 60.0}, "example_count") == "60"
    assert report_rendering.format_value(float("nan")) == "n/a" and report_rendering.format_value(None) == "–"
