"""Every setting of imdb-bert-tfx, in one home: the bottom layer of the project, which imports nothing of it.

A setting is a dataclass field declared once with `settings.setting(default, help, bounds, ...)`: its type (the
annotation), default, help, bounds (`settings.integer`, `fraction`, `one_of`, `POSITIVE`, ...; out of them a
`ConfigError` naming the flag), console label, Tuner search space, recipe and --help group. The runners make its
flag from that declaration (`runners/cli.py`, `add_flags`) and read the flag back into the field (`flag_values`),
so a new setting is one field here and its use.

- `settings`: the machinery (`setting`, the bounds, `check_settings`, `flag_name`, `ConfigError`).
- `training`: the Trainer's `TrainingConfig` (its custom_config) and the Tuner's `TuningConfig`.
- `pipeline`: the paths, `DataConfig`, `EvaluationConfig`, `PipelineConfig` and the training recipes.
- `examples`: the names of the data the settings refer to (features, splits, TFX's span spec).
- `ids`: each component's id (--task-resources and the runtime parameters name them).
- `kubeflow`: `KubeflowConfig`, what kubeflow_runner.py compiles for, with its deployment's knobs.
- `task_resources`: a task's CPU and memory (Kubernetes quantities) and GPUs, as the Kubeflow flags give them.
- `images`: the component image's reference, as Docker parses it, and its checks.
- `server`: `ServerConfig`, the model server's settings.

No TensorFlow, TFX or Beam here: the runners check every value before any work.
"""
