"""Drawing one phantom mammogram: breast, tissue, linear structures and findings (numpy only).

A breast is a half-ellipse against the chest wall (the image's left), with a skin line, fatty and
glandular tissue (1/f noise shaped by the breast's density), linear structures converging on the
nipple, and for MLO views the pectoral muscle. Findings are drawn into it. Sizes are box sides in
pixels at :data:`REFERENCE_ROWS` image rows and scale with the image. Worker processes are forked,
so this module uses no torch (forked OpenMP can hang).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_ROWS = 1664  # finding sizes are stated at this image height (the half resolution 1664x1280)
MAX_VALUE = 4095  # 12-bit pixels, as most full-field digital mammograms store them


@dataclass(frozen=True)
class Finding:
    """One finding: its kind, malignancy, place in the breast and size (box side at REFERENCE_ROWS)."""

    kind: str
    malignant: bool
    depth: float  # 0 at the chest wall, 1 at the nipple
    height: float  # -1..1 across the breast
    size: float
    seed: int


@dataclass(frozen=True)
class BreastPlan:
    """What one view of one breast shows."""

    laterality: str
    view: str
    density: float  # 0 fatty .. 1 extremely dense
    breast_seed: int
    view_index: int
    findings: tuple[Finding, ...]


@dataclass
class _Canvas:
    image: np.ndarray  # float32, 0..1
    inside: np.ndarray  # the breast
    centre_row: float
    semi_rows: float
    semi_cols: float
    scale: float  # image rows / REFERENCE_ROWS

    def thickness(self, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        """Compressed-breast thickness in a window: 1 at the chest wall's centre, 0 at the skin."""
        yy = np.arange(r0, r1, dtype=np.float32)[:, None]
        xx = np.arange(c0, c1, dtype=np.float32)[None, :]
        radius2 = ((yy - self.centre_row) / self.semi_rows) ** 2 + (xx / self.semi_cols) ** 2
        return np.sqrt(np.clip(1 - radius2, 0, 1))


def texture(rng: np.random.Generator, shape: tuple[int, int], exponent: float) -> np.ndarray:
    """Unit-variance Gaussian noise with a 1/f^exponent amplitude spectrum."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    freq = np.sqrt(fy**2 + fx**2)
    freq[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / freq**exponent
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=shape)
    return (field / field.std()).astype(np.float32)


def upsample(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize in numpy."""

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.minimum(position.astype(int), n_in - 2) if n_in > 1 else np.zeros(n_out, dtype=int)
        return low, np.minimum(low + 1, n_in - 1), (position - low).astype(np.float32)

    r0, r1, fr = axis(size[0], array.shape[0])
    c0, c1, fc = axis(size[1], array.shape[1])
    rows = array[r0] * (1 - fr[:, None]) + array[r1] * fr[:, None]
    out = rows[:, c1]
    out -= rows[:, c0]
    out *= fc
    out += rows[:, c0]
    return out


def render(plan: BreastPlan, size: tuple[int, int]) -> tuple[np.ndarray, list[tuple[str, tuple[int, int, int, int]]]]:
    """The view as 12-bit pixels in display orientation, and its findings' boxes (``benign-`` kinds
    for benign findings). A right breast is mirrored so its chest wall is on the image's right."""
    canvas = _breast(plan, size)
    rng = np.random.default_rng([plan.breast_seed, 20 + plan.view_index])
    _linear_structures(canvas, rng)
    boxes = []
    for finding in plan.findings:
        box = _draw_finding(canvas, finding, plan.view == "MLO")
        if box is not None:
            boxes.append((finding.kind if finding.malignant else f"benign-{finding.kind}", box))
    noisy = rng.standard_normal(size, dtype=np.float32)
    noisy *= 0.006
    noisy += canvas.image
    noisy += 0.02
    noisy *= MAX_VALUE
    np.clip(noisy, 0, MAX_VALUE, out=noisy)
    noisy[~canvas.inside] = 0
    pixels = noisy.astype(np.uint16)
    if plan.laterality == "R":
        cols = size[1]
        pixels = pixels[:, ::-1]
        boxes = [(kind, (r0, cols - c1, r1, cols - c0)) for kind, (r0, c0, r1, c1) in boxes]
    return np.ascontiguousarray(pixels), boxes


