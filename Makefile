# Review moderation pipeline. `make help` lists the targets.
# Every target that needs Python makes its own virtual environment at .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUTPUT ?= out/demo
EMU_PORT ?= 9023
PORT   ?= 8000

.DEFAULT_GOAL := help
.PHONY: train-multilingual train-multilingual-gemma train-multilingual-kinds help install demo test test-unit sample verify dataflow-template bench-dedup bench-pipeline bench-stream bench-parity bench-pii bench-behaviour compact-store clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): setup.py
	@echo ">> creating $(VENV) and installing the package with its pinned dependencies (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install (done automatically by the other targets)

demo: $(STAMP) ## run the batch job on the embedded sample; prints the summary and where outputs are
	$(BIN)/python -m pipeline.run --input pipeline/data/demo_reviews.jsonl --output $(OUTPUT) --run_id demo

test: $(STAMP) ## run every test (starts its own storage emulator; no network needed)
	$(BIN)/python -m pytest -q --durations=20 tests

test-unit: $(STAMP) ## the fast tests only (no pipeline runs, no emulator)
	$(BIN)/python -m pytest -q -m "not slow" tests

sample: $(STAMP) ## regenerate pipeline/data/demo_reviews.jsonl (scripts/make_demo_sample.py)
	$(BIN)/python -m scripts.make_demo_sample

verify: $(STAMP) ## verify the signatures of every published review under OUTPUT (default out/demo)
	$(BIN)/python -m pipeline.verify $(OUTPUT)

.PHONY: widget-demo
widget-demo: $(STAMP) ## serve OUTPUT's verified widget documents + example page on localhost:PORT [LOCALE=ja|ko|zh-Hans|zh-Hant|en] (runs the demo first if needed)
	@if [ "$(OUTPUT)" = "out/demo" ] && [ ! -f out/demo/run_index.json ]; then $(MAKE) --no-print-directory demo; fi
	$(BIN)/python -m widget.serve --output $(OUTPUT) --port $(PORT) $(if $(KEY_FILE),--key-file $(KEY_FILE),--allow-demo-key --max-age-hours 0) $(if $(LOCALE),--locale $(LOCALE),)

bench-dedup: $(STAMP) ## near-duplicate benchmark: recall/precision, speed vs naive datasketch, 200k-review memory (JSON lines, ~15 min)
	$(BIN)/python -m benchmarks.bench_dedup $(BENCH_ARGS)

bench-pipeline: $(STAMP) ## whole batch pipeline on real-text corpora (BENCH_ARGS="--sizes 10000,100000"): reviews/s, peak RSS, per-stage floor (JSON)
	$(BIN)/python -m benchmarks.bench_pipeline $(BENCH_ARGS)

bench-stream: $(STAMP) ## streaming job vs the Pub/Sub emulator at 5, 10, 20, 50 msg/s (60 s each): p50/p95 latency, backlog (JSON)
	$(BIN)/python -m benchmarks.bench_stream $(BENCH_ARGS)

bench-parity: $(STAMP) ## withheld rate by star on real rated reviews (NSMC, Ott) through the whole pipeline (JSON)
	$(BIN)/python -m benchmarks.parity_real_data $(BENCH_ARGS)

bench-pii: $(STAMP) ## personal-data redaction benchmark: recall per kind and language, false redactions, normalise µs/review vs e16c900 (JSON, ~1 min)
	$(BIN)/python -m benchmarks.bench_pii $(BENCH_ARGS)

bench-behaviour: $(STAMP) ## behavioural detectors over all 608k YelpZip reviews: time, peak memory, groups/alerts found (JSON, ~1 min)
	$(BIN)/python -m benchmarks.bench_behaviour $(BENCH_ARGS)

compact-store: $(STAMP) ## compact the signature store: make compact-store STORE=<prefix> [RETENTION=90]
	$(BIN)/python -m pipeline.dedup.store compact --store $(STORE) --retention_days $(or $(RETENTION),90)

