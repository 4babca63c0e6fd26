"""The grid runner and its store: resume after a crash, torchrun-style sharding, no duplicates."""
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

import xaikit as xk
from xaikit.experiments import ResultStore, evaluate, shard, summarize

METHODS = ["gradcam", "fakecam"]
METRICS = ["recognition"]


def _setup():
    torch.manual_seed(0)
    model = xk.models.load("resnet18", weights="random", num_classes=5)
    g = torch.Generator().manual_seed(1)
    items = [{"image": torch.rand(3, 32, 32, generator=g), "label": i % 5, "name": f"img{i}"} for i in range(10)]
    return model, xk.data.collate(items)


def _values(df):
    df = df[df.metric != "T"]  # wall time differs between runs; everything else must not
    return df.sort_values(["image", "method", "metric"]).reset_index(drop=True)


def test_shard_is_a_disjoint_cover():
    parts = [shard(10, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(10))
    assert all(set(a).isdisjoint(b) for a in parts for b in parts if a is not b)
    with pytest.raises(xk.errors.ConfigError):
        shard(10, 3, 3)


def _rec(image, value, method="m", model="x", dataset="d", **more):
    return dict(image=image, method=method, model=model, dataset=dataset, values={"AD": value, **more})


def test_store_skips_damaged_lines_and_recomputes_their_images(tmp_path):
    st = ResultStore("k", root=tmp_path)
    st.add([_rec("a", 1.0)])
    with open(st.path, "a") as f:
        f.write('{"image": "b", "meth')          # a writer killed mid-line
    st.add([_rec("a", 1.0), _rec("c", 3.0)])
    with open(st.path, "ab") as f:               # bytes, a number, a record without its image: all damaged
        f.write(b"\xff\xfe garbage\n123\n" + b'{"v": 2, "method": "m", "values": {}}\n')
    with pytest.warns(UserWarning, match="4 damaged"):
        df = st.frame()
    assert list(df.image) == ["a", "c"] and list(df.value) == [1.0, 3.0] and st.damaged == 4
    assert st.done(["AD"]) == {("a", "m"), ("c", "m")}


def test_store_is_atomic_per_record_and_keyed_by_everything(tmp_path):
    st = ResultStore("k", root=tmp_path)
    st.add([_rec("a", 1.0, AG=2.0)])
    assert st.done(["AD", "AG"]) == {("a", "m")}
    assert st.done(["AD", "AI"]) == set()            # a metric added later is computed, not skipped
    assert st.done(["AD"], model="other") == set()   # another model is never served these results
    assert st.done(["AD"], dataset="d2") == set()
    st.add([_rec("b", 5.0, model="other")])
    f = st.frame(images=["a"], model="x")            # exactly the rows asked for
    assert set(f.image) == {"a"} and set(f.metric) == {"AD", "AG"}
    st.add([_rec("c", float("nan"))])                # undefined for this image (no boxes): stored as null
    assert st.frame(images=["c"]).value.isna().all()
    with pytest.raises(ValueError, match="infinite"):
        st.add([_rec("d", float("inf"))])
    with pytest.raises(xk.errors.ConfigError, match="plain name"):
        ResultStore("../../escape", root=tmp_path)


def test_evaluate_checks_metrics_and_methods_before_any_work():
    model, data = _setup()
    with pytest.raises(xk.errors.ConfigError, match="unknown metric"):
        evaluate(model, data, ["gradcam"], ["recognition", "no_such_metric"])
    with pytest.raises(xk.errors.ConfigError, match="unknown saliency method 'gradcan'"):
        evaluate(model, data, "gradcan", ["recognition"])
    f = evaluate(model, data[[0, 1]], "gradcam", ["recognition"])  # one name is one method, not letters
    assert set(f.method) == {"gradcam"}


def test_evaluate_leaves_a_train_mode_model_as_it_found_it():
    model, data = _setup()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate(model, data[[0, 1]], ["gradcam", "scorecam"], ["recognition", "insertion"],
             metric_options={"insertion": {"steps": 4}})
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_rerun_skips_and_matches(tmp_path):
    model, data = _setup()
    st = ResultStore("k", root=tmp_path)
    calls = []
    full = evaluate(model, data, METHODS, METRICS, batch_size=4, store=st)
    again = evaluate(model, data, METHODS, METRICS, batch_size=4, store=st, on_batch=calls.append)
    assert len(calls) == 0  # nothing left to do: no batch is even loaded ...
    assert len(st.records()) == 10 * len(METHODS)  # ... and nothing is appended twice
    pd.testing.assert_frame_equal(_values(full), _values(again))
    table = summarize(full, metrics=["AD", "AG", "AI", "T"])
    assert list(table.columns) == ["AD", "AG", "AI", "T"] and set(table.index) == set(METHODS)


CRASH = textwrap.dedent("""
    import os, sys, signal
    sys.path.insert(0, {tests!r})
    from test_experiments import _setup, METHODS, METRICS
    from xaikit.experiments import ResultStore, evaluate
    model, data = _setup()
    st = ResultStore("k", root={root!r})
    seen = []
    def kill(b):
        seen.append(b)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGKILL)   # kill -9 in the middle of the run
    evaluate(model, data, METHODS, METRICS, batch_size=4, store=st, on_batch=kill)
""")


def test_resume_after_kill_gives_identical_results(tmp_path):
    model, data = _setup()
    ref = evaluate(model, data, METHODS, METRICS, batch_size=4)
    code = CRASH.format(tests=os.path.dirname(__file__), root=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    st = ResultStore("k", root=tmp_path)
    partial = st.frame()
    assert 0 < partial.image.nunique() < 10  # the crash really left a partial result
    resumed = evaluate(model, data, METHODS, METRICS, batch_size=4, store=st)
    a, b = _values(ref), _values(resumed)
    assert list(a.image) == list(b.image)
    assert torch.allclose(torch.tensor(a.value.values), torch.tensor(b.value.values), atol=1e-4)


def _worker(rank, world, root, initfile):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{initfile}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model, data = _setup()
    evaluate(model, data, METHODS, METRICS, batch_size=4, store=ResultStore("k", root=root, rank=rank))
    dist.barrier()
    dist.destroy_process_group()


def test_two_gloo_processes_give_the_one_process_table(tmp_path):
    import torch.multiprocessing as mp

    model, data = _setup()
    one = evaluate(model, data, METHODS, METRICS, batch_size=4)
    mp.spawn(_worker, args=(2, str(tmp_path / "res"), str(tmp_path / "init")), nprocs=2, join=True)
    two = ResultStore("k", root=tmp_path / "res").frame()
    assert len(list((tmp_path / "res" / "k").glob("rank*.jsonl"))) == 2
    a, b = _values(one), _values(two)
    assert len(a) == len(b) and list(a.image) == list(b.image)
    t1 = summarize(one, metrics=["AD", "AG", "AI"])
    t2 = summarize(two, metrics=["AD", "AG", "AI"])
    assert torch.allclose(torch.tensor(t1.values), torch.tensor(t2.values), atol=1e-4)


@pytest.mark.parametrize("change", ["method", "metric"])
def test_rerun_with_other_options_computes_them(tmp_path, change):
    """Records carry the options they were computed with: the same store and row names with other method or
    metric options used to return the earlier values."""
    model, data = _setup()
    first = dict(methods=[("gradcam", {"relu": True, "layer": "layer2"})], metric_options={"insertion": {"steps": 4}})
    second = ({**first, "methods": [("gradcam", {"relu": False, "layer": "layer2"})]} if change == "method"
              else {**first, "metric_options": {"insertion": {"steps": 16}}})
    kw = dict(metrics=["insertion"], batch_size=5)
    a = evaluate(model, data, store=ResultStore("k", root=tmp_path), **first, **kw)
    b = evaluate(model, data, store=ResultStore("k", root=tmp_path), **second, **kw)
    fresh = evaluate(model, data, **second, **kw)
    assert not _values(a).value.equals(_values(b).value)
    pd.testing.assert_frame_equal(_values(b), _values(fresh))
    # both are kept: going back to the first options reads them from the store, computing nothing
    calls = []
    h = model.register_forward_hook(lambda *a: calls.append(1))
    again = evaluate(model, data, store=ResultStore("k", root=tmp_path), **first, **kw)
    h.remove()
    pd.testing.assert_frame_equal(_values(again), _values(a))
    assert not calls
