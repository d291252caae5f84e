"""The trained part of the analyser: linear heads over lemma, character n-gram and navec features.

A post's feature vector has four blocks (built the same way by training and inference):

* **lemmas**: the rule engine's feature set (every lemma of every parse, ``не+LEMMA`` after a
  negation, discourse marks such as ``~q`` or ``~timerange``) restricted to the training
  vocabulary, binary, scaled by ``1/sqrt(n)`` (``n`` known features);
* **character n-grams**: 3- and 4-grams of every word (``<яма>`` → ``<ям``, ``ям``…), counted,
  summed over the words and divided by the number of words;
* **navec**: the mean of the words' pretrained 300-d navec vectors (``navec_news_v1_1B_250K_300d_100q``
  from the pinned ``natasha`` wheel; unknown words count as zero vectors) times :data:`DENSE_SCALE`;
* **word pairs**: every two neighbouring words cut to their first :data:`BIGRAM_PREFIX` letters
  («открытый люк» → ``откры_люк``, «провод висит» → ``прово_висит``), restricted to the training
  vocabulary (pairs of at least five posts), binary, scaled by ``1/sqrt(n)`` like the lemmas.
  In five folds that keep each of 17 writers' files whole, the hazard head's recall at precision
  0.85 went from 0.927 to 0.931 with them, category accuracy from 0.904 to 0.907, incident F1 from
  0.9732 to 0.9737 (see :data:`incidents.analysis.training.PAIR_MIN_DF` on pairs of two posts).

The sparse blocks' weights are stored as int8 with a scale per feature (:func:`quantise`).

Every head is a linear model, so a post's scores are a sum of per-word and per-lemma columns.
:class:`TextModel` keeps, per distinct word form, the word's whole contribution (its n-grams
plus its navec vector, projected onto every head) in a bounded cache. A new word costs one
sparse product row (its n-grams) and one 300-d product (navec's vector, gathered from its
product-quantised codes); a post then costs two small gathers.

Heads: ``incident`` and ``hazard`` (binary, Platt-calibrated on out-of-fold scores),
``category``, ``topic``, ``hazard_type`` (multinomial). The two binary heads also take a second
opinion from a small neural network on the post's navec block alone (:data:`MLP_HEADS`): the
linear head and the network each give a probability, their weighted log-probabilities
(:func:`mix_binary`) are what is calibrated. The artifact is one ``.npz`` (no
pickle); its SHA-256 is the classifier version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ARTIFACT_PATH = Path(__file__).resolve().parent / "model" / "analyser.npz"
ARTIFACT_FORMAT = 4
QUANT_LEVELS = 127
"""The sparse blocks' weights are stored as int8 with one float32 scale per feature (its largest
absolute weight over every head / 127). Quantising the float16 weights of ``hybrid-762e25da39a8``
this way changed one decision (a category) of 4,800 writers' posts it had not been trained on,
and no confidence by more than 0.002; the artifact shrank from 21 MB to 6 MB."""
NAVEC_FILE = "navec_news_v1_1B_250K_300d_100q.tar"
DENSE_SCALE = 3.0
"""Weight of the mean navec vector relative to the sparse blocks (a feature transform: training
and inference apply it alike)."""
NGRAM_SIZES = (3, 4)
BIGRAM_PREFIX = 5
"""Letters of each word a word pair keeps (a crude stem: «открытый»/«открытого» → «откры»)."""
WORD_CACHE_SIZE = 60_000
"""Distinct word forms whose projected contribution is kept (about 0.6 KB each; a word that fell
out costs about 25 µs to project again)."""
HEADS = ("incident", "hazard", "category", "topic", "hazard_type")
HAZARD_SCORE = "joint"
"""How a post's hazard score is made (recorded in the artifact): ``joint`` is
:func:`joint_hazard` of the hazard head and the topic head; an artifact without it uses the hazard
head alone."""


MLP_HEADS = ("incident", "hazard")
"""Binary heads with a second opinion from a network on the post's navec block (``DENSE_SCALE`` ×
the mean navec vector): one hidden layer of :data:`MLP_HIDDEN` ReLU units and a logistic output,
fitted by :mod:`sklearn.neural_network` for a fixed number of epochs. A linear model can only add
the words' meanings; the network can weigh them together («дети» with «лёд», not each alone).
Measured out of fold, in five folds that keep each writer's file whole (37,130 posts):