.PHONY: stream-demo
stream-demo: $(STAMP) ## streaming job on DirectRunner against the local Pub/Sub emulator: events, latency, clean shutdown
	$(BIN)/python -m pipeline.local.stream_demo --count $(or $(COUNT),200) --rate $(or $(RATE),5) --output out/stream-demo
	@left=$$(pgrep -af '[c]loud-pubsub-emulator|[p]ipeline.run --streaming' || true); \
	  if [ -n "$$left" ]; then echo "stray processes left: $$left"; exit 1; else echo "no stray emulator, Java or pipeline process (pgrep)"; fi

dataflow-template: $(STAMP) ## build a classic Dataflow template offline, staged on a local GCS emulator
	$(BIN)/python -m scripts.build_dataflow_template --port $(EMU_PORT)

E5 := .cache/classifier/e5-small-enpt
E5_FOLDS := .cache/classifier/ott-negw2-e5
E5_TUNE := OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m models.finetune ott --from-base --replay 0 --base-dir $(E5) --chunk 128 --chunk-overlap 32 --epochs 3 --lr 5e-5 --threads 1 --negative-weight 2

train: $(STAMP) ## train the shipped classifier (e5 early exit, CPU ~4 h, 2 runs at once; CLASSIFIER_VERSION=x.y.z) into pipeline/classifier/artifacts/
	$(BIN)/python -m pip install --quiet -e ".[train]"
	test -f $(E5)/model.safetensors || $(BIN)/python -m scripts.e5_convert --out $(E5)
	mkdir -p $(E5_FOLDS)
	printf '%s\n' -1 0 1 2 3 | xargs -P 2 -I{} sh -c 'if [ "{}" = -1 ]; then o=.cache/classifier/ott-negw2-e5-all; else o=$(E5_FOLDS)/fold{}; fi; \
	  test -f $$o/epoch2/head.pt || $(E5_TUNE) --holdout-fold {} --out $$o > $$o.log 2>&1 || { tail -20 $$o.log; exit 1; }'
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.train --threads 2 --version $(or $(CLASSIFIER_VERSION),1.3.0)

SOURCE_1_3 := .cache/classifier/fake-review-classifier-1.3.0

train-multilingual: $(STAMP) ## build classifier 2.0.1 (1.3.0 + Korean/Chinese pieces + the LLM-written-review head, then its cascade; ~35 min on 2 cores)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	test -f $(SOURCE_1_3)/config.json || { mkdir -p .cache/classifier && git archive 39ee228 pipeline/classifier/artifacts/fake-review-classifier/1.3.0 \
	  | tar -x --strip-components=4 -C .cache/classifier && mv .cache/classifier/1.3.0 $(SOURCE_1_3); }
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.multilingual train --version $(or $(CLASSIFIER_VERSION),2.0.1)
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.cascade --version $(or $(CLASSIFIER_VERSION),2.0.1)

train-multilingual-gemma: $(STAMP) ## build classifier 2.1.0 (2.0.1 + the generated head on Gemma 3 270M pools, then its cascade; ~1 h on 2 cores the first time)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.multilingual_gemma train
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.cascade --version 2.1.0
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.multilingual_gemma check

KINDS_VERSION ?= 2.4.0
train-multilingual-kinds: $(STAMP) ## build classifier 2.4.0 (an early exit after Gemma layer 6; KINDS_VERSION=2.3.0: layers 6+12 always, 2.2.0: all 18, float32): a head per kind of fake on one Gemma 3 270M pass, no e5, then its cascade (~35 min with cached pools)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.multilingual_kinds train --version $(KINDS_VERSION)
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.cascade --version $(KINDS_VERSION)
	HF_HUB_OFFLINE=1 $(BIN)/python -m models.multilingual_kinds check --version $(KINDS_VERSION)

bench-classifier: $(STAMP) ## benchmark the classifier: int8 ONNX vs plain transformers vs the whole batch pipeline, English and Korean (JSON, 10–25 min with load)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	test -f $(E5)/model.safetensors || $(BIN)/python -m scripts.e5_convert --out $(E5)
	test -f .cache/classifier/e5-small/model.safetensors || $(BIN)/python -m scripts.e5_convert --out .cache/classifier/e5-small --variant original
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks.bench_classifier $(BENCH_ARGS)

clean: ## remove outputs and caches (keeps .venv)
	rm -rf out build dist *.egg-info .pytest_cache test-artifacts
