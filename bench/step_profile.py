"""Where a training step's time goes, and what a validation pass costs, on the real corpus.

    .venv/bin/python -m bench.step_profile [--lengths 256,512] [--steps 8] [--precision auto]

On the train and eval splits of the real train archive (ImdbExampleGen's output, as `bench.time_to_accuracy`
prepares it), with the Trainer's own classifier (`build_classifier` at `--precision`, MiniLM, batch 32):
- per sequence length, a training step and a forward pass (validation's work) at full batches of that length,
  timed over `--steps` steps after a warm-up, and TensorFlow's profiler over 3 steps, its host op time summed
  by op type and grouped (attention, feed-forward, embedding, optimizer, ...);
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
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench import reviews

BATCH_SIZE = 32
# Op types -> the group a step's time is reported under (the rest: "other").
OP_GROUPS = {
    "feed-forward and projections (MatMul)": ("MatMul", "BatchMatMulV2", "_MklMatMul", "_MklFusedMatMul",
                                              "_MklNativeFusedMatMul", "_MklBatchMatMulV2",
                                              "_MklNativeBatchMatMulV2", "_FusedMatMul", "Einsum",
                                              "_MklEinsum", "_MklNativeEinsum"),
    "softmax and GELU": ("Softmax", "_MklSoftmax", "Erf", "Tanh", "_MklNativeFusedBatchMatMulV2", "Exp",
                         "SoftmaxGrad", "GeluGrad", "Gelu"),
    "layer norm": ("FusedBatchNormV3", "_MklFusedBatchNormV3", "FusedBatchNormGradV3", "_MklLayerNorm",
                   "Mean", "SquaredDifference", "Rsqrt"),
    "optimizer (AdamW)": ("ResourceApplyAdam", "ResourceApplyAdamWithAmsgrad", "AssignSubVariableOp",
                          "AssignVariableOp", "AssignAddVariableOp"),
    "embedding lookups": ("ResourceGather", "GatherV2", "UnsortedSegmentSum", "ResourceScatterAdd"),
    "casts (bfloat16 <-> float32)": ("Cast", "_MklCast"),
}


def op_group(op_type: str) -> str:
    return next((group for group, types in OP_GROUPS.items() if op_type in types), "other")


def host_op_seconds(trace_dir: str) -> dict[str, float]:
    """Op type -> seconds, summed over the profiler's TensorFlow op events on the host (all threads)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: dict[str, float] = collections.defaultdict(float)
    for path in glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" not in name or name.startswith("__"):
                        continue  # not a TensorFlow op event ("name:type")
                    op_type = name.rsplit(":", 1)[1]
                    if op_type[:1].isupper() or op_type.startswith("_"):
                        totals[op_type] += event.duration_ps / 1e12
    return dict(totals)


def split_files(examples_uri: str, split: str) -> list[str]:
    return [os.path.join(examples_uri, f"Split-{split}", "*.gz")]


def token_lengths(files: list[str], preprocessor) -> list[int]:
    import tensorflow as tf

    from modules import trainer
    from modules.model_interface import INPUT_MASK

    dataset = (trainer.read_records(files).batch(256).map(trainer._parse_batch)
               .map(lambda text, label: tf.reduce_sum(preprocessor(text)[INPUT_MASK], axis=1)))
    return [int(n) for batch in dataset.as_numpy_iterator() for n in batch]


