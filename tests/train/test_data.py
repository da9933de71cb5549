"""The training bank's augmentation and patch sampling (hct/train/data.py), on tiny tensors."""

import torch

from hct.train.data import ImageBank, augment


def test_augment_is_keyed_flips_only_permute_and_noise_is_bounded():
    batch = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    assert torch.equal(augment(batch, 7), augment(batch, 7)) and not torch.equal(augment(batch, 7), augment(batch, 8))
    flips = {
        (True, False): batch.flip(-1),
        (False, True): batch.flip(-2),
        (True, True): batch.flip(-1).flip(-2),
        (False, False): batch,
    }
    for key in range(8):
        flipped = augment(batch, key, noise_std=0.0)
        assert all(any(torch.equal(flipped[i], option[i]) for option in flips.values()) for i in range(2))
        noisy = augment(batch, key, flips=False, noise_std=0.05)
        assert 0 < (noisy - batch).abs().max() < 0.05 * 6  # std at most 0.05: six sigma bounds it
    assert torch.equal(augment(batch, 3, flips=False, noise_std=0.0), batch)


def test_patch_centres_sit_on_a_malignant_box_or_on_breast_pixels_and_pad_with_the_background():
    bank = ImageBank(
        images=torch.zeros(2, 1, 64, 48, dtype=torch.float16),
        labels=torch.tensor([1, 0]),
        fill=torch.tensor([5.0, 0.0]),
        boxes=torch.tensor([[[10.0, 10.0, 20.0, 30.0]], [[0.0, 0.0, 0.0, 0.0]]]),
        box_counts=torch.tensor([1, 0]),
        candidates=torch.tensor([[40, 8], [48, 16]]),
        candidate_offsets=torch.tensor([0, 0, 2]),
        image_ids=["m", "n"],
        splits=["train", "train"],
    )
    assert bank.patch_indices("train").tolist() == [0, 1]
    centres = bank.patch_centres(torch.tensor([0, 1] * 50), torch.Generator().manual_seed(0), jitter=2)
    malignant, normal = centres[0::2], centres[1::2]
    assert ((malignant - torch.tensor([15, 20])).abs() <= 2).all()  # the box centre, jittered
    assert ((normal[:, 0] >= 40 - 4) & (normal[:, 0] <= 48 + 4)).all()  # a candidate, within the candidate grid
    patch = bank.crop(torch.tensor([0]), torch.tensor([[2, 2]]), 8)[0, 0]  # 2 rows and columns off the image
    assert (patch[:2] == 5).all() and (patch[:, :2] == 5).all() and (patch[2:, 2:] == 0).all()  # padded with fill
