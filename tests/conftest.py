from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def clips() -> list[np.ndarray]:
    """The shipped real-speech clips, float32 16 kHz mono."""
    return [sf.read(p, dtype="float32")[0] for p in sorted(DATA.glob("*.flac"))]


@pytest.fixture(scope="session")
def clip(clips) -> np.ndarray:
    return clips[0]
