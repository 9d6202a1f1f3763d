"""Shared test settings: hypothesis profiles sized for 2 CPU cores; GPU marker skips cleanly.

The default profile is derandomized: every run tries the same examples, so `make test` and
CI pass or fail reproducibly. `make test-explore` runs the property tests with fresh random
examples, many more of them: a search for new failures (each one found becomes a plain
regression test, as tests/test_hostile.py's test_keys_over_layers_never_wrap did)."""

import json
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "explore", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """A corpus file of 60 WEB chapters: sweeps and the GPU session at toy size."""
    from gqa_lib.train import data

    path = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    docs = data.load_documents("web")[:60]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path
