"""Contrastive context prediction (CCP): sentences that sit near each other in a document should
have nearby embeddings, whatever their language.

`ContextPairs` draws anchors (a sentence: one line of a document) and positives (another line
within ±`window` of it in the same document); the other positives of the batch (one language
per batch) are the negatives (InfoNCE). Against collapse, as the CCP paper prescribes,
`ContrastiveContext` keeps a memory bank per language of detached past positive embeddings as
further negatives (same-language negatives, so language identity cannot solve the task), and
batch-normalises the anchor branch only. With `lm_weight` the language-model loss on the anchors
is added (joint training).

The objective has trainable parameters (projection, batch norm) and state (the banks), so it is
an `nn.Module`: the loop optimises its parameters and saves its state with every checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn
from transformers import PreTrainedModel

from langadapt.corpus.document import Document
from langadapt.data.labelled import IGNORE
from langadapt.data.packing import Batch
from langadapt.errors import LangadaptError
from langadapt.registry import OBJECTIVES
from langadapt.train.config import CCPConfig


def sentences_of(doc: Document) -> list[str]:
    """A document's sentences: its non-empty lines."""
    return [line.strip() for line in doc.text.splitlines() if line.strip()]


def _padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


class ContextPairs:
    """Batches of (anchor, positive) sentence pairs from documents, seeded and resumable.

    Every batch is of one language (drawn uniformly), so its in-batch negatives, like the memory
    bank's, share the anchor's language: telling languages apart never lowers the loss (with
    mixed batches a model learns exactly that shortcut, and retrieval falls to chance).

    A batch holds `input_ids` / `attention_mask` / `labels` (the anchors, for the LM loss: next
    token, -100 on padding), `positive_ids` / `positive_mask` and `language` (index into
    `languages`)."""

    def __init__(self, docs: list[Document], tokenizer: Tokenizer, cfg: CCPConfig, batch_size: int, pad_id: int,
                 seed: int):
        structured = [doc for doc in docs if len(sentences_of(doc)) >= 2]
        if not structured:
            raise LangadaptError(
                f"none of the {len(docs)} documents has two sentences, so no sentence has a context to predict",
                where="train.objective: ccp",
                fix="give CCP documents of several lines (one sentence per line, e.g. a JSONL `text` with "
                    "newlines, or a curated corpus); a text source makes each line its own document.")
        self.languages = sorted({doc.lang for doc in structured})
        self.documents = [[encoding.ids[: cfg.max_tokens] or [pad_id] for encoding in
                           tokenizer.encode_batch(sentences_of(doc), add_special_tokens=False)] for doc in structured]
        self.language_of = [self.languages.index(doc.lang) for doc in structured]
        self.anchors = [[(d, i) for d, sentences in enumerate(self.documents) if self.language_of[d] == lang
                         for i in range(len(sentences))] for lang in range(len(self.languages))]
        self.window, self.batch_size, self.pad_id = cfg.window, batch_size, pad_id
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> Batch:
        language = int(torch.randint(len(self.languages), (1,), generator=self.generator))
        pool = self.anchors[language]
        picks = torch.randint(len(pool), (self.batch_size,), generator=self.generator).tolist()
        anchors, positives = [], []
        for pick in picks:
            doc, index = pool[pick]
            sentences = self.documents[doc]
            context = [j for j in range(max(index - self.window, 0), min(index + self.window + 1, len(sentences)))
                       if j != index]
            choice = int(torch.randint(len(context), (1,), generator=self.generator))
            anchors.append(sentences[index])
            positives.append(sentences[context[choice]])
        ids, mask = _padded(anchors, self.pad_id)
        labels = torch.full_like(ids, IGNORE)
        labels[:, :-1] = ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)
        positive_ids, positive_mask = _padded(positives, self.pad_id)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "positive_ids": positive_ids,
                "positive_mask": positive_mask, "language": torch.full((len(picks),), language)}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def sentence_embeddings(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last layer's states over each sentence's tokens (as evaluate/embed.py reads them)."""
    states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1)


class ContrastiveContext(nn.Module):
    """The CCP loss of a (model, batch): InfoNCE over in-batch and same-language bank negatives."""

    def __init__(self, width: int, languages: int, cfg: CCPConfig):
        super().__init__()
        self.cfg = cfg
        out = cfg.projection or width
        self.projection = (nn.Sequential(nn.Linear(width, out), nn.GELU(), nn.Linear(out, out)) if cfg.projection
                           else nn.Identity())
        self.anchor_norm = nn.BatchNorm1d(out)  # one branch only: the asymmetry works against collapse
        self.register_buffer("bank", torch.zeros(languages, cfg.bank_size, out))
        self.register_buffer("filled", torch.zeros(languages, dtype=torch.long))  # entries written so far

    def lr_scale(self, model: PreTrainedModel) -> dict[nn.Parameter, float]:
        """Every model parameter outside an embedding table learns at `body_lr_scale` × the rate.

        Measured on NTREX (tiny GPT-2 from random init): at the full rate the layers squeeze the
        pooled states into 3–5 of 64 directions within 100 steps and the loss stays at chance;
        with the layers slowed, the token embeddings learn which sentences share a context."""
        tables = {id(p) for module in model.modules() if isinstance(module, nn.Embedding) for p in module.parameters()}
        return {p: self.cfg.body_lr_scale for p in model.parameters() if id(p) not in tables}

    def embed(self, model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, anchor: bool) -> torch.Tensor:
        projected = self.projection(sentence_embeddings(model, ids, mask).float())
        return F.normalize(self.anchor_norm(projected) if anchor else projected, dim=-1)

    def contrastive_loss(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        anchors = self.embed(model, batch["input_ids"], batch["attention_mask"], anchor=True)
        positives = self.embed(model, batch["positive_ids"], batch["positive_mask"], anchor=False)
        logits = anchors @ positives.T
        if self.cfg.bank_size:
            language = batch["language"]
            bank = self.bank[language]  # (batch, bank, width): each anchor's own language
            slots = torch.arange(self.cfg.bank_size, device=bank.device)
            bank_logits = torch.einsum("bd,bkd->bk", anchors, bank).masked_fill(
                slots[None, :] >= self.filled[language][:, None], float("-inf"))
            logits = torch.cat([logits, bank_logits], dim=1)
            self._enqueue(positives.detach(), language)
        target = torch.arange(len(anchors), device=anchors.device)
        return F.cross_entropy(logits / self.cfg.temperature, target)

    @torch.no_grad()
    def _enqueue(self, embeddings: torch.Tensor, language: torch.Tensor) -> None:
        """Write into each language's ring buffer (`filled` counts writes; its slot is count mod size)."""
        for lang in language.unique().tolist():
            rows = embeddings[language == lang][-self.cfg.bank_size :]
            slots = (self.filled[lang] + torch.arange(len(rows), device=rows.device)) % self.cfg.bank_size
            self.bank[lang, slots] = rows
            self.filled[lang] += len(rows)

    def forward(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        loss = self.contrastive_loss(model, batch)
        if self.cfg.lm_weight:
            loss = loss + self.cfg.lm_weight * OBJECTIVES[self.cfg.lm_objective](model, batch)
        return loss
