"""The model server: the pushed model over HTTP, with KServe's Python ModelServer (`modules.model_server`).

    make serve                                          # the served version under tfx_output (else the quick look's)
    python -m runners.serve --serving-dir DIR           # any serving directory: newly pushed versions swap in
    python -m runners.serve --model DIR                 # one SavedModel folder, as it is
    python -m runners.serve --port 8080                 # KServe's port, as in an InferenceService

Requests are TF Serving's REST API (POST /v1/models/imdb:predict, both signatures, `instances` or `inputs`), so a
TF Serving client works unchanged; KServe's V2 at /v2/models/imdb/infer; status at GET /v1/models/imdb; liveness
at /, readiness at /v2/health/ready, Prometheus metrics at /metrics. SIGTERM (or Ctrl-C) stops taking requests,
answers those in flight, and exits 0. The console shows what is served and each version swap; everything else
(KServe, uvicorn, TensorFlow) goes to the log file (--log-file).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from config.server import ServerConfig
from modules import serving_versions
from runners import cli, console
from runners.predict import NoServedModel, default_serving_directory

SERVE_LOG = os.path.join(tempfile.gettempdir(), "imdb-bert-tfx-serve.log")


class _Echo(logging.Handler):
    """The server's own decisions (versions served, swapped, refused) as console lines."""

    def __init__(self, screen: console.RunConsole):
        super().__init__(logging.INFO)
        self.screen = screen

    def emit(self, record: logging.LogRecord) -> None:
        self.screen.say(f"{time.strftime('%H:%M:%S')}  {record.getMessage()}", failure=record.levelno >= logging.ERROR)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, ServerConfig]:
    parser = cli.Parser(
        prog="python -m runners.serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--serving-dir", help="a serving directory (<dir>/<version>/); its highest version is served")
    source.add_argument("--model", help="one SavedModel folder, served as it is")
    cli.add_flags(parser, ServerConfig)
    parser.add_argument("--log-file", default=SERVE_LOG, help="where everything but the console lines goes")
    parser.add_argument("--verbose", action="store_true", help="the whole log on the console too")
    args = parser.parse_args(argv)
    config = cli.checked(parser, lambda: ServerConfig(**cli.flag_values(ServerConfig, args)))
    if args.model and serving_versions.is_local(args.model) and not serving_versions.holds_saved_model(args.model):
        parser.exit(
            2,
            f"{parser.prog}: error: --model {args.model}: no saved_model.pb there; pass a pushed version's "
            f"folder (<serving dir>/<version>) or --serving-dir\n",
        )
    return args, config


def source_of(args: argparse.Namespace, screen: console.RunConsole) -> tuple[str, bool]:
    """(what to serve, whether to follow its versions); NoServedModel if nothing is pushed."""
    if args.model:
        return args.model, False
    if args.serving_dir:
        if not serving_versions.versions(args.serving_dir):
            raise NoServedModel(
                f"{args.serving_dir}: no pushed model version (no <version>/ folder); push one (`make run`) or pass "
                f"--model DIR"
            )
        return args.serving_dir, True
    serving, quick_look = default_serving_directory()
    if quick_look:
        screen.say(f"No real model is pushed yet; serving the quick look's {serving}")
    return serving, True


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    # KServe parses sys.argv when imported (kserve/model_server.py), where --model would read as its --model_name.
    sys.argv = sys.argv[:1]
    with console.RunConsole(args.log_file, verbose=args.verbose) as screen:
        try:
            source, follow = source_of(args, screen)
        except NoServedModel as error:
            screen.say(f"error: {error}", failure=True)
            return 2
        from modules import model_server  # TensorFlow and KServe

        model_server.LOGGER.addHandler(_Echo(screen))
        model_server.LOGGER.propagate = True
        model = model_server.ReviewClassifier(source, config, follow=follow)
        try:
            model.load()
        except (serving_versions.BrokenServedModel, FileNotFoundError) as error:
            screen.say(f"error: {error}", failure=True)
            return 2
        name, port = config.model_name, config.port
        screen.say(
            f"Listening on port {port}: POST http://localhost:{port}/v1/models/{name}:predict (TF Serving's REST "
            f"API), /v2/models/{name}/infer (V2); status GET /v1/models/{name}. Ctrl-C stops. Log: {args.log_file}"
        )
        model_server.build_server(model, config).start([model])
        screen.say(f"{time.strftime('%H:%M:%S')}  Stopped: the requests in flight were answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
