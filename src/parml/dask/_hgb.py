"""parml.dask.HistGradientBoostingRegressor / Classifier: the local estimators' boosting, with
each worker's rows binned and kept on that worker and only node histograms coming back.

One boosting iteration (K trees per iteration, all K grown in the same rounds)::

    driver                                         Shard actor on each worker
    ------                                         --------------------------
    begin(it, last tree's leaf values) ----------> raw += leaf values; loss sums; g, h
                                           <------ root histogram of each tree
    add the shards' histograms (fixed order),
    best root splits
    until every tree is final:
      expand(splits of the nodes to try) --------> partition those nodes' rows; histogram
                                           <------ of each smaller child only
      add; the grower splits best-first:
      sibling = parent - smaller child, children's best splits

Best-first growth (max_leaf_nodes) is sequential: which node is split next depends on the gains
of the children of the last one. To need only about one round per tree level, the driver
expands speculatively: each round it asks for every node best-first could still split (the
best `max_leaf_nodes - leaves` candidates; a node ranked lower can never be reached), then
lets the native grower (the local fit's, fed with summed histograms) split as far as the
expansions go, pausing at the first node not yet expanded. Expansions the grower never takes
are dropped (their rows belong to the leaf above them). A split whose children can never be split (one leaf left to add, or children too small
or too deep) needs no histogram: it goes to the workers with the next message instead of a
round of its own. The tree, node numbering included, is the local grower's.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from parml._core import grower as _grower
from parml._core.forest import Forest
from parml._core.grower import make_bins, tree_from_nodes
from parml._threads import effective_n_threads
from parml.ensemble import HistGradientBoostingClassifier as _LocalClassifier
from parml.ensemble import HistGradientBoostingRegressor as _LocalRegressor

from . import _hgb_worker as W
from ._common import DaskPredictMixin, get_client, partitions, release

MAX_RECOVERIES = 3  # lost workers survived in one fit (Dask's allowed-failures is 3 too)
# A shard call runs on the worker's event loop when the shard is small enough for a call to
# stay short (a few tens of ms): that saves a hand-over to Dask's actor thread and back, about
# 0.7 ms a round (measured: 52-55 vs 62-65 ms per iteration, 200k x 28, 31 leaves). Larger
# shards run in the actor thread so the worker keeps answering (heartbeats, data transfers).
INLINE_MAX_CELLS = 1 << 26   # rows x features of a shard


class _TreeGrowth:
    """One tree: the native grower (parml._core.grower.Grower, the local fit's rules and
    order) fed with summed histograms, over speculative expansions. Nodes on the workers are
    named by sid (speculative id); tree nodes are the grower's."""

    def __init__(self, k, root_hist, c):
        self.k, self.c = k, c
        self.grower = _grower.Grower(root_hist, c["nb"], c["missing_bin"],
                                     max_leaves=c["max_leaf_nodes"], max_depth=c["max_depth"],
                                     min_leaf=c["min_samples_leaf"], l2=c["l2"],
                                     min_hessian=c["min_hessian"], hconst=c["hconst"],
                                     n_threads=c["n_threads"])
        self.sid_of = {0: 0}    # tree node -> sid
        self.next_sid = 1
        self.children = {}      # sid -> (left sid, right sid), once split on the workers
        self.small = {}         # sid -> its smaller child's summed histogram (None: not needed)
        self.pending = []       # expansions waiting for histograms: (sid, left sid, right sid)

    def _replay(self):
        """Split best-first as far as the known expansions go; True once the tree is final."""
        g = self.grower
        while (node := g.next()) >= 0:
            sid = self.sid_of[node]
            if sid not in self.children:
                return False
            left, right = g.split(node, self.small.pop(sid))
            self.sid_of[left], self.sid_of[right] = self.children[sid]
        return True

    def requests(self):
        """Instructions for the next message: tuples (output, sid, feature, bin,
        missing_left, left sid, right sid, small is left, histogram wanted); none with a
        histogram wanted once the tree is final."""
        g, out = self.grower, []
        while not self._replay():
            # a node ranked below the leaves still to add can never be split
            wanted = False
            for node in g.best(self.c["max_leaf_nodes"] - g.n_leaves):
                sid = self.sid_of[int(node)]
                if sid in self.children:
                    continue
                s = g.split_of(int(node))
                lsid, rsid = self.next_sid, self.next_sid + 1
                self.next_sid += 2
                want = g.wants_hist(int(node))
                if want:
                    self.pending.append((sid, lsid, rsid))
                    wanted = True
                else:  # both children stay leaves: the grower has their values
                    self.children[sid] = (lsid, rsid)
                    self.small[sid] = None
                out.append((self.k, sid, s["feature"], s["bin"], s["missing_left"], lsid, rsid,
                            s["small_left"], want))
            if wanted:
                break
        return out

    def receive(self, small_hists):
        """The summed smaller-child histograms of the pending expansions, in their order."""
        for (sid, lsid, rsid), small in zip(self.pending, small_hists):
            self.small[sid] = small
            self.children[sid] = (lsid, rsid)
        self.pending = []

    def finish(self, learning_rate):
        """(tree arrays with scaled leaf values, {sid the workers hold: value to add})."""
        nodes = self.grower.nodes()
        arrays = tree_from_nodes(nodes, self.c["edges"]).arrays()
        arrays["value"] *= learning_rate
        values = {}
        for node, sid in self.sid_of.items():
            if arrays["left"][node] >= 0:
                continue
            v = float(arrays["value"][node])
            stack = [sid]
            while stack:  # a leaf's rows sit in the leaves of its speculative subtree
                s = stack.pop()
                if s in self.children:
                    stack.extend(self.children[s])
                else:
                    values[s] = v
        return arrays, values


