import math
import os

import numpy as np
import pytest
import torch

from lstm_text.checkpoint import load_model, save_model
from lstm_text.config import ModelConfig
from lstm_text.model import LSTMModel
from lstm_text.tokenizer import CharTokenizer


def tiny(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=40, embed=16, hidden=32, layers=2)
    cfg.update(kw)
    return LSTMModel(ModelConfig(**cfg))


def test_initial_loss_is_close_to_uniform():
    m = tiny()
    x = torch.randint(2, 40, (4, 50))
    _, loss, _ = m(x, x)
    assert abs(loss.item() - math.log(40)) < 0.1


def test_overfits_one_batch():
    m = tiny()
    x = torch.randint(2, 40, (4, 24))
    y = torch.roll(x, -1, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(300):
        _, loss, _ = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2


def test_stepping_equals_full_sequence():
    for kw in ({}, {"tie_weights": False}, {"layers": 1, "embed": 32}):
        m = tiny(**kw).eval()
        x = torch.randint(2, 40, (3, 17))
        full, _, _ = m(x)
        state, steps = None, []
        for t in range(x.size(1)):
            logits, _, state = m(x[:, t : t + 1], state=state)
            steps.append(logits)
        assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)


def test_carried_state_equals_one_long_window():
    m = tiny().eval()
    x = torch.randint(2, 40, (2, 30))
    full, _, _ = m(x)
    a, _, st = m(x[:, :13])
    b, _, _ = m(x[:, 13:], state=st)
    assert torch.allclose(full, torch.cat([a, b], 1), atol=1e-5)


def test_checkpoint_round_trip_gives_identical_logits(tmp_path):
    tok = CharTokenizer.train("abcdefghij klmnopqrstuvwxyz.,\n")
    m = tiny(vocab_size=tok.vocab_size).eval()
    save_model(tmp_path / "m.safetensors", m, tok, {"steps": 1})
    m2, tok2, meta = load_model(tmp_path / "m.safetensors")
    x = torch.tensor([tok.encode("hello world.")])
    assert torch.equal(m(x)[0], m2(x)[0])
    assert tok2.to_dict() == tok.to_dict() and meta["training"] == {"steps": 1}
    assert m2.lm_head.weight is m2.embed.weight  # tying survives the round trip


def test_classifier_padding_does_not_change_the_result():
    m = tiny(labels=["neg", "pos"], lm_head=False).eval()
    a = torch.randint(2, 40, (1, 7))
    padded = torch.cat([a, torch.zeros(1, 5, dtype=torch.long)], 1)
    out1 = m.classify(a, torch.tensor([7]))
    out2 = m.classify(padded, torch.tensor([7]))
    assert torch.allclose(out1, out2, atol=1e-6)


def test_fused_step_equals_the_training_forward():
    from lstm_text.infer.step import StepModel

    for kw in ({}, {"tie_weights": False}, {"layers": 3, "embed": 32, "hidden": 32}, {"layers": 1}):
        m = tiny(**kw).eval()
        x = torch.randint(2, 40, (3, 12))
        with torch.no_grad():
            full, _, _ = m(x)
            prefix, _, st = m(x[:, :4])
            stepper = StepModel(m)
            state = stepper.state_from(st)
            outs = []
            for t in range(4, 12):
                logits, state = stepper.step(x[:, t], state)
                outs.append(logits)
        assert torch.allclose(full[:, 4:], torch.stack(outs, 1), atol=1e-5)