* the hazard head alone: precision at recall 0.98 went from 0.766 (linear head) and 0.759
  (network) to 0.835 (both, :func:`mix_binary`), average precision from 0.968 to 0.978; the
  incident head's average precision from 0.9961 to 0.9980;
* the analyser's decision (training's report, same data, networks of 256 units): incident F1
  0.9748 → 0.9826, hazard precision at recall 0.98 0.8668 → 0.8727, category accuracy 0.901 →
  0.906 (more true incidents called).

A network for the category head or the topic head changed the out-of-fold category by at most
0.1 point, so they have none. Measured again on 59,130 posts (2026-12-07, writer folds 0 to 3): a
category network (512 units) lifted the category head alone by about a point (0.859 → 0.870,
0.879 → 0.887, 0.909 → 0.920 with its log-probabilities weighted 0.3), but the analyser's category,
where the topic head weighs 0.7 and the rules' topic adds its bonus, moved by -0.3 to +0.3 point
whichever way it was mixed in (fold 0: 0.9289 → 0.9274 in the head, 0.9321 beside it at 0.1;
fold 3: 0.9441 → 0.9445, 0.9441)."""
MLP_HIDDEN = 512
"""Hidden units of a network (out of fold, 512 did a little better than 128 and 256)."""
MLP_WEIGHT = 0.3
"""The network's share of a binary head's mixed log-probability (:func:`mix_binary`); out of fold
0.2 and 0.3 were alike for the hazard head, 0.5 worse."""


def log_sigmoid(z: Any) -> Any:
    """``log(1 / (1 + exp(-z)))`` without overflow (a float or an array)."""
    return -np.logaddexp(0.0, -np.asarray(z, dtype=np.float64))


def _log_sigmoid(z: float) -> float:
    """:func:`log_sigmoid` of one float (plain floats: a tenth of numpy's cost on a scalar)."""
    return -math.log1p(math.exp(-z)) if z > -30.0 else z - math.log1p(math.exp(z))


def mix_binary(linear: Any, network: Any) -> Any:
    """A binary head's score: the linear head's and the network's log-probabilities, weighted
    (:data:`MLP_WEIGHT`), from their decision values (logits). Platt calibration applies to it.
    Arrays in training; two floats (one post at inference) take the plain-float log-sigmoid."""
    log_sig = _log_sigmoid if isinstance(linear, float) and isinstance(network, float) else log_sigmoid
    return (1.0 - MLP_WEIGHT) * log_sig(linear) + MLP_WEIGHT * log_sig(network)


def mlp_logits(dense: np.ndarray, layers: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> Any:
    """The network's logit of a post's navec block (a vector; rows of a matrix give a vector of
    logits): ReLU hidden layer, then one linear output."""
    w1, b1, w2, b2 = layers
    hidden = np.maximum(dense @ w1 + b1, 0.0)
    return hidden @ w2 + b2


RULE_HAZARD_OVERRULED_BELOW = 0.1
"""A hazard rule is overruled when the hazard head's probability is below this (the post then
needs review). On 3,464 posts of two writers each left out of training, none of the 15 rule
hazards below it was a hazard (3 of the 43 below 0.5 were)."""
RULE_HAZARD_MIN_INCIDENT = 0.05
"""A hazard rule is also overruled when the incident probability is below this: the rule's words
are there but nothing is being complained about (a joke, «после смены он как оголённый провод»;
an official warning). Out of fold, 19 of the 5,093 rule hazards of 37,130 training posts scored
below it, none of them a hazard (11 below 0.02, 21 below 0.1, none a hazard either)."""
HAZARD_MIN_INCIDENT = 0.02
"""A hazard the model alone finds needs at least this incident probability: a hazard is always an
incident, and an official warning («МЧС предупреждает: выход на лёд опасен») or an advert
(«стрижка собак на дому») scores a hazard's words but almost no complaint. On four writers' posts
left out of training it kept 1 of 1,200 hazards out and raised precision by up to 3 points. The
lowest value training tries: it chooses the value with the hazard threshold, out of fold, and stores
it in the artifact (``thresholds["hazard_min_incident"]``); this one applies to an artifact without."""


HAZARD_TOPIC_BONUS_FORCED = 2.0
"""A bonus no other category can reach (a category distribution sums to 1, the rules' topic adds
0.3): a hazard's category is always its type's. What an artifact without a trained bonus uses."""
HAZARD_TOPIC_BONUSES = (0.0, 0.1, 0.2, 0.3, 0.5, HAZARD_TOPIC_BONUS_FORCED)
"""The values training tries for ``thresholds["hazard_topic_bonus"]``: what is added to the category
of a hazard type's topic (``roads`` for a pit, ``housing`` for icicles) before a hazard's category is
taken like any incident's (:meth:`incidents.analysis.classifier.Analyzer._model_topic`). Training
keeps the one of the best out-of-fold category accuracy. A small bonus lets a post called a hazard
be filed where its problem and the body that must fix it belong (a yard's pothole the model took for
a pit stays improvement: of the 1,590 posts called hazards out of fold that writers did not call
hazards, 51 % kept their category with the type's forced on them, 82 % with no bonus; of the 11,590
true hazards, 95.4 % and 95.1 %); the hazard's deadline in hours follows its type whatever the
topic (:meth:`incidents.cases.reference.RoutingReference.due`)."""


def joint_hazard(p_hazard: Any, hazard_topic_mass: Any) -> Any:
    """The hazard score: the geometric mean of the hazard head's calibrated probability and the
    topic head's probability of a hazard topic. Each head errs on its own (the binary head on
    danger words in a harmless post, the topic head between a hazard topic and its everyday
    neighbour: a sunken manhole lid, an icy yard); trained without one writer's posts and tested
    on them, at the same hazard recall the joint score was 4 to 8 points more precise than the
    hazard head alone (0.96 recall: 0.72 vs 0.64 and 0.67 vs 0.59)."""
    return np.sqrt(p_hazard * hazard_topic_mass)


def artifact_version(path: Path | str | None = None) -> str:
    """``hybrid-<first 12 hex digits of the artifact's SHA-256>`` (``untrained`` without one)."""
    p = Path(path or ARTIFACT_PATH)
    if not p.exists():
        return "untrained"
    return "hybrid-" + _sha256(p)[:12]


@lru_cache(maxsize=8)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path), st.st_mtime_ns, st.st_size)


