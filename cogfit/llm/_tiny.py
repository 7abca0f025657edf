"""Tiny causal language models built offline, for tests, examples and benchmarks.

:func:`build_tiny_lm` trains a small BPE tokenizer with ``tokenizers`` on a text corpus, builds a
GPT-2 or Llama model from a config (randomly initialised, optionally trained for a few steps
on the corpus) and saves both with ``save_pretrained``, so the result loads by path with
:func:`cogfit.llm.load_lm` exactly as a real model would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

#: A minimal chat template (ChatML-like) so the chat-template scoring path can be exercised.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
)


def demo_corpus(n_sessions: int = 40, n_trials: int = 30, *, seed: int = 0) -> list[str]:
    """Synthetic Psych-201-style transcripts (two-armed bandit and 50/50 lottery choices).

    Option letters are drawn per session, as Psych-201 shuffles them per participant.
    """
    rng = np.random.default_rng(seed)
    letters = list("ABCDEFGHJKLMNPQRSTUVWXYZ")
    texts = []
    for i in range(n_sessions):
        a, b = rng.choice(letters, 2, replace=False)
        if i % 2 == 0:
            lines = [f"In this task, you have to choose between two options: {a} and {b}.",
                     "Each choice is associated with a probability of earning a food reward.", ""]
            for _ in range(n_trials):
                c = a if rng.random() < 0.5 else b
                got = "a food reward" if rng.random() < 0.6 else "no food reward"
                lines.append(f"Block 1: You pressed <<{c}>> and received {got}.")
        else:
            lines = [f"In each trial, you will be shown two 50%-50% lotteries. The lotteries' names are "
                     f"{a} and {b}.", ""]
            for _ in range(n_trials):
                x = rng.integers(-20, 40, 4)
                c = a if rng.random() < 0.5 else b
                lines.append(f"The outcomes of lottery {a} are {x[0]} with 50% chance and {x[1]} with 50% "
                             f"chance. The outcomes of lottery {b} are {x[2]} with 50% chance and "
                             f"{x[3]} with 50% chance. You choose <<{c}>>.")
        texts.append("\n".join(lines) + "\n")
    return texts


def _tokenizer(arch: str, corpus: Sequence[str], vocab_size: int) -> transformers.PreTrainedTokenizerFast:
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    if arch == "gpt2":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        # SentencePiece-like: only spaces split words, so merges such as "<<R>>" or "R>>."
        # cross the response markers in natural tokenization.
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
        alphabet = sorted(set("".join(corpus)) | set("0123456789-.,:;!?%'\"()<>ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "abcdefghijklmnopqrstuvwxyz\n▁"))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    if arch == "llama":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _config(arch: str, tok, *, width: int, layers: int, max_positions: int, init_scale: float):
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id)
    if arch == "gpt2":
        return transformers.GPT2Config(vocab_size=len(tok), n_positions=max_positions, n_embd=width,
                                       n_layer=layers, n_head=4, initializer_range=init_scale, **ids)
    if arch == "llama":
        return transformers.LlamaConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=2 * width,
                                        num_hidden_layers=layers, num_attention_heads=4,
                                        num_key_value_heads=2, max_position_embeddings=max_positions,
                                        initializer_range=init_scale, tie_word_embeddings=False, **ids)
    raise ValueError(f"arch must be 'gpt2' or 'llama', got {arch!r}")


def _train(model, tok, corpus: Sequence[str], steps: int, seed: int, seq_len: int = 128) -> None:
    # tokenized as the scorer reads transcripts (responses apart from the markers), not as the
    # tokenizer would merge them, so the trained model knows the sequences it is scored on
    from cogfit.llm._segments import Transcript, tokenize

    ids = torch.tensor([t for i, text in enumerate(corpus) for t in tokenize(tok, Transcript("t", i, text)).ids])
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError("corpus too short to train on")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - seq_len - 1, (8,), generator=gen)
        batch = torch.stack([ids[s : s + seq_len] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def build_tiny_lm(
    path: str | os.PathLike,
    *,
    arch: str = "llama",
    corpus: Sequence[str] | None = None,
    vocab_size: int = 400,
    width: int = 64,
    layers: int = 2,
    max_positions: int = 4096,
    init_scale: float = 0.2,
    train_steps: int = 0,
    seed: int = 0,
) -> str:
    """Train a tokenizer, build a tiny ``arch`` model, save both under ``path``; return ``path``.

    Parameters
    ----------
    arch
        ``"gpt2"`` (byte-level BPE, no BOS) or ``"llama"`` (SentencePiece-like BPE with ``<s>``).
    corpus
        Tokenizer (and training) text; default :func:`demo_corpus`.
    init_scale
        Standard deviation of the random initial weights; larger than the usual 0.02 so an
        untrained model's next-token distributions are far from uniform (sharper tests).
    train_steps
        AdamW steps (batch 8 x 128 tokens) on the corpus; 0 keeps the random weights.
    """
    corpus = list(corpus) if corpus is not None else demo_corpus(seed=seed)
    tok = _tokenizer(arch, corpus, vocab_size)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(
        _config(arch, tok, width=width, layers=layers, max_positions=max_positions, init_scale=init_scale)
    )
    if train_steps:
        _train(model, tok, corpus, train_steps, seed)
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
