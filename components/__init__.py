import modules  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)


def __getattr__(name: str):
    # The report's artifact type name is `components.ModelEvaluationReport` (KFP v2 allows one dot), and
    # the Kubeflow V2 container entrypoint imports the class by that name; imported lazily to keep
    # `import components` light.
    if name == "ModelEvaluationReport":
        from components.evaluation_report import ModelEvaluationReport
        return ModelEvaluationReport
    raise AttributeError(f"module 'components' has no attribute {name!r}")