@pytest.mark.parametrize("native", [True, False], ids=["compiled-cell", "numpy-cell"])
@pytest.mark.parametrize("kw", [{"bidirectional": True}, {"bidirectional": True, "layers": 2}, {"layers": 2}, {}])
def test_numpy_classifier_equals_the_training_forward(kw, native):
    from lstm_text.infer import classifier
    from lstm_text.infer.classifier import Classifier

    if native and classifier._cell is None:
        assert not os.environ.get("CI"), "CI has a C compiler: the install should have built lstm_text/infer/_cell.c"
        pytest.skip("the compiled cell was not built (no C compiler at install)")

    m = tiny(labels=["a", "b", "c"], lm_head=False, **kw).eval()
    with torch.no_grad():  # larger weights than the init, so the gates saturate and mistakes would show
        for p in m.parameters():
            p.mul_(4.0)
    x = torch.randint(2, 40, (6, 9))
    lengths = torch.tensor([9, 1, 4, 7, 2, 9])
    x[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    with torch.no_grad():
        ref = m.classify(x, lengths).numpy()
    weights = {k: v.numpy() for k, v in m.state_dict().items()}
    clf = Classifier(m.cfg, weights, threads=2, native=native)
    assert clf.native == native
    seqs = [row[:n].tolist() for row, n in zip(x, lengths.tolist())]
    assert ref.std() > 0.3
    for batch_size in (1, 4, 64):  # one batch, several (in parallel threads, out of length order), one per line
        assert np.allclose(clf.logits(seqs, batch_size), ref, atol=1e-4), (kw, batch_size)
    # int8 rows: the same answers as the float table within the quantisation error, on both paths
    int8 = Classifier(m.cfg, weights, threads=1, quantize="int8", native=native).logits(seqs)
    assert np.abs(int8 - ref).max() < 0.05 * np.abs(ref).max(), kw


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"tie_weights": False},
        {"hidden": 16, "embed": 16},
        {"layers": 2, "labels": ["a", "b"]},
        {"bidirectional": True, "layers": 2, "lm_head": False, "labels": ["a", "b", "c"]},
    ],
)
def test_expected_shapes_are_the_models_stored_tensors(kw):
    from lstm_text.checkpoint import model_tensors
    from lstm_text.infer.packed import tensor_shapes as expected_shapes

    m = tiny(**kw)
    assert expected_shapes(m.cfg) == {k: tuple(v.shape) for k, v in model_tensors(m).items()}


def test_int8_steps_stay_close_to_float32_and_run_equals_step():
    from lstm_text.infer.step import StepModel

    for kw in ({}, {"tie_weights": False}, {"layers": 1}):
        m = tiny(**kw).eval()
        x = torch.randint(2, 40, (3, 12))
        with torch.no_grad():
            full, _, _ = m(x)
            fp32, _ = StepModel(m).run(x)
            q, _ = StepModel(m, "int8").run(x)
        assert torch.allclose(fp32, full, atol=1e-5)
        p, pq = full.softmax(-1), q.softmax(-1)
        assert (p - pq).abs().max() < 0.02, kw  # a quantization error, not a different function
        assert not torch.equal(fp32, q)  # and the int8 path did run


def test_compiled_cell_rejects_bad_buffers():
    """The C cell checks sizes and indices before touching memory: a clear ValueError, never a crash."""
    from lstm_text.infer import classifier

    if classifier._cell is None:
        assert not os.environ.get("CI"), "CI has a C compiler: the install should have built lstm_text/infer/_cell.c"
        pytest.skip("the compiled cell was not built (no C compiler at install)")
    cell, H = classifier._cell, 4
    g, rows = np.zeros((2, 4 * H), np.float32), np.zeros((3, 4 * H), np.float32)
    c, h = np.zeros((2, H), np.float32), np.zeros((2, H), np.float32)
    cell.step(g, rows, None, np.array([0, 2]), c, h)  # well-formed: runs
    with pytest.raises(ValueError, match="index out of range"):
        cell.step(g, rows, None, np.array([0, 3]), c, h)
    with pytest.raises(ValueError, match="index must be int64"):
        cell.step(g, rows, None, np.array([0, 1], np.int32)[:1], c, h)
    with pytest.raises(ValueError, match="g must be"):
        cell.step(np.zeros((2, H), np.float32), rows, None, np.array([0, 1]), c, h)
    with pytest.raises(ValueError, match="scales"):
        cell.step(g, rows.astype(np.int8), np.ones(2, np.float32), np.array([0, 1]), c, h)
    with pytest.raises((TypeError, BufferError, ValueError)):  # a strided view is not a contiguous buffer
        cell.step(g, rows, None, np.array([0, 1]), np.zeros((2, 2 * H), np.float32)[:, ::2], h)
