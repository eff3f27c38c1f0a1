import modules  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)


def __getattr__(name: str):
    # KFP v2 type names have one dot, and the Kubeflow V2 container entrypoint imports the report's artifact class
    # by its type name, `components.ModelEvaluationReport`: here, lazily, to keep `import components` light.
    if name == "ModelEvaluationReport":
        from components.evaluation.evaluation_report import ModelEvaluationReport

        return ModelEvaluationReport
    raise AttributeError(f"module 'components' has no attribute {name!r}")
