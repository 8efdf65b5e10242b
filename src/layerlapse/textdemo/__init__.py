"""`layerlapse demo --text`: a small BERT-style encoder, pre-trained on Debian's `fortunes` and fine-tuned to tell six
of its categories apart, recorded with the Hugging Face callback. `corpus` and `vocabulary` need neither torch nor
transformers; `model` and `demo` import them when they are imported themselves."""