def padded_tokens(lengths: list[int], batch: int) -> int:
    return sum(max(lengths[i:i + batch]) * len(lengths[i:i + batch]) for i in range(0, len(lengths), batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=reviews.DEFAULT_TARBALL)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imdb-time-to-accuracy"))
    parser.add_argument("--lengths", default="128,256,512")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--no-trace", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from bench.time_to_accuracy import prepare_data
    from modules import hardware, trainer
    from modules import model as model_lib
    from pipeline import configs
    from runners import offline_assets

    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    examples, _, _ = prepare_data(args.data, args.workdir)
    precision = hardware.resolve_precision(args.precision)
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    print(f"{os.cpu_count()} cores ({cpu}); precision {precision}; MiniLM L-6/H-384; batch {BATCH_SIZE}", flush=True)
    lengths = [int(n) for n in args.lengths.split(",")]
    longest = max(lengths)

    rows = []
    for seq_length in lengths:
        tf.keras.backend.clear_session()
        config = trainer.TrainingConfig(str(bert.preprocess), str(bert.encoder), seq_length=seq_length,
                                        truncation="head+tail", precision=precision, batch_size=BATCH_SIZE)
        classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
        trainer.compile_classifier(classifier, config, 1000)
        model = classifier.logit_model
        texts = [t for t, _ in trainer.read_records(split_files(examples.uri, "train")).batch(512).map(
            trainer._parse_batch).take(1).unbatch().as_numpy_iterator()]
        inputs = classifier.preprocessor(tf.constant(texts))
        # Full batches of exactly seq_length tokens (the longest reviews' shape).
        batch = {name: tf.tile(tensor[:1], [BATCH_SIZE, 1]) for name, tensor in inputs.items()}
        batch["input_mask"] = tf.ones_like(batch["input_mask"])
        labels = tf.ones([BATCH_SIZE, 1])
        forward = tf.function(lambda x: model(x, training=False))

        def timed(fn, steps):
            fn()
            fn()
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        train_step = timed(lambda: model.train_on_batch(batch, labels), args.steps)
        forward_step = timed(lambda: forward(batch).numpy(), args.steps)
        groups: dict[str, float] = {}
        if not args.no_trace:
            trace_dir = tempfile.mkdtemp(prefix=f"profile-{seq_length}-")
            tf.profiler.experimental.start(trace_dir)
            for _ in range(3):
                model.train_on_batch(batch, labels)
            tf.profiler.experimental.stop()
            by_type = host_op_seconds(trace_dir)
            total = sum(by_type.values())
            for op_type, seconds in by_type.items():
                groups[op_group(op_type)] = groups.get(op_group(op_type), 0.0) + seconds
            top = sorted(by_type.items(), key=lambda item: -item[1])[:12]
            print(f"\nseq {seq_length}: top op types over 3 training steps (host op time {total:.2f} s, "
                  f"wall {3 * train_step:.2f} s):", flush=True)
            for op_type, seconds in top:
                print(f"  {op_type:32s} {seconds:7.3f} s  {100 * seconds / total:5.1f}%")
            print("  by group: " + ", ".join(f"{g} {100 * s / total:.0f}%" for g, s in
                                             sorted(groups.items(), key=lambda item: -item[1])), flush=True)
        rows.append((seq_length, train_step, forward_step, groups))
        print(f"seq {seq_length}: training step {train_step:.3f} s ({BATCH_SIZE / train_step:.1f} reviews/s), "
              f"forward {forward_step:.3f} s ({BATCH_SIZE / forward_step:.1f} reviews/s), "
              f"ratio {train_step / forward_step:.2f}", flush=True)

    # The input pipeline and the validation pass, at the longest length.
    config = trainer.TrainingConfig(str(bert.preprocess), str(bert.encoder), seq_length=longest,
                                    truncation="head+tail", precision=precision)
    classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
    trainer.compile_classifier(classifier, config, 1000)
    train_files, eval_files = split_files(examples.uri, "train"), split_files(examples.uri, "eval")
    started = time.perf_counter()
    train_lengths = token_lengths(train_files, classifier.preprocessor)
    tokenize_rate = len(train_lengths) / (time.perf_counter() - started)
    eval_lengths = token_lengths(eval_files, classifier.preprocessor)
    print(f"\nTokenizing in tf.data (read, parse, normalize, tokenize, pack at {longest}): "
          f"{tokenize_rate:.0f} reviews/s", flush=True)
    for name, split in (("train", train_lengths), ("eval", eval_lengths)):
        values = np.array(split)
        print(f"{name}: {len(values)} reviews; tokens at seq {longest}: mean {values.mean():.0f}, median "
              f"{np.median(values):.0f}, p90 {np.percentile(values, 90):.0f}, at the cap {np.mean(values == longest):.1%}")
    bucketed = [min(longest, -(-n // trainer.LENGTH_BUCKET_WIDTH) * trainer.LENGTH_BUCKET_WIDTH)
                for n in train_lengths]
    print(f"train batches (length buckets of {trainer.LENGTH_BUCKET_WIDTH}): mean padded length "
          f"{np.mean(bucketed):.0f} tokens", flush=True)
    in_order, grouped = padded_tokens(eval_lengths, BATCH_SIZE), padded_tokens(sorted(eval_lengths), BATCH_SIZE)
    print(f"validation pass, padded tokens: records' order {in_order:,}; length-grouped {grouped:,} "
          f"({in_order / grouped:.2f}x fewer)", flush=True)

    model = classifier.logit_model
    for name, dataset in (
            ("records' order, each batch trimmed to its longest (before)",
             trainer._tokenized(trainer.read_records(eval_files).batch(BATCH_SIZE), classifier.preprocessor).map(
                 lambda inputs, label: (model_lib.trim_padding(inputs), label))),
            ("length-grouped (make_eval_dataset)",
             trainer.make_eval_dataset(eval_files, BATCH_SIZE, preprocessor=classifier.preprocessor))):
        started = time.perf_counter()
        model.evaluate(dataset, verbose=0)
        seconds = time.perf_counter() - started
        print(f"validation pass, {name}: {seconds:.0f} s ({len(eval_lengths) / seconds:.1f} reviews/s)", flush=True)


if __name__ == "__main__":
    main()
