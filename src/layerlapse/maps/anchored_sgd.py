"""UMAP's layout optimisation, continued from the previous frame, with each point's steps scaled by how free it is
to move.

umap-learn's own optimiser (`umap.layouts.optimize_layout_euclidean`) moves every point alike. Started from the
previous frame at UMAP's full learning rate it finds a layout as faithful as a fresh fit, but its noisy steps shuffle
points inside clusters whose neighbourhoods did not change, so the map flickers where the network stood still; at a
tenth of the rate the map stays still but keeps the previous frame's mistakes. Here each point's steps are scaled by
its own mobility (how much of its neighbourhood in the layer changed since the last frame): a point whose
neighbours are the same hardly moves, one whose neighbours changed is optimised as freely as in a fresh fit, and the
points around it make room as far as their own mobility lets them. The optimisation is otherwise UMAP's: the same
edge sampling by membership strength, negative sampling, gradient clipping and linearly falling learning rate.

Serial and seeded, so a frame is the same on every run (umap-learn's parallel mode is not). numba compiles it once
per machine (`cache=True`).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True)
def _clip(value: float) -> float:
    return max(-4.0, min(4.0, value))


@numba.njit(cache=True)
def _random_int(state: np.ndarray) -> int:
    """umap-learn's tausworthe generator (`umap.utils.tau_rand_int`): fast and the same everywhere."""
    state[0] = (((state[0] & 4294967294) << 12) & 0xFFFFFFFF) ^ ((((state[0] << 13) & 0xFFFFFFFF) ^ state[0]) >> 19)
    state[1] = (((state[1] & 4294967288) << 4) & 0xFFFFFFFF) ^ ((((state[1] << 2) & 0xFFFFFFFF) ^ state[1]) >> 25)
    state[2] = (((state[2] & 4294967280) << 17) & 0xFFFFFFFF) ^ ((((state[2] << 3) & 0xFFFFFFFF) ^ state[2]) >> 11)
    return state[0] ^ state[1] ^ state[2]


@numba.njit(cache=True, fastmath=True)
def _optimise(xy: np.ndarray, head: np.ndarray, tail: np.ndarray, epochs_per_sample: np.ndarray,
              mobility: np.ndarray, a: float, b: float, gamma: float, learning_rate: float, n_epochs: int,
              negative_sample_rate: float, rng_state: np.ndarray) -> None:
    n_vertices = xy.shape[0]
    epoch_of_next_sample = epochs_per_sample.copy()
    epochs_per_negative_sample = epochs_per_sample / negative_sample_rate
    epoch_of_next_negative_sample = epochs_per_negative_sample.copy()
    for n in range(n_epochs):
        alpha = learning_rate * (1.0 - n / n_epochs)
        for i in range(epochs_per_sample.shape[0]):
            if epoch_of_next_sample[i] > n:
                continue
            j, k = head[i], tail[i]
            dx, dy = xy[j, 0] - xy[k, 0], xy[j, 1] - xy[k, 1]
            dist_squared = dx * dx + dy * dy
            if dist_squared > 0.0:
                power = dist_squared ** b  # one pow: d^(2b - 2) = d^2b / d^2
                coefficient = -2.0 * a * b * (power / dist_squared) / (a * power + 1.0)
                gx, gy = _clip(coefficient * dx) * alpha, _clip(coefficient * dy) * alpha
                xy[j, 0] += gx * mobility[j]
                xy[j, 1] += gy * mobility[j]
                xy[k, 0] -= gx * mobility[k]
                xy[k, 1] -= gy * mobility[k]
            epoch_of_next_sample[i] += epochs_per_sample[i]
            n_negative = int((n - epoch_of_next_negative_sample[i]) / epochs_per_negative_sample[i])
            step = alpha * mobility[j]
            for _ in range(n_negative if step > 0.0 else 0):  # a held point is pushed by no one
                k = _random_int(rng_state) % n_vertices
                if k == j:
                    continue
                dx, dy = xy[j, 0] - xy[k, 0], xy[j, 1] - xy[k, 1]
                dist_squared = dx * dx + dy * dy
                if dist_squared > 0.0 and step > 0.0:
                    coefficient = 2.0 * gamma * b / ((0.001 + dist_squared) * (a * dist_squared ** b + 1.0))
                    xy[j, 0] += _clip(coefficient * dx) * step
                    xy[j, 1] += _clip(coefficient * dy) * step
            epoch_of_next_negative_sample[i] += n_negative * epochs_per_negative_sample[i]


def optimise_layout(start: np.ndarray, head: np.ndarray, tail: np.ndarray, epochs_per_sample: np.ndarray,
                    mobility: np.ndarray, *, a: float, b: float, n_epochs: int, learning_rate: float = 1.0,
                    seed: int = 0, gamma: float = 1.0, negative_sample_rate: float = 5.0) -> np.ndarray:
    """The layout after `n_epochs` of UMAP's optimisation from `start` (n, 2), each point's steps scaled by its
    `mobility` in [0, 1]; the graph as umap-learn passes it to its optimiser (edge heads, tails, epochs per
    sample). Returns a new float32 array."""
    xy = np.array(start, dtype=np.float32, order="C")
    mobility = np.clip(mobility, 0.0, 1.0)
    moving = (mobility[head] > 0) | (mobility[tail] > 0)  # an edge between two held points changes nothing
    head, tail, epochs_per_sample = head[moving], tail[moving], epochs_per_sample[moving]
    rng_state = np.random.RandomState(seed).randint(1, np.iinfo(np.int32).max, 3).astype(np.int64)
    _optimise(xy, np.ascontiguousarray(head, dtype=np.int32), np.ascontiguousarray(tail, dtype=np.int32),
              np.ascontiguousarray(epochs_per_sample, dtype=np.float64),
              np.ascontiguousarray(mobility, dtype=np.float32), float(a), float(b), float(gamma),
              float(learning_rate), int(n_epochs), float(negative_sample_rate), rng_state)
    return xy