def _breast(plan: BreastPlan, size: tuple[int, int]) -> _Canvas:
    """Outline, fatty and glandular tissue, skin line and pectoral muscle.

    The tissue is smooth at a quarter of the resolution: it is computed there and upsampled once;
    the outline and the skin line are drawn at full resolution.
    """
    rows, cols = size
    shape_rng = np.random.default_rng([plan.breast_seed, 1])
    rng = np.random.default_rng([plan.breast_seed, 2 + plan.view_index])
    mlo = plan.view == "MLO"
    semi_rows = rows * shape_rng.uniform(0.34, 0.44) * (1.12 if mlo else 1.0)
    semi_cols = cols * shape_rng.uniform(0.6, 0.85)
    centre_row = rows * (rng.uniform(0.42, 0.5) if mlo else rng.uniform(0.47, 0.53))
    low = (max(rows // 4, 32), max(cols // 4, 32))
    yy = ((np.arange(low[0], dtype=np.float32) + 0.5) * rows / low[0])[:, None]
    xx = ((np.arange(low[1], dtype=np.float32) + 0.5) * cols / low[1])[None, :]
    thickness = np.sqrt(np.clip(1 - ((yy - centre_row) / semi_rows) ** 2 - (xx / semi_cols) ** 2, 0, 1))
    coarse = texture(shape_rng, low, 1.6)  # the breast's tissue pattern, shared by its views
    fine = texture(rng, low, 0.9)
    central = np.exp(-(((yy - centre_row) / (0.7 * semi_rows)) ** 2)) * np.exp(-(((xx / semi_cols) - 0.35) ** 2) / 0.2)
    glandular = plan.density * central / (1 + np.exp(-(2.2 * coarse + 0.6 * fine - 0.3)))
    tissue = 0.28 * thickness**0.4 + 0.32 * glandular * thickness**0.3 + 0.012 * fine
    if mlo:
        width, height = semi_cols * rng.uniform(0.22, 0.35), rows * rng.uniform(0.35, 0.55)
        tissue = np.where((xx / width + yy / height) < 1, 0.42 + 0.02 * coarse, tissue)
    full_y = np.arange(rows, dtype=np.float32)[:, None]
    full_x = np.arange(cols, dtype=np.float32)[None, :]
    radius2 = ((full_y - centre_row) / semi_rows) ** 2 + (full_x / semi_cols) ** 2
    inside = radius2 < 1
    image = upsample(tissue.astype(np.float32), size)
    image[radius2 > 0.985] += np.float32(0.05)
    return _Canvas(image, inside, float(centre_row), float(semi_rows), float(semi_cols), rows / REFERENCE_ROWS)


def _ray(dy: np.ndarray, dx: np.ndarray, angle: float, start: float, stop: float, width: float) -> np.ndarray:
    """A thin line along ``angle`` from radius ``start`` to ``stop``, fading towards its end."""
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    along = cos * dx + sin * dy
    across = (cos * dy - sin * dx) / np.float32(width)
    fade = np.clip(1 - (along - np.float32(start)) / np.float32(max(stop - start, 1e-3)), 0, 1) * (along > start)
    return np.exp(-(across * across)) * fade


def _window(canvas: _Canvas, row: float, col: float, half: float):
    """The image window around (row, col) and its offsets ``dy``, ``dx``; None when off the image."""
    rows, cols = canvas.image.shape
    r0, c0 = max(int(row - half), 0), max(int(col - half), 0)
    r1, c1 = min(int(row + half) + 1, rows), min(int(col + half) + 1, cols)
    if r1 - r0 < 4 or c1 - c0 < 4:
        return None
    dy = np.arange(r0, r1, dtype=np.float32)[:, None] - np.float32(row)
    dx = np.arange(c0, c1, dtype=np.float32)[None, :] - np.float32(col)
    return (r0, c0, r1, c1), dy, dx


def _linear_structures(canvas: _Canvas, rng: np.random.Generator) -> None:
    """Ducts and ligaments: faint lines in the glandular region running towards the nipple."""
    nipple = (canvas.centre_row, canvas.semi_cols)
    width = max(0.8, 1.4 * canvas.scale)
    rows, cols = canvas.image.shape
    for _ in range(int(rng.integers(14, 26))):
        depth, height = rng.uniform(0.1, 0.75), rng.uniform(-0.6, 0.6)
        row = canvas.centre_row + height * canvas.semi_rows * np.sqrt(1 - depth**2)
        col = depth * canvas.semi_cols
        angle = np.arctan2(nipple[0] - row, nipple[1] - col) + rng.normal(0, 0.25)
        length = rng.uniform(80, 260) * canvas.scale
        end_row, end_col = row + length * np.sin(angle), col + length * np.cos(angle)
        margin = 3 * width
        r0, r1 = max(int(min(row, end_row) - margin), 0), min(int(max(row, end_row) + margin) + 1, rows)
        c0, c1 = max(int(min(col, end_col) - margin), 0), min(int(max(col, end_col) + margin) + 1, cols)
        if r1 - r0 < 2 or c1 - c0 < 2:
            continue
        dy = np.arange(r0, r1, dtype=np.float32)[:, None] - np.float32(row)
        dx = np.arange(c0, c1, dtype=np.float32)[None, :] - np.float32(col)
        line = _ray(dy, dx, angle, 0.0, length, width)
        canvas.image[r0:r1, c0:c1] += rng.uniform(0.03, 0.07) * line * canvas.thickness(r0, c0, r1, c1)


def _place(canvas: _Canvas, finding: Finding, mlo: bool) -> tuple[float, float]:
    row = (
        canvas.centre_row
        + finding.height * canvas.semi_rows * np.sqrt(1 - finding.depth**2)
        + (0.12 * canvas.semi_rows if mlo else 0)
    )
    return row, finding.depth * canvas.semi_cols


def _draw_finding(canvas: _Canvas, finding: Finding, mlo: bool) -> tuple[int, int, int, int] | None:
    """Add ``finding`` to the canvas; its bounding box (row0, col0, row1, col1), None if not visible."""
    rng = np.random.default_rng(finding.seed)
    row, col = _place(canvas, finding, mlo)
    side = max(finding.size * canvas.scale * (1.0 + 0.08 * rng.standard_normal()), 6.0)
    found = _window(canvas, row, col, side / 2 + 2)
    if found is None:
        return None
    (r0, c0, r1, c1), dy, dx = found
    draw = {
        "mass": _mass,
        "calcifications": _calcifications,
        "architectural_distortion": _distortion,
        "focal_asymmetry": _asymmetry,
    }[finding.kind]
    added, contrast = draw(rng, dy, dx, side / 2, finding.malignant, canvas.scale)
    thickness = canvas.thickness(r0, c0, r1, c1)
    canvas.image[r0:r1, c0:c1] += contrast * added * np.maximum(thickness, 0.3)
    visible = (added > 0.1) & (thickness > 0)
    if not visible.any():
        return None
    rows_hit, cols_hit = np.nonzero(visible.any(axis=1))[0], np.nonzero(visible.any(axis=0))[0]
    return (r0 + int(rows_hit[0]), c0 + int(cols_hit[0]), r0 + int(rows_hit[-1]) + 1, c0 + int(cols_hit[-1]) + 1)


def _mass(rng, dy, dx, radius, malignant, scale):
    """Malignant: an irregular core with spicules. Benign: a smooth, circumscribed oval."""
    rho, theta = np.hypot(dy, dx), np.arctan2(dy, dx)
    if malignant:
        core = radius * 0.6
        wobble = sum(rng.uniform(0.04, 0.1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in range(3, 8))
        added = 1 / (1 + np.exp((rho / (core * (1 + wobble)) - 1) / 0.09))
        width = max(0.8, 1.4 * scale)
        for angle in rng.uniform(0, 2 * np.pi, rng.integers(8, 17)):
            added = np.maximum(added, 0.6 * _ray(dy, dx, angle, core * 0.8, radius * rng.uniform(0.85, 1.0), width))
    else:
        core, stretch = radius * 0.85, rng.uniform(0.8, 1.2)
        added = 1 / (1 + np.exp((np.hypot(dy / (core * stretch), dx / (core / stretch)) - 1) / 0.04))
    return added, rng.uniform(0.10, 0.18)


def _calcifications(rng, dy, dx, radius, malignant, scale):
    """Malignant: a tight cluster of fine, elongated (pleomorphic) calcifications. Benign: a few
    larger round ones scattered over a wider area."""
    added = np.zeros(np.broadcast_shapes(dy.shape, dx.shape), dtype=np.float32)
    count, spread = (rng.integers(10, 26), 0.4) if malignant else (rng.integers(4, 9), 0.85)
    for _ in range(count):
        if malignant:
            offset = np.clip(rng.normal(0, spread * radius, 2), -radius, radius)
            length, width = rng.uniform(1.0, 4.5) * scale + 0.6, rng.uniform(0.5, 1.0) * scale + 0.5
        else:
            offset = rng.uniform(-spread, spread, 2) * radius
            length = width = rng.uniform(1.8, 3.6) * scale + 0.6
        angle = rng.uniform(0, np.pi)
        along = np.cos(angle) * (dx - offset[1]) + np.sin(angle) * (dy - offset[0])
        across = -np.sin(angle) * (dx - offset[1]) + np.cos(angle) * (dy - offset[0])
        added = np.maximum(added, np.exp(-((along / length) ** 2 + (across / width) ** 2)) * rng.uniform(2.0, 3.5))
    return added, rng.uniform(0.08, 0.14)


def _distortion(rng, dy, dx, radius, malignant, scale):
    """Architectural distortion: thin lines radiating from an empty centre over several hundred
    pixels. Each stretch of line looks like the breast's normal linear structures; only their
    convergence on one point inside the breast, seen over a wide field, is abnormal."""
    added = np.zeros(np.broadcast_shapes(dy.shape, dx.shape), dtype=np.float32)
    width = max(0.8, 1.4 * scale)
    for angle in rng.uniform(0, 2 * np.pi, rng.integers(12, 21)):
        start = radius * rng.uniform(0.15, 0.3)
        added = np.maximum(added, _ray(dy, dx, angle, start, radius * rng.uniform(0.75, 1.0), width))
    return added, rng.uniform(0.06, 0.10)


def _asymmetry(rng, dy, dx, radius, malignant, scale):
    """Focal asymmetry: a patch of glandular-looking density with no convex border. It is drawn in
    fatty breasts only, with the contrast dense tissue has, so it is abnormal only relative to the
    density of the rest of the breast."""
    shape = np.broadcast_shapes(dy.shape, dx.shape)
    blob = upsample(texture(rng, (16, 16), 1.2), shape)
    envelope = np.exp(-((np.hypot(dy, dx) / (radius * 0.85)) ** 2))
    added = np.clip(envelope * (0.9 + 0.6 * blob) - 0.25, 0, None)
    return added / max(float(added.max()), 1e-6), rng.uniform(0.10, 0.16)