def char_ngrams(word: str) -> list[str]:
    """The character n-grams of one lower-case word (with ``<`` and ``>`` as its edges)."""
    w = f"<{word}>"
    out: list[str] = []
    for n in NGRAM_SIZES:
        out.extend(w[i : i + n] for i in range(len(w) - n + 1))
    return out


def word_pairs(words: Sequence[str]) -> set[str]:
    """The word-pair features of a post's lower-case words (``откры_люк``)."""
    stems = [w[:BIGRAM_PREFIX] for w in words]
    return {f"{a}_{b}" for a, b in zip(stems, stems[1:], strict=False)}


@lru_cache(maxsize=1)
def load_navec() -> Any:
    """The navec embeddings shipped in the ``natasha`` wheel (no download); one per process,
    shared by the model and the morphology lexicon (read only)."""
    import natasha
    from navec import Navec

    path = Path(natasha.__file__).resolve().parent / "data" / "emb" / NAVEC_FILE
    if not path.exists():
        raise FileNotFoundError(f"navec embeddings not found at {path} (is natasha==1.6.0 installed?)")
    return Navec.load(str(path))


def navec_id(navec: Any, word: str) -> int | None:
    """navec's row of a lower-case word form (``ё`` tried as itself, then as ``е``)."""
    ids = navec.vocab.word_ids
    i = ids.get(word)
    if i is None and "ё" in word:
        i = ids.get(word.replace("ё", "е"))
    return i


