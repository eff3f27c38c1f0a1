"""Where a training step's time goes, and what a validation pass costs, on the real corpus.

    .venv/bin/python -m bench.step_profile [--lengths 256,512] [--steps 8] [--precision auto]

On the train and eval splits of the real train archive (ImdbExampleGen's output, as `bench.time_to_accuracy`
prepares it), with the Trainer's own classifier (`build_classifier` at `--precision`, MiniLM, batch 32):
- per sequence length, a training step and a forward pass (validation's work) at full batches of that length,
  timed over `--steps` steps after a warm-up, and TensorFlow's profiler over 3 steps, its host op time summed
  by op type and grouped (attention, feed-forward, embedding, optimizer, ...); and the attention scores' einsum
  alone, both ways round (`einsum(key, query)` as Keras computes it, `einsum(query, key)` as the encoder does);
- with `--real-steps N`: training steps and forward passes on the Trainer's own length-grouped batches, the
  `--attention` and `--xla` variants taking turns on each batch;
- the input pipeline: tokenizing throughput in tf.data (reviews/s), against the step's consumption;
- the length distribution of both splits at the longest length, and what a validation pass costs when its
  batches come in the records' order (each padded to its longest review: today's eval batches) against
  length-grouped batches (sorted by length), in padded tokens and, timed, in seconds.
Prints a table per part; nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import statistics
import tempfile
import time

from bench import machine
from bench.time_to_accuracy import add_data_arguments, prepare_data, split_files

BATCH_SIZE = 32
# The parts of a step, by the op's name (first match), and the op types counted as random-number generation.
PARTS = (
    ("attention dropout", "self_attention/dropout"),
    ("attention scores and softmax", "self_attention"),
    ("feed-forward", "intermediate"),
    ("feed-forward", "output"),
    ("layer norm", "layer_norm"),
    ("embeddings", "embeddings"),
    ("optimizer (AdamW)", "adam"),
    ("classifier head", "classifier"),
)


def step_part(op_name: str) -> str:
    name = op_name.lower()
    part = next((label for label, key in PARTS if key in name), "other")
    return part + (" (backward)" if "gradient" in name and part != "optimizer (AdamW)" else "")


def op_self_seconds(trace_dir: str) -> list[tuple[str, str, float]]:
    """(op type, op name, self seconds) of every TensorFlow op in the profile, from the profiler's own
    framework op statistics (idle time left out)."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    paths = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    data, _ = _pywrap_profiler_plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, [cell["v"] for cell in row["c"]])) for row in table["rows"]]
    return [(row["type"], row["operation"], row["total_self_time"] / 1e6) for row in rows if row["type"] != "IDLE"]


def print_breakdown(title: str, ops: list[tuple[str, str, float]]) -> None:
    total = sum(seconds for _, _, seconds in ops)
    by_type, by_part = collections.Counter(), collections.Counter()
    for op_type, name, seconds in ops:
        by_type[op_type] += seconds
        by_part[step_part(name)] += seconds
    print(f"\n{title}: op self time {total:.2f} s", flush=True)
    print("  by op type: " + ", ".join(f"{t} {100 * s / total:.1f}%" for t, s in by_type.most_common(10)))
    print("  by part:    " + ", ".join(f"{p} {100 * s / total:.1f}%" for p, s in by_part.most_common(12)))


def timed(fn, steps: int) -> float:
    """The median seconds of `steps` calls of `fn`, after two."""
    fn()
    fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_scores_einsum(seq_length: int, dtype, steps: int) -> dict[str, float]:
    """Seconds of the attention scores' einsum, (batch, length, 12 heads, 32) query and key to (batch, heads,
    query, key) scores, with the key first (Keras' `MultiHeadAttention`) and the query first (`QueryFirstAttention`):
    the median of `steps` runs after two."""
    import tensorflow as tf

    query, key = (tf.cast(tf.random.normal([BATCH_SIZE, seq_length, 12, 32], seed=seed), dtype) for seed in (1, 2))
    ways = {
        "key first": tf.function(lambda: tf.einsum("aecd,abcd->acbe", key, query)),
        "query first": tf.function(lambda: tf.einsum("abcd,aecd->acbe", query, key)),
    }
    return {name: timed(lambda scores=scores: scores().numpy(), steps) for name, scores in ways.items()}


