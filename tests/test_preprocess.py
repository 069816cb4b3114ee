"""What the networks do with the samples: the one Swin-B frame transform (training and inference) and the
pixel normalisations each family declares, checked against torchvision."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from rqvqa.families.fastvqa.preprocess import FRAGMENTS
from rqvqa.families.rqvqa.preprocess import (
    IMAGENET,
    FrameTransform,
    Preprocessing,
    Scaler,
    center_crop,
    random_crop,
)
from rqvqa.families.slowfast.preprocess import CHUNKS


def test_crop_helpers_follow_torchvision():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (384, 683, 3), dtype=np.uint8)
    expected = np.asarray(transforms.CenterCrop(384)(Image.fromarray(frame)))
    np.testing.assert_array_equal(center_crop(frame, 384), expected)
    assert random_crop(frame, 384, np.random.default_rng(1)).shape == (384, 384, 3)
    small = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    expected = np.asarray(transforms.CenterCrop(384)(Image.fromarray(small)))
    np.testing.assert_array_equal(center_crop(small, 384), expected)  # zero padding like torchvision
    # frames not at 384 are resized first, as PIL Resize(384) does
    odd = rng.integers(0, 256, (383, 500, 3), dtype=np.uint8)
    expected = np.asarray(transforms.CenterCrop(384)(transforms.Resize(384)(Image.fromarray(odd))))
    np.testing.assert_array_equal(FrameTransform().crops([odd])[0], expected)


def test_frame_transform_is_torchvisions_pipeline():
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (400, 520, 3), dtype=np.uint8) for _ in range(2)]
    official = transforms.Compose(
        [
            transforms.Resize(384),
            transforms.CenterCrop(384),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    expected = torch.stack([official(Image.fromarray(f)) for f in frames])
    torch.testing.assert_close(FrameTransform()(frames), expected, rtol=0, atol=1e-6)


def test_training_crop_is_random_but_seeded():
    frame = np.random.default_rng(5).integers(0, 256, (384, 683, 3), dtype=np.uint8)
    transform = FrameTransform()
    a = transform.crops([frame], train=True, rng=np.random.default_rng(3))
    b = transform.crops([frame], train=True, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, transform.crops([frame]))
    # the crop is a 384x384 window of its frame
    windows = [frame[:, x : x + 384] for x in range(frame.shape[1] - 384 + 1)]
    assert any(np.array_equal(w, a[0]) for w in windows)


def test_normalisations_match_torchvision():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 8, 12, 3), dtype=np.uint8)
    imagenet = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
    )
    expected = torch.stack([imagenet(Image.fromarray(f)) for f in frames])
    torch.testing.assert_close(IMAGENET(frames), expected, rtol=0, atol=1e-6)
    chunk = rng.integers(0, 256, (1, 4, 8, 12, 3), dtype=np.uint8)
    slowfast = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.45] * 3, [0.225] * 3)])
    expected = torch.stack([slowfast(Image.fromarray(f)) for f in chunk[0]], dim=1)[None]
    torch.testing.assert_close(CHUNKS(chunk), expected, rtol=0, atol=1e-6)
    x = FRAGMENTS(chunk)
    assert x.shape == (1, 3, 4, 8, 12) and x.dtype == torch.float32
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)
    raw = torch.from_numpy(chunk).permute(0, 4, 1, 2, 3).float()
    torch.testing.assert_close(x, (raw - mean) / std, rtol=0, atol=0)


def test_preprocessing_round_trips_through_json():
    custom = Preprocessing("full", FrameTransform(resize=256, crop=224))
    assert Preprocessing.from_dict(custom.to_dict()) == custom
    assert Preprocessing.from_dict(Preprocessing().to_dict()) == Preprocessing()


def test_scaler_gives_the_same_numbers_to_numpy_and_torch(tmp_path):
    rng = np.random.default_rng(4)
    rows = [rng.normal(3.0, 2.0, (5, 4)).astype(np.float32) for _ in range(3)]
    rows[0][1, 2] = np.nan  # missing values in published files become the training mean (0 after scaling)
    scaler = Scaler.fit({"src": rows})
    x = rng.normal(3.0, 2.0, (6, 4)).astype(np.float32)
    x[0, 0] = np.nan
    as_numpy = scaler.apply("src", x)
    as_torch = scaler.apply("src", torch.from_numpy(x))
    np.testing.assert_array_equal(as_numpy, as_torch.numpy())
    assert as_numpy[0, 0] == 0.0 and np.isfinite(as_numpy).all()
    np.testing.assert_array_equal(scaler.apply("other", x), x)  # a source it was not fitted on passes through
    scaler.save(tmp_path / "scaler.safetensors")
    again = Scaler.load(tmp_path / "scaler.safetensors")
    np.testing.assert_array_equal(again.apply("src", x), as_numpy)
