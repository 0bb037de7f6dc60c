"""Where training batches come from: resident on the device, or streamed from a Split.

Both sources yield (flux, error, y_z) batches for one epoch in an order that depends only on
(seed, epoch), so a resumed run skips exactly the batches it already trained on and then
sees the same batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for the data order of one epoch (independent of any other RNG)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


class ResidentData:
    """The whole training set as device tensors (fp16 on CUDA to halve memory, fp32 on CPU).

    Why fp16 storage is safe: median-normalised flux and its error are O(1) numbers with ~3
    significant digits needed; the noise is drawn and added in fp32 at batch time.
    """

    def __init__(self, flux: np.ndarray, error: np.ndarray, y_z: np.ndarray,
                 device: torch.device) -> None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        self.flux = torch.as_tensor(flux).to(device=device, dtype=dtype)
        self.error = torch.as_tensor(error).to(device=device, dtype=dtype)
        self.y = torch.as_tensor(y_z, dtype=torch.float32).to(device)
        self.n = int(self.flux.shape[0])
        self.device = device

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.n // batch_size)

    def pixel_mean(self) -> torch.Tensor:
        """Per-pixel mean of the clean training flux (float64 accumulation)."""
        return self.flux.double().mean(0).float()

    def batches(self, seed: int, epoch: int, batch_size: int, skip: int = 0) -> Iterator[Batch]:
        perm = torch.randperm(self.n, generator=epoch_generator(seed, epoch)).to(self.device)
        for i in range(skip, self.steps_per_epoch(batch_size)):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            yield self.flux[idx].float(), self.error[idx].float(), self.y[idx]


class StreamedData:
    """Chunks of a Split read from HDF5 in order, shuffled within each chunk, sent to the
    device through pinned memory. Used when the set does not fit on the device."""

    def __init__(self, split, y_z: np.ndarray, device: torch.device, chunk_rows: int) -> None:
        self.split = split
        self.y = np.asarray(y_z, dtype=np.float32)
        self.n = int(split.n_rows)
        self.device = device
        self.chunk_rows = int(chunk_rows)

    def steps_per_epoch(self, batch_size: int) -> int:
        full, rest = divmod(self.n, self.chunk_rows)
        per_chunk = -(-self.chunk_rows // batch_size)
        return full * per_chunk + (-(-rest // batch_size))

    def pixel_mean(self) -> torch.Tensor:
        """Per-pixel mean of the clean training flux, one streaming pass."""
        total = None
        for item in self.split.iter_chunks(["flux"], self.chunk_rows):
            flux = item["flux"] if isinstance(item, dict) else item[-1]["flux"]
            part = np.asarray(flux, dtype=np.float64).sum(0)
            total = part if total is None else total + part
        return torch.as_tensor(total / self.n, dtype=torch.float32).to(self.device)

    def batches(self, seed: int, epoch: int, batch_size: int, skip: int = 0) -> Iterator[Batch]:
        gen = epoch_generator(seed, epoch)
        step, start = 0, 0
        pin = self.device.type == "cuda"
        for item in self.split.iter_chunks(["flux", "error"], self.chunk_rows):
            flux, error = _chunk_arrays(item)
            rows = len(flux)
            perm = torch.randperm(rows, generator=gen)
            n_b = -(-rows // batch_size)
            if step + n_b <= skip:                     # whole chunk already trained on
                step, start = step + n_b, start + rows
                continue
            f = torch.from_numpy(np.ascontiguousarray(flux, dtype=np.float32))
            e = torch.from_numpy(np.ascontiguousarray(error, dtype=np.float32))
            y = torch.from_numpy(self.y[start:start + rows])
            if pin:
                f, e, y = f.pin_memory(), e.pin_memory(), y.pin_memory()
            for b in range(n_b):
                if step >= skip:
                    idx = perm[b * batch_size:(b + 1) * batch_size]
                    yield tuple(t[idx].to(self.device, non_blocking=True) for t in (f, e, y))
                step += 1
            start += rows


def _chunk_arrays(item) -> tuple[np.ndarray, np.ndarray]:
    """Accept the chunk forms a Split may yield: {name: array}, (start, {name: array}),
    or (flux, error)."""
    if isinstance(item, dict):
        return item["flux"], item["error"]
    if isinstance(item, (tuple, list)):
        for part in item:
            if isinstance(part, dict):
                return part["flux"], part["error"]
        arrays = [p for p in item if isinstance(p, np.ndarray) and p.ndim == 2]
        if len(arrays) == 2:
            return arrays[0], arrays[1]
    raise TypeError(f"unexpected chunk from Split.iter_chunks: {type(item).__name__}")


def fits_on_device(n_rows: int, n_pixels: int, device: torch.device,
                   max_resident_gb: float | None) -> bool:
    """True when flux + error of the training set fit in the resident-memory budget.

    Budget: `max_resident_gb` when given, else half the free GPU memory on CUDA or a quarter
    of the available RAM on CPU (the rest is for activations, the val set and other jobs)."""
    bytes_per = 2 if device.type == "cuda" else 4
    need = 2 * n_rows * n_pixels * bytes_per
    if max_resident_gb is not None:
        return need <= max_resident_gb * 1e9
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return need <= 0.5 * free
    import psutil
    return need <= 0.25 * psutil.virtual_memory().available
