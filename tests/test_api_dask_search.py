"""Searches over the engine's estimators on a Dask cluster through joblib's dask backend,
and the workers' compiled kernels: one Numba thread each, loaded from the shared on-disk
cache after engine.dask.warm_workers instead of compiled per task."""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import engine  # noqa: E402
import engine.dask as ed  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True)
def bounded(time_bound):
    time_bound(180)


def test_grid_search_on_the_cluster_equals_n_jobs_1(dask_client):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X[:, 0] * X[:, 1] + X[:, 2] > 0).astype(int)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), engine.MLPClassifier(max_iter=15, random_state=0)),
        {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)],
         "mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3)
    expected = GridSearchCV(**search.get_params(deep=False)).fit(X, y)
    with distributed.get_task_stream(client=dask_client) as stream:
        with joblib.parallel_config(backend="dask"):
            search.set_params(n_jobs=-1).fit(X, y)
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, f"the search ran on {workers}, not on both workers"
    for key, value in expected.cv_results_.items():
        if "time" in key:
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            np.testing.assert_array_equal(search.cv_results_[key], value, err_msg=key)
        else:
            assert list(search.cv_results_[key]) == list(value), key
    assert search.best_params_ == expected.best_params_


def _kernel_compilations():
    """(signatures loaded from the on-disk cache, signatures compiled) of this process's
    training and prediction kernels."""
    from engine.kernels import cpu

    dispatchers = list(cpu.TRAIN.values()) + list(cpu.FORWARD.values())
    hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    return hits, misses


def _numba_threads():
    import numba

    return numba.get_num_threads()


def test_workers_get_one_numba_thread_and_load_the_compiled_cache(dask_client):
    # tasks run in the workers' executor threads: one Numba thread there
    threads = dask_client.gather([dask_client.submit(_numba_threads, pure=False, workers=[w])
                                  for w in dask_client.scheduler_info()["workers"]])
    assert threads == [1, 1]
    # this process writes (or already has) the cache of the kernels warm_workers uses;
    # fresh worker processes then load them from disk, compiling nothing
    ed._warm(("float64",))
    dask_client.restart()
    seconds = ed.warm_workers(dask_client, dtypes=("float64",))
    assert len(seconds) == 2
    for worker, (hits, misses) in dask_client.run(_kernel_compilations).items():
        assert hits > 0 and misses == 0, f"{worker}: {hits} loaded, {misses} compiled"
