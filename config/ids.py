"""Each component's id, declared once (pipeline/pipeline.py gives it): its node in ML Metadata, its folder under the
pipeline root, its Kubeflow task. No TFX here, so flags and configs can name them."""

EXAMPLE_GEN, STATISTICS_GEN, SCHEMA_GEN = "ImdbExampleGen", "StatisticsGen", "ImportSchemaGen"
EXAMPLE_VALIDATOR, ANOMALIES_GATE = "ExampleValidator", "AnomaliesGate"
DISTRIBUTION_VALIDATOR, DRIFT_GATE = "DistributionValidator", "DriftGate"
SERVED_MODEL, TUNER, TRAINER = "LatestServedModel", "Tuner", "Trainer"
EVALUATOR, TEST_SET_EVALUATOR, PUSHER, REPORT = "Evaluator", "TestSetEvaluator", "Pusher", "EvaluationReport"