@dataclass(slots=True)
class Scores:
    """Calibrated probabilities of one post (label lists aligned with the heads' classes)."""

    incident: float
    hazard: float
    """The hazard score the threshold applies to (:data:`HAZARD_SCORE`)."""
    category: np.ndarray
    topic: np.ndarray
    hazard_type: np.ndarray
    hazard_head: float = -1.0
    """The hazard head's own calibrated probability (the hazard score when no joint score is used)."""
    lemma_rows: list[int] = field(default_factory=list)
    """The rows of the post's known lemma features (the explanation's words come from them)."""


class TextModel:
    """The loaded artifact; :meth:`scores` is thread-safe (the word cache tolerates races)."""

    def __init__(self, path: Path | str | None = None, *, navec: Any = None) -> None:
        self.path = Path(path or ARTIFACT_PATH)
        if not self.path.exists():
            raise FileNotFoundError(f"model artifact {self.path} is missing: run `python -m incidents train`")
        self.version = artifact_version(self.path)
        with np.load(self.path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != ARTIFACT_FORMAT:
                raise ValueError(f"{self.path}: artifact format {meta.get('format')} != {ARTIFACT_FORMAT}")
            self.meta: dict[str, Any] = meta
            self.lemma_names: list[str] = z["lemma_vocab"].tolist()
            self.lemma_vocab = {w: i for i, w in enumerate(self.lemma_names)}
            self._mark_rows = np.array([w.startswith("~") for w in self.lemma_names], dtype=bool)
            self.char_vocab = {w: i for i, w in enumerate(z["char_vocab"].tolist())}
            self.w_lemma = dequantise(z["w_lemma"], z["w_lemma_scale"])
            w_char = dequantise(z["w_char"], z["w_char_scale"])
            self.pair_vocab = {w: i for i, w in enumerate(z["pair_vocab"].tolist())}
            self.w_pair = dequantise(z["w_pair"], z["w_pair_scale"])
            w_dense = self.w_dense = z["w_dense"].astype(np.float32)
            self.bias = z["bias"].astype(np.float32)
            self.mlp: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {
                head: _network_layers(z, head) for head in meta.get("mlp", {}).get("heads", [])
            }
        # the networks' hidden layers side by side: one product per post for every network
        self._net_w1 = np.hstack([w1 for w1, _, _, _ in self.mlp.values()]) if self.mlp else None
        self._net_b1 = np.concatenate([b1 for _, b1, _, _ in self.mlp.values()]) if self.mlp else None
        # and their outputs as one block-diagonal product: hidden units -> one logit per network
        self._net_heads = list(self.mlp)
        self._net_w2 = np.zeros(
            (sum(w1.shape[1] for w1, _, _, _ in self.mlp.values()), len(self.mlp)), np.float32
        )
        self._net_b2 = np.array([b2[0] for _, _, _, b2 in self.mlp.values()], dtype=np.float32)
        start = 0
        for k, (w1, _, w2, _) in enumerate(self.mlp.values()):
            self._net_w2[start : start + w1.shape[1], k] = w2[:, 0]
            start += w1.shape[1]
        self.labels: dict[str, list[str]] = meta["labels"]
        self.slices: dict[str, slice] = {k: slice(*v) for k, v in meta["slices"].items()}
        self.platt: dict[str, tuple[float, float]] = {k: tuple(v) for k, v in meta["platt"].items()}
        self.thresholds: dict[str, float] = meta["thresholds"]
        self._hazard_columns: np.ndarray | None = None
        if meta.get("hazard_score") == "joint":
            hazard_topics = set(meta["hazard_topics"])
            self._hazard_columns = np.array(
                [i for i, t in enumerate(self.labels["topic"]) if t in hazard_topics], dtype=np.intp
            )
        self.navec = navec if navec is not None else load_navec()
        pq = self.navec.pq
        self.width = self.bias.shape[0]
        self.w_char = np.ascontiguousarray(w_char, dtype=np.float32)
        # a word's navec vector times DENSE_SCALE, projected onto every head by one product
        self._w_navec = np.ascontiguousarray(w_dense * np.float32(DENSE_SCALE), dtype=np.float32)
        qdim = pq.dim // pq.qdim
        centroids = pq.codes.shape[1]
        self._sub_offsets = np.arange(pq.qdim, dtype=np.intp) * centroids
        self._codes = pq.indexes
        # navec's centroids, one row per (sub-space, centroid): a word's vector is 100 of them
        self._flat_centroids = np.ascontiguousarray(pq.codes.reshape(-1, qdim), dtype=np.float32)
        self._cache_rows = np.zeros((WORD_CACHE_SIZE, self.width), dtype=np.float32)
        # the cached words' navec vectors, for the networks' input (none without networks)
        self._cache_dense = np.zeros((WORD_CACHE_SIZE if self.mlp else 0, pq.dim), dtype=np.float32)
        self._cache: dict[str, int] = {}
        self._generation = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ features
    def _word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Each word form's whole contribution (:meth:`_projections`)."""
        return self._projections(words)[0]

    def _projections(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each word form's whole contribution and its navec vector (zeros without one).

        The contribution, projected onto every head, is the word's known character n-grams' rows
        summed (one sparse product; each word's row is summed alone, in its n-grams' order) plus
        its navec vector times the navec block's weights (one product per word), so a word's
        numbers never depend on the words projected beside it."""
        from scipy import sparse

        out = np.zeros((len(words), self.width), dtype=np.float32)
        vectors, found = self._navec_found(words)
        get = self.char_vocab.get
        indices: list[int] = []
        indptr = [0]
        for word in words:
            indices.extend(i for g in char_ngrams(word) if (i := get(g)) is not None)
            indptr.append(len(indices))
        if indices:
            grams = sparse.csr_matrix(
                (np.ones(len(indices), dtype=np.float32), indices, indptr),
                shape=(len(words), self.w_char.shape[0]),
            )
            out += grams @ self.w_char
        w_navec = self._w_navec
        for k in found:
            out[k] += vectors[k] @ w_navec
        return out, vectors

    def _word_cache_rows(self, words: Sequence[str]) -> list[int] | None:
        """The word cache's rows of a post's words, projecting the new ones together; None when the
        cache was recycled meanwhile (the rows looked up before may have been reused)."""
        generation = self._generation
        cached = self._cache.get
        rows = [cached(w) for w in words]
        if None in rows:
            new = list(dict.fromkeys(w for w, r in zip(words, rows, strict=True) if r is None))
            vectors, dense = self._projections(new)
            with self._lock:
                if len(self._cache) + len(new) > WORD_CACHE_SIZE:
                    self._cache.clear()  # a new generation: rows are overwritten from 0
                    self._generation += 1
                for word, vector, navec in zip(new[:WORD_CACHE_SIZE], vectors, dense, strict=False):
                    row = self._cache.setdefault(word, len(self._cache))
                    self._cache_rows[row] = vector
                    if self.mlp:
                        self._cache_dense[row] = navec
            rows = [cached(w) for w in words]
        if self._generation != generation or None in rows:
            return None
        return rows  # type: ignore[return-value]

    def _navec_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Each word form's navec vector (zeros for a word navec lacks), with one gather."""
        return self._navec_found(words)[0]

    def _navec_found(self, words: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """:meth:`_navec_vectors` and the positions of the words navec has."""
        out = np.zeros((len(words), self._w_navec.shape[0]), dtype=np.float32)
        found = [(k, i) for k, w in enumerate(words) if (i := navec_id(self.navec, w)) is not None]
        if found:
            rows = self._codes[[i for _, i in found]].astype(np.intp) + self._sub_offsets
            vectors = self._flat_centroids.take(rows.ravel(), axis=0).reshape(len(found), -1)
            out[[k for k, _ in found]] = vectors
        return out, [k for k, _ in found]

    def dense_block(self, words: Sequence[str]) -> np.ndarray:
        """The post's navec block as training builds it: the words' vectors summed, times
        :data:`DENSE_SCALE` over the number of words (a word without a vector counts as zeros).
        Needs an artifact with networks (the word cache keeps the vectors only then)."""
        if not words:
            return np.zeros(self._cache_dense.shape[1], dtype=np.float32)
        rows = self._word_cache_rows(words)
        vectors = self._cache_dense[rows] if rows is not None else self._navec_vectors(words)
        return _dense_mean(vectors, len(words))

    def _network_logits(self, dense: Sequence[np.ndarray]) -> list[list[float]]:
        """Each post's logits of the networks (:data:`MLP_HEADS`, in :attr:`_net_heads` order)
        from its navec block, each post on its own: a vector times the matrices, the same routine
        with the same sizes whatever posts are beside it, so a post's numbers never depend on its
        block.

        One matrix product for the whole block's hidden layers was twice as fast on an AMD EPYC
        (22 µs a post against 45 µs, measured before the loader flushed the subnormal weights,
        :func:`_without_subnormals`; with them flushed a post's product takes ≈23 µs on an Intel
        Xeon), but BLAS does not promise a row of a product the same rounding whatever the other
        rows: on that AMD EPYC (OpenBLAS 0.3.31's kernels for it) a post scored in a block of 7
        got other last bits than alone, where the machines it had been measured on before gave
        the same bits for blocks of 1 to 2,000."""
        assert self._net_w1 is not None and self._net_b1 is not None and self._net_w2 is not None
        layers = (self._net_w1, self._net_b1, self._net_w2, self._net_b2)
        return [mlp_logits(np.ascontiguousarray(d, dtype=np.float32), layers).tolist() for d in dense]

    def _binaries(
        self, incident: float, hazard: float, networks: Sequence[float] = ()
    ) -> tuple[float, float]:
        """The calibrated incident and hazard probabilities from the linear heads' decision values
        and, when the artifact has networks (:data:`MLP_HEADS`), their logits (:func:`mix_binary`)."""
        values = {"incident": incident, "hazard": hazard}
        for head, network in zip(self._net_heads, networks, strict=True):
            values[head] = mix_binary(values[head], network)
        return self._platt("incident", values["incident"]), self._platt("hazard", values["hazard"])

    def raw_scores(self, words: Sequence[str], feats: Iterable[str]) -> np.ndarray:
        """The heads' decision values (before calibration/softmax) of one post."""
        return self._raw_scores(words, self.lemma_rows(feats))

    def lemma_rows(self, feats: Iterable[str]) -> list[int]:
        """The rows of the known features among ``feats``, in ascending order: a post's sums of rows
        must not follow the order of a set of strings, which Python's string hashing varies by
        process (float sums in another order round differently)."""
        get = self.lemma_vocab.get
        return sorted(i for f in feats if (i := get(f)) is not None)

    def _raw_scores(self, words: Sequence[str], lemma_rows: list[int]) -> np.ndarray:
        out = self.bias.copy()
        _add_rows(out, self.w_lemma, lemma_rows)
        if len(words) > 1:
            get = self.pair_vocab.get
            _add_rows(out, self.w_pair, sorted(i for f in word_pairs(words) if (i := get(f)) is not None))
        if words:
            rows = self._word_cache_rows(words)
            if rows is not None:
                out += self._cache_rows[rows].sum(axis=0) / len(words)
            else:  # the cache was recycled while this post's words were added: rows were reused
                out += self._word_vectors(words).sum(axis=0) / len(words)
        return out

    def scores(self, words: Sequence[str], feats: Iterable[str]) -> Scores:
        lemma_rows = self.lemma_rows(feats)
        raw = self._raw_scores(words, lemma_rows)
        networks = self._network_logits([self.dense_block(words)])[0] if self.mlp else []
        incident, head = self._binaries(
            float(raw[self.slices["incident"]][0]), float(raw[self.slices["hazard"]][0]), networks
        )
        topic = _softmax(raw[self.slices["topic"]])
        hazard = head
        if self._hazard_columns is not None:
            hazard = float(joint_hazard(head, float(topic[self._hazard_columns].sum())))
        return Scores(
            incident=incident,
            hazard=hazard,
            category=_softmax(raw[self.slices["category"]]),
            topic=topic,
            hazard_type=_softmax(raw[self.slices["hazard_type"]]),
            hazard_head=head,
            lemma_rows=lemma_rows,
        )

    def scores_many(self, posts: Sequence[tuple[Sequence[str], Iterable[str]]]) -> list[Scores]:
        """:meth:`scores` of several posts ``(words, feats)`` at once, with one sparse product per
        block and vectorised softmaxes instead of a dozen small numpy calls per post (about 45 µs
        of a post's 130 on the generator's texts).

        The numbers are :meth:`scores`' own, bit for bit: a block's rows are summed in the same
        order in float32 (a sparse row of ones times the weights adds the same rows one by one,
        as ``sum(axis=0)`` does) and divided by the same float32 factor, the networks multiply
        each post on its own (:meth:`_network_logits`), the softmax runs on contiguous rows, and
        the calibration is the same scalar code."""
        n = len(posts)
        if n == 0:
            return []
        words = [w for w, _ in posts]
        lemma_rows = [self.lemma_rows(f) for _, f in posts]
        get = self.pair_vocab.get
        pair_rows = [
            sorted(i for f in word_pairs(w) if (i := get(f)) is not None) if len(w) > 1 else [] for w in words
        ]
        flat = [w for post in words for w in post]
        cache_rows = self._word_cache_rows(flat) if flat else []
        if cache_rows is None:  # this call recycled the cache: the words are all in the new one
            cache_rows = self._word_cache_rows(flat)
        if cache_rows is None:  # more new words than the cache holds, or another thread's turn
            return [self.scores(w, f) for w, f in posts]
        bounds = np.cumsum([0, *(len(w) for w in words)])
        word_rows = [cache_rows[bounds[k] : bounds[k + 1]] for k in range(n)]
        raw = np.repeat(self.bias[None, :], n, axis=0)
        raw += _block_sums(lemma_rows, self.w_lemma, root=True)
        raw += _block_sums(pair_rows, self.w_pair, root=True)
        raw += _block_sums(word_rows, self._cache_rows, root=False)
        topic = _softmax_rows(raw[:, self.slices["topic"]])
        category = _softmax_rows(raw[:, self.slices["category"]])
        hazard_type = _softmax_rows(raw[:, self.slices["hazard_type"]])
        # a post without words has the zero block, as dense_block gives it
        networks: list[list[float]] = (
            self._network_logits(
                [_dense_mean(self._cache_dense[r], len(r)) if r else self.dense_block([]) for r in word_rows]
            )
            if self.mlp
            else [[]] * n
        )
        binaries = [
            self._binaries(i, h, logits)
            for i, h, logits in zip(
                raw[:, self.slices["incident"].start].tolist(),
                raw[:, self.slices["hazard"].start].tolist(),
                networks,
                strict=True,
            )
        ]
        incident = [i for i, _ in binaries]
        head = [h for _, h in binaries]
        hazard = head
        if self._hazard_columns is not None:
            mass = _row_sums(topic[:, self._hazard_columns]).tolist()
            hazard = [float(joint_hazard(h, m)) for h, m in zip(head, mass, strict=True)]
        return [
            Scores(
                incident=incident[k],
                hazard=hazard[k],
                category=category[k],
                topic=topic[k],
                hazard_type=hazard_type[k],
                hazard_head=head[k],
                lemma_rows=lemma_rows[k],
            )
            for k in range(n)
        ]

    def top_lemmas(self, lemma_rows: Sequence[int], head: str, k: int = 3) -> list[str]:
        """The ``k`` lemmas (not discourse marks) among ``lemma_rows`` that pushed ``head`` up
        most, strongest first (equal weights in descending name order)."""
        if not lemma_rows:
            return []
        rows = np.asarray(lemma_rows, dtype=np.intp)
        weights = self.w_lemma[rows, self.slices[head].start]
        keep = (weights > 0) & ~self._mark_rows[rows]
        rows, weights = rows[keep], weights[keep]
        if len(rows) > k:  # the k largest weights, and any weight equal to the k-th
            kth = np.partition(weights, len(weights) - k)[len(weights) - k]
            tied = weights >= kth
            rows, weights = rows[tied], weights[tied]
        names = self.lemma_names
        scored = sorted(zip(weights.tolist(), (names[i] for i in rows.tolist()), strict=True), reverse=True)
        return [f for _, f in scored[:k]]

    def _platt(self, head: str, value: float) -> float:
        a, b = self.platt[head]
        z = a * value + b
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


def quantise(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block of weights (features × outputs) as int8 rows and one float32 scale per row."""
    scale = np.abs(w).max(axis=1) / QUANT_LEVELS
    scale[scale == 0] = 1.0
    q = np.rint(w / scale[:, None]).astype(np.int8)
    return q, scale.astype(np.float32)


def _network_layers(z: Any, head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A head's network ``(w1, b1, w2, b2)`` from an opened artifact, in float32 without
    subnormal values (:func:`_without_subnormals`)."""
    w1, b1, w2, b2 = (_without_subnormals(z[f"mlp_{head}_{part}"]) for part in ("w1", "b1", "w2", "b2"))
    return w1, b1, w2, b2


def _without_subnormals(weights: np.ndarray) -> np.ndarray:
    """float32 ``weights`` with their subnormal values (magnitude under 1.2e-38) set to zero.

    Training's networks leave a few thousand weights of their first layers this small (2,806 of
    307,200 in ``hybrid-8f90747a4340``: penalised towards zero, then cast to float32). They cannot
    move a logit (each product is more than 30 orders of magnitude under the sums it joins), but
    Intel CPUs take a slow path on every subnormal operand: a post's product with the networks'
    hidden layers took 130 to 150 µs on an Intel Xeon with them and 17 µs without, of the
    ≈900 µs a post costs there. The artifact keeps training's values; the loader flushes them."""
    out = np.asarray(weights, dtype=np.float32).copy()
    out[np.abs(out) < np.finfo(np.float32).tiny] = 0.0
    return out


def dequantise(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float32 weights of :func:`quantise`'s rows and scales."""
    return np.asarray(q, dtype=np.float32) * np.asarray(scale, dtype=np.float32)[:, None]


def _add_rows(out: np.ndarray, weights: np.ndarray, rows: list[int]) -> None:
    """Add a binary block's contribution: the known features' rows, over sqrt(their count)
    (as :func:`incidents.analysis.training.build_matrix` scales them)."""
    if rows:
        out += weights[rows].sum(axis=0) / math.sqrt(len(rows))


def _block_sums(rows: Sequence[Sequence[int]], weights: np.ndarray, *, root: bool) -> np.ndarray:
    """Per post, the sum of its ``rows`` of ``weights`` over sqrt(their count) (``root``, as
    :func:`_add_rows`) or over their count (the words' mean); zeros for a post without rows."""
    from scipy import sparse

    counts = np.fromiter((len(r) for r in rows), dtype=np.intp, count=len(rows))
    indices = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(counts.sum()))
    indptr = np.concatenate(([0], np.cumsum(counts)))
    ones = np.ones(len(indices), dtype=np.float32)
    matrix = sparse.csr_matrix((ones, indices, indptr), shape=(len(rows), weights.shape[0]))
    sums = np.asarray(matrix @ weights, dtype=np.float32)
    divisor = np.sqrt(np.maximum(counts, 1)) if root else np.maximum(counts, 1)
    sums /= divisor.astype(np.float32)[:, None]
    return sums


def _dense_mean(vectors: np.ndarray, words: int) -> np.ndarray:
    """The navec block of a post of ``words`` words from its words' vectors (rows)."""
    return vectors.sum(axis=0) / np.float32(words) * np.float32(DENSE_SCALE)


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    """:func:`_softmax` of every row, equal to it bit for bit: each row's sum is taken on its own
    (numpy sums a row of a matrix in another order than the same values as a vector)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / _row_sums(e)[:, None]


def _row_sums(x: np.ndarray) -> np.ndarray:
    """Each row's ``sum()`` as a vector's (see :func:`_softmax_rows`)."""
    return np.array([row.sum() for row in x], dtype=x.dtype)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
