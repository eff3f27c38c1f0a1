"""Runner plumbing: flags, the run lock, offline assets, the Kubeflow entrypoint, submission and runtime parameters."""
