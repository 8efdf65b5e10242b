"""The text demo's encoder: a small BERT built from its config (no download), pre-trained briefly with masked-LM on
the fortunes, then handed to a sequence classifier for fine-tuning, as a pre-trained BERT is in practice (Merchant
et al. 2020, "What happens to BERT embeddings during fine-tuning?", study exactly that step).

transformers is imported with `layerlapse.integrations.require`, so a missing one is a one-line install hint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .._util.progress import progress_bar
from ..integrations import require
from .settings import TextDemoSettings
from .vocabulary import CLS, MASK, PAD, SEP, SPECIAL_TOKENS, Vocabulary

transformers = require("transformers", "transformers", (4, 40), what="transformers")

MASKED_SHARE = 0.15  # of the real tokens, as BERT: 80 % become [MASK], 10 % a random word, 10 % stay
WARMUP_SHARE = 0.1  # of the pre-training steps, the learning rate rising linearly (a transformer from scratch
# diverges at full rate)


def bert_config(vocabulary: Vocabulary, settings: TextDemoSettings,
                class_names: Sequence[str] = ()) -> transformers.BertConfig:
    """The encoder's config: the settings' size, the vocabulary's tokens, the classes as id2label."""
    return transformers.BertConfig(
        vocab_size=len(vocabulary), hidden_size=settings.hidden_size, num_hidden_layers=settings.num_layers,
        num_attention_heads=settings.num_heads, intermediate_size=settings.intermediate_size,
        max_position_embeddings=settings.max_length, pad_token_id=PAD, num_labels=max(2, len(class_names)),
        id2label=dict(enumerate(class_names)) or None, label2id={name: index for index, name in
                                                                 enumerate(class_names)} or None)


def mask_tokens(input_ids: torch.Tensor, vocabulary_size: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: MASKED_SHARE of the real word tokens chosen; the inputs with 80 % of them [MASK], 10 % a
    random word and 10 % unchanged, and a boolean map of the chosen ones (the tokens the loss predicts)."""
    words = (input_ids != PAD) & (input_ids != CLS) & (input_ids != SEP)
    chosen = words & (torch.rand(input_ids.shape, generator=generator) < MASKED_SHARE)
    draw = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (draw < 0.8)] = MASK
    randomised = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[randomised] = torch.randint(len(SPECIAL_TOKENS), vocabulary_size, input_ids.shape,
                                       generator=generator)[randomised]
    return masked, chosen


def pretrain(config: transformers.BertConfig, encoded: dict[str, np.ndarray], settings: TextDemoSettings, *,
             show_progress: bool = False) -> transformers.BertForMaskedLM:
    """A BertForMaskedLM from random weights, trained `settings.pretrain_epochs` epochs on the encoded texts with
    AdamW and a linear warm-up then decay. The loss is taken at the masked tokens only, so the decoder over the
    whole vocabulary runs on 15 % of the positions, not all of them. A progress bar on a terminal, if asked."""
    torch.manual_seed(settings.seed)
    model = transformers.BertForMaskedLM(config)
    input_ids = torch.from_numpy(encoded["input_ids"])
    lengths = torch.from_numpy(encoded["attention_mask"].sum(axis=1))
    total = math.ceil(len(input_ids) / settings.pretrain_batch_size) * settings.pretrain_epochs
    if total == 0:
        return model
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.pretrain_learning_rate, weight_decay=0.01)
    warmup = max(1, int(WARMUP_SHARE * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
    generator = torch.Generator().manual_seed(settings.seed)
    model.train()
    with progress_bar("pre-training (masked-LM)", total, enabled=show_progress) as advance:
        for _ in range(settings.pretrain_epochs):
            for batch in length_grouped_batches(lengths, settings.pretrain_batch_size, generator):
                advance()
                loss = _masked_lm_loss(model, input_ids[batch], generator)
                if loss is None:
                    continue
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
    return model.eval()


def length_grouped_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator,
                           group: int = 32) -> list[torch.Tensor]:
    """One epoch's batches, in random order, each of texts of about the same length: the texts shuffled, sorted by
    length within runs of `group` batches, cut into batches, the batches shuffled. A batch is cut to its longest
    text, so this spares the padding that random batches carry (half the tokens, with a median of 22 in 48)."""
    order = torch.randperm(len(lengths), generator=generator)
    batches = []
    for start in range(0, len(order), batch_size * group):
        run = order[start:start + batch_size * group]
        run = run[torch.argsort(lengths[run], stable=True)]
        batches += list(run.split(batch_size))
    return [batches[index] for index in torch.randperm(len(batches), generator=generator)]


def _masked_lm_loss(model: transformers.BertForMaskedLM, batch: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor | None:
    """The cross-entropy of the masked tokens of one batch, cut to its longest text; None when none was masked."""
    batch = batch[:, :int((batch != PAD).sum(dim=1).max())]
    masked, chosen = mask_tokens(batch, model.config.vocab_size, generator)
    if not chosen.any():
        return None
    hidden = model.bert(input_ids=masked, attention_mask=(batch != PAD).long()).last_hidden_state
    logits = model.cls(hidden[chosen])
    return torch.nn.functional.cross_entropy(logits, batch[chosen])


def masked_lm_accuracy(model: transformers.BertForMaskedLM, encoded: dict[str, np.ndarray], seed: int = 0) -> float:
    """How often the model names the masked word of held-out texts: what pre-training taught it."""
    input_ids = torch.from_numpy(encoded["input_ids"])
    masked, chosen = mask_tokens(input_ids, model.config.vocab_size, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        hidden = model.eval().bert(input_ids=masked, attention_mask=(input_ids != PAD).long()).last_hidden_state
        predicted = model.cls(hidden[chosen]).argmax(dim=-1)
    return float((predicted == input_ids[chosen]).float().mean()) if chosen.any() else float("nan")


def classifier_from(pretrained: transformers.BertForMaskedLM, config: transformers.BertConfig,
                    seed: int = 0) -> transformers.BertForSequenceClassification:
    """A BertForSequenceClassification whose encoder is the pre-trained one (its pooler and classifier fresh, drawn
    from `seed`, as when a checkpoint from the hub is fine-tuned)."""
    torch.manual_seed(seed)
    classifier = transformers.BertForSequenceClassification(config)
    missing, unexpected = classifier.bert.load_state_dict(pretrained.bert.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise RuntimeError(f"the pre-trained encoder does not fit the classifier's: missing {missing}, unexpected "
                           f"{unexpected}")
    return classifier