def token_lengths(files: list[str], preprocessor) -> list[int]:
    import tensorflow as tf

    from modules import trainer
    from modules.model_interface import INPUT_MASK

    dataset = (
        trainer.read_records(files)
        .batch(256)
        .map(trainer._parse_batch)
        .map(lambda text, label: tf.reduce_sum(preprocessor(text)[INPUT_MASK], axis=1))
    )
    return [int(n) for batch in dataset.as_numpy_iterator() for n in batch]


def padded_tokens(lengths: list[int], batch: int) -> int:
    return sum(max(lengths[i : i + batch]) * len(lengths[i : i + batch]) for i in range(0, len(lengths), batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--lengths", default="256,512", help="sequence lengths of the step timings ('': none)")
    parser.add_argument(
        "--input-length",
        type=int,
        default=512,
        help="sequence length of the input pipeline and validation measurements",
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--attention-dropout",
        default="encoder,0",
        help="attention dropout rates to compare; 'encoder': the encoder's own",
    )
    parser.add_argument(
        "--attention",
        default="query-first",
        help="comma-separated: query-first (the encoder's, keras_encoder.QueryFirstAttention), keras (Keras' own)",
    )
    parser.add_argument("--xla", default="off", help="comma-separated: off, on (the training step compiled by XLA)")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--no-input", action="store_true", help="skip the input pipeline and validation parts")
    parser.add_argument(
        "--real-steps",
        type=int,
        default=0,
        help="also time this many training steps and forward passes on real length-grouped batches per dropout rate",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from config import pipeline as configs
    from modules import hardware, keras_encoder, trainer
    from modules import model as model_lib
    from runners import offline_assets

    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    examples, _, _ = prepare_data(args.data, args.workdir)
    precision = hardware.resolve_precision(args.precision)
    print(f"{machine.cores_and_cpu()}; precision {precision}; MiniLM L-6/H-384; batch {BATCH_SIZE}", flush=True)
    lengths = [int(n) for n in args.lengths.split(",") if n]
    longest = args.input_length

    texts = [
        t
        for t, _ in trainer.read_records(split_files(examples.uri, "train"))
        .batch(512)
        .map(trainer._parse_batch)
        .take(1)
        .unbatch()
        .as_numpy_iterator()
    ]
    attention_dropouts = [None if rate == "encoder" else float(rate) for rate in args.attention_dropout.split(",")]
    xla_modes = [mode == "on" for mode in args.xla.split(",")]
    for seq_length in lengths:
        dtype = tf.bfloat16 if precision == hardware.MIXED_BFLOAT16 else tf.float32
        einsum = time_scores_einsum(seq_length, dtype, args.steps)
        print(
            f"seq {seq_length}: attention scores' einsum ({BATCH_SIZE} x 12 heads, {dtype.name}): "
            + ", ".join(f"{way} {1000 * seconds:.0f} ms" for way, seconds in einsum.items()),
            flush=True,
        )
    for seq_length, attention_dropout, xla in (
        (n, rate, xla) for n in lengths for rate in attention_dropouts for xla in xla_modes
    ):
        tf.keras.backend.clear_session()
        config = trainer.TrainingConfig(
            str(bert.preprocess),
            str(bert.encoder),
            seq_length=seq_length,
            truncation="head+tail",
            precision=precision,
            batch_size=BATCH_SIZE,
            attention_dropout_rate=attention_dropout,
        )
        classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
        trainer.compile_classifier(classifier, config, 1000)
        model = classifier.logit_model
        model.jit_compile = xla
        inputs = classifier.preprocessor(tf.constant(texts))
        # Full batches of exactly seq_length tokens (the longest reviews' shape).
        batch = {name: tf.tile(tensor[:1], [BATCH_SIZE, 1]) for name, tensor in inputs.items()}
        batch["input_mask"] = tf.ones_like(batch["input_mask"])
        labels = tf.ones([BATCH_SIZE, 1])
        forward = tf.function(lambda x, model=model: model(x, training=False), jit_compile=xla)
        label = (
            f"seq {seq_length}, attention dropout "
            f"{'as the encoder (0.1)' if attention_dropout is None else attention_dropout}"
            f"{', XLA' if xla else ''}"
        )
        train_step = timed(lambda: model.train_on_batch(batch, labels), args.steps)  # noqa: B023 (called at once)
        forward_step = timed(lambda: forward(batch).numpy(), args.steps)  # noqa: B023
        print(
            f"{label}: training step {train_step:.3f} s ({BATCH_SIZE / train_step:.1f} reviews/s), "
            f"forward {forward_step:.3f} s ({BATCH_SIZE / forward_step:.1f} reviews/s), "
            f"ratio {train_step / forward_step:.2f}",
            flush=True,
        )
        if not args.no_trace:
            trace_dir = tempfile.mkdtemp(prefix=f"profile-{seq_length}-")
            tf.profiler.experimental.start(trace_dir)
            for _ in range(3):
                model.train_on_batch(batch, labels)
            tf.profiler.experimental.stop()
            print_breakdown(f"{label}, 3 training steps", op_self_seconds(trace_dir))

    # What the Trainer's steps cost: real, length-grouped batches at --input-length, as `make_dataset` feeds them.
    train_files, eval_files = split_files(examples.uri, "train"), split_files(examples.uri, "eval")
    # The variants of one dropout rate (--xla, --attention) take turns batch by batch in one process, so the host's
    # changing speed (up to a quarter on these VMs) falls on all of them alike; each is shown against the first.
    variants = [(xla, kind) for xla in xla_modes for kind in args.attention.split(",")]
    for attention_dropout in attention_dropouts if args.real_steps else []:
        tf.keras.backend.clear_session()
        config = trainer.TrainingConfig(
            str(bert.preprocess),
            str(bert.encoder),
            seq_length=longest,
            truncation="head+tail",
            precision=precision,
            attention_dropout_rate=attention_dropout,
        )
        models, forwards = [], []
        for xla, attention in variants:
            classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
            trainer.compile_classifier(classifier, config, 1000)
            if attention == "keras":
                for layer in classifier.logit_model.submodules:
                    if isinstance(layer, keras_encoder.QueryFirstAttention):
                        layer.__class__ = tf.keras.layers.MultiHeadAttention
            classifier.logit_model.jit_compile = xla
            models.append(classifier.logit_model)
            forward = tf.function(lambda x, model=classifier.logit_model: model(x, training=False), jit_compile=xla)
            forwards.append(forward)
        train_batches = list(
            trainer.make_dataset(train_files, BATCH_SIZE, seed=0, preprocessor=classifier.preprocessor).take(
                5 + args.real_steps
            )
        )
        eval_dataset = trainer.make_eval_dataset(eval_files, BATCH_SIZE, preprocessor=classifier.preprocessor)
        eval_batches = [inputs for inputs, _ in eval_dataset.take(args.real_steps)]
        for model, forward in zip(models, forwards):  # warm-up: traces the shapes
            for inputs, label in train_batches[:5]:
                model.train_on_batch(inputs, label)
            for inputs in eval_batches:
                forward(inputs)
        step_seconds = [[] for _ in variants]
        forward_seconds = [[] for _ in variants]
        for inputs, label in train_batches[5:]:
            for model, seconds in zip(models, step_seconds):
                started = time.perf_counter()
                model.train_on_batch(inputs, label)
                seconds.append(time.perf_counter() - started)
        for inputs in eval_batches:
            for forward, seconds in zip(forwards, forward_seconds):
                started = time.perf_counter()
                forward(inputs).numpy()
                seconds.append(time.perf_counter() - started)
        tokens = np.mean([int(tf.size(inputs["input_mask"])) for inputs, _ in train_batches[5:]]) / BATCH_SIZE
        dropout = "as the encoder (0.1)" if attention_dropout is None else attention_dropout
        print(
            f"\nseq {longest} real batches ({tokens:.0f} padded tokens a review), attention dropout {dropout}: "
            f"{args.real_steps} training steps, then a forward pass over the eval split's first {args.real_steps} "
            "length-grouped batches, the variants in turn on each batch",
            flush=True,
        )
        for (xla, attention), steps, passes in zip(variants, step_seconds, forward_seconds):
            step_ratio = statistics.median(a / b for a, b in zip(steps, step_seconds[0]))
            forward_ratio = statistics.median(a / b for a, b in zip(passes, forward_seconds[0]))
            print(
                f"  {attention} attention{', XLA' if xla else ''}: training step {statistics.mean(steps):.2f} s "
                f"(median ratio to the first, batch by batch, {step_ratio:.3f}); forward "
                f"{statistics.mean(passes):.2f} s a batch, {BATCH_SIZE / statistics.mean(passes):.1f} reviews/s "
                f"(ratio {forward_ratio:.3f})",
                flush=True,
            )

    if args.no_input:
        return
    # The input pipeline and the validation pass, at --input-length.
    config = trainer.TrainingConfig(
        str(bert.preprocess), str(bert.encoder), seq_length=longest, truncation="head+tail", precision=precision
    )
    classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
    trainer.compile_classifier(classifier, config, 1000)
    started = time.perf_counter()
    train_lengths = token_lengths(train_files, classifier.preprocessor)
    tokenize_rate = len(train_lengths) / (time.perf_counter() - started)
    eval_lengths = token_lengths(eval_files, classifier.preprocessor)
    print(
        f"\nTokenizing in tf.data (read, parse, normalize, tokenize, pack at {longest}): {tokenize_rate:.0f} reviews/s",
        flush=True,
    )
    for name, split in (("train", train_lengths), ("eval", eval_lengths)):
        values = np.array(split)
        print(
            f"{name}: {len(values)} reviews; tokens at seq {longest}: mean {values.mean():.0f}, median "
            f"{np.median(values):.0f}, p90 {np.percentile(values, 90):.0f}, at the cap {np.mean(values == longest):.1%}"
        )
    bucketed = [min(longest, -(-n // trainer.LENGTH_BUCKET_WIDTH) * trainer.LENGTH_BUCKET_WIDTH) for n in train_lengths]
    print(
        f"train batches (length buckets of {trainer.LENGTH_BUCKET_WIDTH}): mean padded length "
        f"{np.mean(bucketed):.0f} tokens",
        flush=True,
    )
    in_order, grouped = padded_tokens(eval_lengths, BATCH_SIZE), padded_tokens(sorted(eval_lengths), BATCH_SIZE)
    print(
        f"validation pass, padded tokens: records' order {in_order:,}; length-grouped {grouped:,} "
        f"({in_order / grouped:.2f}x fewer)",
        flush=True,
    )

    model = classifier.logit_model
    for name, dataset in (
        (
            "records' order, each batch trimmed to its longest (before)",
            trainer._tokenized(trainer.read_records(eval_files).batch(BATCH_SIZE), classifier.preprocessor).map(
                lambda inputs, label: (model_lib.trim_padding(inputs), label)
            ),
        ),
        (
            "length-grouped (make_eval_dataset)",
            trainer.make_eval_dataset(eval_files, BATCH_SIZE, preprocessor=classifier.preprocessor),
        ),
    ):
        started = time.perf_counter()
        model.evaluate(dataset, verbose=0)
        seconds = time.perf_counter() - started
        print(f"validation pass, {name}: {seconds:.0f} s ({len(eval_lengths) / seconds:.1f} reviews/s)", flush=True)


if __name__ == "__main__":
    main()
