"""The shapes of the tiny offline assets the tests build (the fixtures are in conftest.py)."""

from modules import hub_bert

TINY_BERT = hub_bert.RandomBertSpec(
    num_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, seq_length=64
)