class _Lost(Exception):
    """A shard call that could not reach its worker."""

    def __init__(self, cause):
        super().__init__(repr(cause))
        self.cause = cause


class _ShardsLost(Exception):
    def __init__(self, indices, cause):
        super().__init__(f"shards {indices} lost: {cause!r}")
        self.indices, self.cause = indices, cause


class _Run:
    """One fit on the cluster: the partitions, the shards on the workers, the boosting loop."""

    def __init__(self, est, client, local, old):
        self.est, self.client, self.local, self.old = est, client, local, old
        self.parts, self.shards, self.shard_futs = [], [], []
        self.round_trips = self.recoveries = 0

    # ---- shards ---------------------------------------------------------------------------------
    def place(self, sizes):
        """[(worker, partition indices)]: one group of consecutive partitions per worker,
        cut to equal shares of rows. The groups depend on the sizes and the number of workers
        only, never on where Dask happened to compute the partitions: a shard's histogram is
        a sum over its rows, so fixed groups (added in group order) give the same bits run
        after run and after a shard is rebuilt. Each group then goes to the worker that
        already holds most of its rows (data moves once, now, if Dask spread it otherwise)."""
        import distributed
        client = self.client
        workers = sorted(client.scheduler_info()["workers"])
        bounds = np.cumsum([0] + list(sizes))
        n, W = bounds[-1], max(1, min(len(workers), len(sizes)))
        cuts = [0] + [int(np.argmin(np.abs(bounds - n * j / W))) for j in range(1, W)] \
            + [len(sizes)]
        groups = [list(range(a, b)) for a, b in itertools.pairwise(cuts) if b > a]
        with client.as_current():   # wait() otherwise looks for the default client
            distributed.wait(self.parts)
        who = client.who_has(self.parts)
        free, out = set(workers), []
        for g in sorted(groups, key=lambda g: -sum(sizes[p] for p in g)):
            held = {w: 0 for w in free}
            for p in g:
                for w in who.get(self.parts[p].key, ()):
                    if w in held:
                        held[w] += sizes[p]
            w = max(sorted(held), key=lambda w: held[w]) if held else workers[0]
            free.discard(w)
            out.append((w, g))
        return sorted(out, key=lambda wg: wg[1][0])

    def make_shard(self, worker, group, spec):
        """A Shard actor built from the group's partitions: (its future, (address, key))."""
        fut = self.client.submit(W.Shard, [self.parts[p] for p in group],
                                 [self.masks[p] for p in group], spec, workers=[worker],
                                 allow_other_workers=True, actor=True, pure=False,
                                 key=f"parml-hgb-shard-{uuid.uuid4().hex}")
        fut.result()  # raises the constructor's error, if any
        addr = self.client.who_has([fut]).get(fut.key) or ()
        if not addr:  # its worker died just now: the call will find out and rebuild it
            addr = (worker,)
        return fut, (addr[0], fut.key)

    def reachable(self):
        """Whether this client can open connections to the workers itself (not so behind some
        NATs and proxies): then shard calls go straight to them, else through the scheduler."""
        async def ping():
            await asyncio.gather(*(asyncio.wait_for(self.client.rpc(a).identity(), 5)
                                   for a, _ in self.shards))
        try:
            self.client.sync(ping)
            return True
        except (OSError, asyncio.TimeoutError):
            return False

    def call(self, method, args):
        """`method` on every shard at once (args: the same tuple for all); results in shard
        order. The calls go to the workers directly (Dask's actor protocol without its proxy
        object, which would route through the scheduler and bind to the default client), all
        issued and awaited in one coroutine on the client's event loop."""
        from distributed.protocol import to_serialize
        self.round_trips += 1
        client = self.client
        payload = [to_serialize(a) for a in args]

        async def one(addr, key, inline):
            msg = {"function": method, "actor": key, "args": payload,
                   "kwargs": {"separate_thread": False} if inline else {}}
            try:
                if self.direct:
                    r = await client.rpc(addr).actor_execute(**msg)
                else:
                    r = await client.scheduler.proxy(worker=addr,
                                                     msg={**msg, "op": "actor_execute"})
            except OSError as e:
                return _Lost(e)
            except KeyError as e:  # no such actor there (a worker restarted on that address)
                return _Lost(e)
            if r["status"] == "OK":
                return r["result"]
            return r["exception"]

        async def every():
            return await asyncio.gather(*(one(a, k, inline) for (a, k), inline
                                          in zip(self.shards, self.inline)))

        out = client.sync(every)
        for r in out:
            if isinstance(r, BaseException) and not isinstance(r, _Lost):
                raise r
        lost = [i for i, r in enumerate(out) if isinstance(r, _Lost)]
        if lost:
            raise _ShardsLost(lost, out[lost[0]].cause)
        return out

    def resilient(self, fn):
        """fn(), repeated after rebuilding lost shards elsewhere from their partitions and the
        trees so far (Dask recomputes a partition that died with its worker)."""
        while True:
            try:
                return fn()
            except _ShardsLost as lost:
                self.recoveries += 1
                if self.recoveries > MAX_RECOVERIES:
                    raise RuntimeError(
                        f"parml.dask: workers were lost {self.recoveries} times during this "
                        f"fit; giving up, no model was fitted (last: {lost.cause!r})") \
                        from lost.cause
                alive = sorted(self.client.scheduler_info()["workers"])
                if not alive:
                    raise RuntimeError("parml.dask: no workers left; no model was fitted") \
                        from lost.cause
                spec = dict(self.spec, baseline=self.baseline, trees=list(self.forest.parts),
                            iter_done=len(self.forest.parts) // self.K)
                for i in lost.indices:
                    w = alive[i % len(alive)]
                    self.shard_futs[i], self.shards[i] = self.make_shard(w, self.groups[i][1],
                                                                         spec)

    def close(self):
        self.shards = []
        release(self.shard_futs)
        release(self.parts)

    # ---- fit -------------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight):
        est, client, local, old = self.est, self.client, self.local, self.old
        is_clf = est._is_clf
        t_start = time.perf_counter()
        names = _feature_names(X)
        if not hasattr(X, "dask"):  # in memory here: one partition per worker, not one in all
            import dask.array as da
            X = np.asarray(X)
            if X.ndim == 2 and len(X):
                X = da.from_array(X, chunks=(-(-len(X) // max(1, len(client.nthreads()))), -1))
        with warnings.catch_warnings():  # "large graph": expected for in-memory input
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            self.parts, sizes = partitions(client, X, y, sample_weight)
        n = sum(sizes)
        if n == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape=(0, {X.shape[1]})) while a "
                             f"minimum of 1 is required by {type(est).__name__}.")
        es = est.early_stopping if est.early_stopping != "auto" else n > 10_000
        do_es = bool(es)
        use_val = do_es and est.validation_fraction is not None
        if do_es and est.scoring != "loss":
            raise NotImplementedError("parml.dask early-stops on scoring='loss' only (a scorer "
                                      "would predict on rows spread over the workers)")
        summaries = client.gather([client.submit(W.check_partition, f, is_clf, use_val,
                                                 pure=False) for f in self.parts])
        d = int(summaries[0]["d"])
        if d == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape=({n}, 0)) while a minimum "
                             f"of 1 is required by {type(est).__name__}.")
        classes, K, cw = self._targets(summaries, is_clf)
        if old is not None:
            if est.max_iter < old.n_iter_:
                raise ValueError(f"max_iter={est.max_iter} must be >= n_iter_={old.n_iter_} "
                                 f"when warm_start=True")
            if d != old.n_features_in_ or K != old.n_trees_per_iteration_ or (
                    is_clf and not np.array_equal(classes, old.classes_)):
                raise ValueError("warm_start=True continues the fitted model, but X or y do "
                                 "not match it (features, classes or outputs differ); fit "
                                 "with warm_start=False to start over.")
        self.K = K

        # the local fit's draws, in random_draws's order: validation split, bin-edge sample
        rng, rng_state = _grower.random_draws(est.random_state,
                                              getattr(old, "_rng_state", None))
        self.masks = [None] * len(sizes)
        if use_val:
            y_all = np.concatenate([s["y"] for s in summaries])
            _, va = train_test_split(np.arange(n), test_size=est.validation_fraction,
                                     stratify=y_all if is_clf else None, random_state=rng)
            val = np.zeros(n, dtype=bool)
            val[va] = True
            bounds = np.cumsum([0] + list(sizes))
            self.masks = [val[bounds[p]:bounds[p + 1]] for p in range(len(sizes))]
        nt = effective_n_threads(est.n_threads)
        binned = self._bin_edges(sizes, rng.randint(2**31), nt)

        self.groups = self.place(sizes)
        self.forest = Forest(K)
        self.baseline = None
        if old is not None:
            for arrays, k in old._forest.parts:
                self.forest.add(arrays, k)
            self.baseline = old._baseline
        self.spec = {"n_threads": est.n_threads, "est": type(local)(**local.get_params()),
                     "is_clf": is_clf, "classes": classes, "n_outputs": K, "class_weight": cw,
                     "edges": binned.edges, "missing_bin": binned.missing_bin,
                     "nbins": binned.nbins, "baseline": None, "trees": [], "iter_done": 0}
        first = dict(self.spec, baseline=self.baseline, trees=list(self.forest.parts),
                     iter_done=len(self.forest.parts) // K) if old is not None else self.spec
        made = [self.make_shard(w, g, first) for w, g in self.groups]
        self.shard_futs = [f for f, _ in made]
        self.shards = [s for _, s in made]
        self.direct = self.reachable()
        self.inline = [sum(sizes[p] for p in g) * d <= INLINE_MAX_CELLS for _, g in self.groups]
        if self.baseline is None:
            stats = self.resilient(lambda: self.call("stats", ()))
            den = sum(s[0] for s in stats)
            if den <= 0:
                raise ValueError("The sample weights of the training rows sum to zero.")
            mean = np.sum([s[1] for s in stats], axis=0) / den
            # every loss's baseline is a function of the weighted mean of Y: one row holding it
            self.baseline = local._baseline_of(mean.reshape(1, -1), None)
        t_setup = time.perf_counter() - t_start

        c = {"nb": binned.nb, "missing_bin": binned.missing_bin, "edges": binned.edges,
             "l2": float(est.l2_regularization), "min_samples_leaf": est.min_samples_leaf,
             "max_depth": est.max_depth, "max_leaf_nodes": est.max_leaf_nodes or 2**31 - 1,
             "min_hessian": _grower.MIN_HESSIAN, "n_threads": nt}
        train_scores = list(old.train_score_) if old is not None else []
        val_scores = list(old.validation_score_) if old is not None else []
        watched = val_scores if use_val else train_scores
        start = old.n_iter_ if old is not None else 0
        it_seconds, it_rounds = [], []
        update, n_iter = None, start
        for it in range(start, est.max_iter + 1):
            # `begin` of iteration it scores the model of it iterations: the local fit's score
            # before the first tree and after each one (not the first again on a warm start)
            t_it, r_it = time.perf_counter(), self.round_trips
            want = do_es and (it > start or old is None)
            grow = it < est.max_iter
            if not (want or grow):
                break

            def one(it=it, want=want, grow=grow, update=update):
                return self._iteration(it, update, c, want, use_val, grow,
                                       lambda s: local._should_stop(watched + [s]))
            scores, result = self.resilient(one)
            if scores is not None:
                train_scores.append(scores[0])
                if use_val:
                    val_scores.append(scores[1])
            if result is None:  # early stop, or past the last iteration
                break
            finished, splits = result
            for arrays, k, _ in finished:
                self.forest.add(arrays, k)
            update = {"splits": splits, "leaves": [(k, v) for _, k, v in finished],
                      "trees": [(a, k) for a, k, _ in finished] if use_val else []}
            n_iter = it + 1
            it_seconds.append(time.perf_counter() - t_it)
            it_rounds.append(self.round_trips - r_it)
            if est.verbose:
                print(f"[{n_iter}/{est.max_iter}] {it_rounds[-1]} rounds, "
                      f"{it_seconds[-1] * 1e3:.1f} ms"
                      + (f", train loss {-train_scores[-1]:.5g}" if want else ""),
                      file=sys.stderr, flush=True)

        local._rng_state = rng_state
        local.is_categorical_ = None
        local._forest = self.forest
        local._baseline = self.baseline
        if is_clf:
            local.classes_ = classes
        local.n_trees_per_iteration_ = K
        local.n_features_in_ = d
        if names is not None:
            local.feature_names_in_ = names
        local.n_iter_ = n_iter
        local.do_early_stopping_ = do_es
        local.train_score_ = np.asarray(train_scores, dtype=np.float64)
        local.validation_score_ = np.asarray(val_scores, dtype=np.float64)
        stats = {"seconds": time.perf_counter() - t_start, "setup_seconds": t_setup,
                 "iteration_seconds": it_seconds, "round_trips": it_rounds,
                 "partitions": len(sizes), "shards": len(self.shards),
                 "recoveries": self.recoveries}
        return local, stats

    def _targets(self, summaries, is_clf):
        """classes_, trees per iteration, class weights per class (or None); and the loss's
        own check of y (range only: the checks there are on min and max)."""
        est, local = self.est, self.local
        if not is_clf:
            ranges = [s["range"] for s in summaries if "range" in s]
            loss = local._loss_fn() if hasattr(local, "_loss_fn") else None
            if loss is not None and ranges:
                loss.check_y(np.array([min(r[0] for r in ranges), max(r[1] for r in ranges)]))
            return None, 1, None
        classes = np.unique(np.concatenate([s["classes"] for s in summaries]))
        check_classification_targets(classes)
        if len(classes) < 2:
            raise ValueError(f"HistGradientBoostingClassifier needs at least 2 classes in y; y "
                             f"has only one class: {classes[0]!r}")
        counts = np.zeros(len(classes), dtype=np.float64)
        for s in summaries:
            np.add.at(counts, np.searchsorted(classes, s["classes"]), s["counts"])
        K = 1 if len(classes) == 2 else len(classes)
        cw = getattr(est, "class_weight", None)
        if cw is None:
            return classes, K, None
        if isinstance(cw, str):  # "balanced": scikit-learn's n / (classes * count)
            return classes, K, counts.sum() / (len(classes) * counts)
        return classes, K, np.asarray(compute_class_weight(cw, classes=classes, y=classes),
                                      dtype=np.float64)

    def _bin_edges(self, sizes, seed, n_threads):
        """The local make_bins's edges: its subsample of the training rows (the same seed), gathered
        to the driver, and make_bins itself run on exactly those rows (few enough then to be
        used whole: its own edge rule, whatever it is)."""
        client = self.client
        n_train = [s - (0 if m is None else int(m.sum())) for s, m in zip(sizes, self.masks)]
        total = sum(n_train)
        idx = _grower.bin_sample(total, _grower.BIN_SUBSAMPLE, seed)
        if idx is None:
            idx = np.arange(total)
        bounds = np.cumsum([0] + n_train)
        cut = np.searchsorted(idx, bounds)
        futs = [client.submit(W.take_train_rows, self.parts[p], self.masks[p],
                              idx[cut[p]:cut[p + 1]] - bounds[p], pure=False)
                for p in range(len(sizes)) if cut[p + 1] > cut[p]]
        try:
            sample = np.concatenate(client.gather(futs))
        finally:
            release(futs)
        return make_bins(sample, self.est.max_bins, subsample=max(len(sample), 1),
                         random_state=0, n_threads=n_threads)

    def _iteration(self, it, update, c, want, use_val, grow, would_stop):
        """Iteration `it` on all shards: (scores (train, validation) of the model of `it`
        iterations or None, ([(tree arrays, output, {sid: value})], splits still to send) or
        None when it stops there). Raises _ShardsLost; the caller rebuilds and calls again."""
        res = self.call("begin", (it, update, self.baseline, grow, want))
        scores = None
        if want:
            scores = tuple(-_ratio([r[0][i] for r in res]) if i == 0 or use_val else None
                           for i in (0, 1))
            if would_stop(scores[1] if use_val else scores[0]):
                return scores, None
        if not grow:
            return scores, None
        roots, hconst = W.sum_packed([r[1] for r in res])
        c = dict(c, hconst=1.0 if hconst else 0.0)  # the local fit's: h None -> constant 1
        growths = [_TreeGrowth(k, roots[k], c) for k in range(len(roots))]
        unsent = []  # splits that need no histogram ride with the next message
        while True:
            counts = []
            for g in growths:
                req = g.requests()
                unsent += req
                counts.append(sum(1 for r in req if r[-1]))
            if not any(counts):
                break
            hists, _ = W.sum_packed(self.call("expand", (it, unsent)))
            unsent = []
            start = 0
            for g, m in zip(growths, counts):
                if m:
                    g.receive(hists[start:start + m])
                start += m
        finished = []
        for g in growths:
            arrays, values = g.finish(self.est.learning_rate)
            finished.append((arrays, g.k, values))
        return scores, (finished, unsent)


def _feature_names(X):
    """Column names of a (dask) DataFrame when they are all strings (scikit-learn's rule)."""
    cols = getattr(X, "columns", None)
    cols = [] if cols is None else list(cols)
    return np.asarray(cols, dtype=object) if cols and all(isinstance(c, str) for c in cols) \
        else None


def _ratio(pairs):
    """Total weighted loss / total weight over the shards."""
    den = sum(p[1] for p in pairs)
    return sum(p[0] for p in pairs) / den if den > 0 else 0.0


def _check_not_categorical(X, spec):
    """parml.dask grows numeric splits only: a spec that marks any feature categorical (the
    local estimator's meaning: "from_dtype" reads a dataframe's category columns) is refused
    rather than treated as numeric."""
    if spec is None:
        return
    if isinstance(spec, str):
        dtypes = getattr(X, "dtypes", None)
        cats = [] if dtypes is None or not hasattr(dtypes, "items") else \
            [c for c, t in dtypes.items() if str(t).lower().startswith(("category", "enum"))]
        if not cats:
            return
        what = f"X has categorical columns {cats[:5]}"
    else:
        arr = np.asarray(spec)
        if arr.size == 0 or (arr.dtype == bool and not arr.any()):
            return
        what = f"categorical_features={spec!r} marks features as categorical"
    raise NotImplementedError(
        f"{what}; parml.dask has no categorical splits yet. Fit the local "
        f"parml.ensemble estimator, encode them as numbers, or pass categorical_features=None "
        f"to treat them as numeric.")


class _DaskHGB(DaskPredictMixin, BaseEstimator):
    _local_class = None

    def _local_params(self):
        return {k: v for k, v in self.get_params(deep=False).items() if k != "client"}

    def fit(self, X, y, sample_weight=None):
        """Fit on X (dask array or DataFrame, or numpy; NaN = missing), y and sample_weight
        (dask arrays or Series, rechunked to X's rows). Returns self."""
        local = self._local_class(**self._local_params())
        local._validate_params()
        old = getattr(self, "local_model_", None) if self.warm_start else None
        if old is not None and not hasattr(old, "_forest"):
            old = None
        if old is None:  # a failed refit must not leave the previous model behind
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
                delattr(self, name)
        loss = local._loss_fn() if hasattr(local, "_loss_fn") else None
        if loss is not None and not getattr(loss, "differentiable", True):
            raise NotImplementedError(
                f"loss={self.loss!r} sets leaf values to quantiles of the residuals, which "
                f"parml.dask does not compute across workers yet; fit the local estimator")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None")
        _check_not_categorical(X, self.categorical_features)
        run = _Run(self, get_client(self.client), local, old)
        try:
            model, stats = run.fit(X, y, sample_weight)
        except Exception as e:
            if type(e).__name__ in ("KilledWorker", "CancelledError", "FutureCancelledError"):
                raise RuntimeError(f"parml.dask: Dask gave up on a task ({e!r}); no model was "
                                   f"fitted") from e
            raise
        finally:
            run.close()
        self.local_model_ = model
        self._state_sklearn_attrs()
        for name in ("do_early_stopping_", "train_score_", "validation_score_"):
            setattr(self, name, getattr(model, name))
        self.fit_stats_ = stats
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


_DOC = """
    Parameters are the local estimator's (see parml.ensemble), plus ``client`` (a
    distributed.Client; None: the default client). ``n_threads`` None means each worker's own
    thread count for the kernels inside its calls. Not available here: losses whose leaf values
    are quantiles (absolute_error, quantile) and early stopping on a scorer other than "loss".

    After fit: ``local_model_`` (the equal plain parml estimator, also ``to_local()``),
    ``n_iter_``, ``train_score_``, ``validation_score_``, ``fit_stats_`` (seconds and round
    trips per iteration, setup seconds, shards, recoveries from lost workers)."""


def _init(self, params):
    for k, v in params.items():
        if k not in ("self", "__class__"):
            setattr(self, k, v)


class HistGradientBoostingRegressor(RegressorMixin, _DaskHGB):
    __doc__ = ("Histogram gradient boosting for regression on a Dask cluster; the model equals "
               "parml.ensemble.HistGradientBoostingRegressor fitted on the same rows." + _DOC)

    _is_clf = False
    _local_class = _LocalRegressor

    def __init__(self, loss="squared_error", *, quantile=None, learning_rate=0.1, max_iter=100,
                 max_leaf_nodes=31, max_depth=None, min_samples_leaf=20, l2_regularization=0.0,
                 max_bins=255, categorical_features="from_dtype", warm_start=False,
                 early_stopping="auto", scoring="loss", validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-7, verbose=0, random_state=None, n_threads=None,
                 client=None):
        _init(self, locals())


class HistGradientBoostingClassifier(ClassifierMixin, _DaskHGB):
    __doc__ = ("Histogram gradient boosting for classification (log loss) on a Dask cluster; "
               "the model equals parml.ensemble.HistGradientBoostingClassifier fitted on the "
               "same rows." + _DOC)

    _is_clf = True
    _local_class = _LocalClassifier

    def __init__(self, loss="log_loss", *, learning_rate=0.1, max_iter=100, max_leaf_nodes=31,
                 max_depth=None, min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                 categorical_features="from_dtype", warm_start=False, early_stopping="auto",
                 scoring="loss", validation_fraction=0.1, n_iter_no_change=10, tol=1e-7,
                 verbose=0, random_state=None, class_weight=None, n_threads=None, client=None):
        _init(self, locals())

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); a lazy dask array for dask input."""
        return self._map("predict_proba", X, None)

    def decision_function(self, X):
        """Raw scores: (n_samples,) for two classes, else (n_samples, n_classes)."""
        return self._map("decision_function", X, None)
