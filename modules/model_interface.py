"""The names the model shares with the Evaluator and its users: the signatures and outputs it serves, the encoder
interface, the training history (the examples' features and splits, which settings name: config/examples.py).
One home for each, and no TensorFlow, so the pipeline definition and the runners can use them without loading
the model's libraries."""

SERVING_SIGNATURE = "serving_default"  # serialized tf.Examples in (TFMA, TF Serving's classify/predict)
SERVING_INPUT = "examples"
TEXT_SIGNATURE = "predict_text"  # raw strings in
TEXT_INPUT = "text"
PROBABILITY_OUTPUT = "probability"  # of the positive class, float32 [batch, 1]
CLASS_NAME_OUTPUT = "label"  # "negative" or "positive", string [batch, 1]
CLASS_NAMES = ("negative", "positive")
# The TF Hub BERT encoder interface: inputs int32 [batch, seq_length] each; outputs, of which the head reads one.
INPUT_WORD_IDS, INPUT_MASK, INPUT_TYPE_IDS = ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
POOLED_OUTPUT, SEQUENCE_OUTPUT = ENCODER_OUTPUTS = ("pooled_output", "sequence_output")
SPANS_PROPERTY = "spans"  # of the Examples artifact: the spans read, e.g. "2,3"
# The Trainer's model_run: a row per epoch; it exports the epoch with the best BEST_EPOCH_METRIC (val. accuracy).
TRAINING_HISTORY_CSV, BEST_EPOCH_METRIC = "training_history.csv", "val_binary_accuracy"
