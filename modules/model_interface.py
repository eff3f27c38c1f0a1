"""The names the model shares with the data, the Evaluator and its users: features it reads, signatures and
outputs it serves. One home for each, and no TensorFlow, so the pipeline definition and the runners can use
them without loading the model's libraries."""

TEXT_FEATURE = "text"  # tf.Example feature: the review
LABEL_FEATURE = "label"  # tf.Example feature: 0 negative, 1 positive (int)
SERVING_SIGNATURE = "serving_default"  # serialized tf.Examples in (TFMA, TF Serving's classify/predict)
SERVING_INPUT = "examples"
TEXT_SIGNATURE = "predict_text"  # raw strings in
TEXT_INPUT = "text"
PROBABILITY_OUTPUT = "probability"  # of the positive class, float32 [batch, 1]
CLASS_NAME_OUTPUT = "label"  # "negative" or "positive", string [batch, 1]
CLASS_NAMES = ("negative", "positive")
# What a TF Hub BERT encoder takes, each int32 [batch, seq_length].
ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
