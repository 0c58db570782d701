#!/usr/bin/env python3
"""Reference streams of the workspace's pseudo-random generators (run from the repository root).

    pip install blake3          # only for the world's key derivation; the rest is pure Python
    python3 tools/reference/make_prng_streams.py

An independent, plain-Python implementation of each generator and of the sampling helpers built
on it, from the published algorithms:
- SplitMix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c): state += 0x9E3779B97F4A7C15, then
  the finaliser z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
  z ^= z >> 31.
- xoshiro256++ and xoshiro256** (Blackman & Vigna 2019, xoshiro256plusplus.c / starstar.c).

Writes the JSON fixtures that pin the Rust streams bit for bit (floats as their IEEE bit
patterns, so no decimal round trip is involved):
- crates/atlas-train/tests/fixtures/prng.json   atlas_train::data::Rng (SplitMix64 stream, seed
  XOR 0x9E3779B97F4A7C15; modulo `below`; Fisher-Yates `shuffle`)
- crates/atlas-metrics/tests/fixtures/prng.json atlas_metrics::bootstrap::Rng (xoshiro256++,
  state = four SplitMix64 outputs; Lemire's unbiased `below`) and bootstrap intervals
- crates/atlas-world/tests/fixtures/prng.json   atlas-world's Rng (xoshiro256**, state = blake3
  XOF of a length-prefixed key; multiply-shift `below`, `unit`, `range`, `weighted`, ...) and
  the renderer's cell noise (SplitMix64 finaliser as a hash)
"""
import json
import math
import struct
from pathlib import Path

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


def mix64(z):
    """The SplitMix64 finaliser."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, state):
        self.x = state & M64

    def next_u64(self):
        self.x = (self.x + GAMMA) & M64
        return mix64(self.x)


class Xoshiro256:
    def __init__(self, s, scrambler):
        self.s = list(s)
        self.scrambler = scrambler

    def next_u64(self):
        s = self.s
        if self.scrambler == "++":
            result = (rotl((s[0] + s[3]) & M64, 23) + s[0]) & M64
        else:  # "**"
            result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def to_f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def u64(x):
    return x & M64


# ---------------------------------------------------------------- atlas-train: data::Rng


class TrainRng:
    def __init__(self, seed):
        self.sm = SplitMix64(seed ^ GAMMA)

    def next_u64(self):
        return self.sm.next_u64()

    def below(self, n):
        return self.next_u64() % n

    def shuffle(self, v):
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]


def train_fixture():
    seeds = [0, 1, 7, 0x5EED, 0xCA971075, M64, 1234]
    out = {"next_u64": [], "below": [], "shuffle": []}
    for seed in seeds:
        r = TrainRng(seed)
        out["next_u64"].append({"seed": seed, "values": [r.next_u64() for _ in range(8)]})
        r = TrainRng(seed)
        ns = [1, 2, 3, 5, 7, 10, 100, 1000, 99991, 1 << 40]
        out["below"].append({"seed": seed, "n": ns, "values": [r.below(n) for n in ns]})
        r = TrainRng(seed)
        v = list(range(25))
        r.shuffle(v)
        out["shuffle"].append({"seed": seed, "len": 25, "values": v})
    return out


# ---------------------------------------------------------------- atlas-metrics: bootstrap::Rng


class BootRng:
    def __init__(self, seed):
        sm = SplitMix64(seed)
        self.x = Xoshiro256([sm.next_u64() for _ in range(4)], "++")

    @staticmethod
    def for_replicate(seed, b):
        return BootRng(seed ^ u64((b + 1) * GAMMA))

    def next_u64(self):
        return self.x.next_u64()

    def below(self, n):
        """Lemire 2019, multiply and reject."""
        m = self.next_u64() * n
        lo = m & M64
        if lo < n:
            threshold = ((1 << 64) - n) % n
            while lo < threshold:
                m = self.next_u64() * n
                lo = m & M64
        return m >> 64


def stratum_seed(seed, s):
    if s == 0:
        return seed
    return seed ^ rotl(u64(s * 0xD1B54A32D192ED03), 17)


def quantile_sorted(v, q):
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    frac = pos - lo
    return v[lo] + frac * (v[hi] - v[lo])


def replicate_counts(n, seed, b):
    r = BootRng.for_replicate(seed, b)
    c = [0] * n
    for _ in range(n):
        c[r.below(n)] += 1
    return c


def percentile(values, level):
    values = sorted(values)
    a = (1.0 - level) / 2.0
    return quantile_sorted(values, a), quantile_sorted(values, 1.0 - a)


def bootstrap_mean_ci(values01, seed, n_resamples, level):
    """Mean of 0/1 values: every replicate mean is an integer count over n (exact in f64)."""
    n = len(values01)
    est = sum(values01) / n
    reps = []
    for b in range(n_resamples):
        c = replicate_counts(n, seed, b)
        reps.append(sum(ci * vi for ci, vi in zip(c, values01)) / n)
    lo, hi = percentile(reps, level)
    return est, lo, hi


def bootstrap_strata_diff(v0, v1, seed, n_resamples, level):
    """Stratified bootstrap of mean(v0) - mean(v1), each stratum resampled within itself."""
    s0, s1 = stratum_seed(seed, 0), stratum_seed(seed, 1)
    est = sum(v0) / len(v0) - sum(v1) / len(v1)
    reps = []
    for b in range(n_resamples):
        c0 = replicate_counts(len(v0), s0, b)
        c1 = replicate_counts(len(v1), s1, b)
        m0 = sum(c * v for c, v in zip(c0, v0)) / len(v0)
        m1 = sum(c * v for c, v in zip(c1, v1)) / len(v1)
        reps.append(m0 - m1)
    lo, hi = percentile(reps, level)
    return est, lo, hi


def metrics_fixture():
    out = {"seed_from_u64": [], "for_replicate": [], "below": [], "mean_ci": [], "strata_ci": []}
    for seed in [0, 1, 42, 0xDEADBEEF, M64]:
        r = BootRng(seed)
        out["seed_from_u64"].append({"seed": seed, "values": [r.next_u64() for _ in range(8)]})
        for b in [0, 1, 2, 999]:
            r = BootRng.for_replicate(seed, b)
            out["for_replicate"].append(
                {"seed": seed, "b": b, "values": [r.next_u64() for _ in range(4)]}
            )
        # Large n exercise the rejection branch (threshold = 2^64 mod n is large for n > 2^63).
        ns = [1, 2, 3, 10, 1000, 123457, (1 << 63) + 1, (1 << 63) + 12345, M64, 3 << 62]
        r = BootRng(seed)
        out["below"].append(
            {"seed": seed, "n": ns * 3, "values": [r.below(n) for n in ns * 3]}
        )
    # Deterministic 0/1 correctness vectors (no RNG involved).
    v = [1.0 if (i * 7 + 3) % 10 < 6 else 0.0 for i in range(101)]
    w = [1.0 if (i * 5 + 1) % 9 < 4 else 0.0 for i in range(37)]
    for seed, n_res, level in [(0, 200, 0.95), (7, 150, 0.9), (123456789, 64, 0.8)]:
        est, lo, hi = bootstrap_mean_ci(v, seed, n_res, level)
        out["mean_ci"].append(
            {"values": v, "seed": seed, "n_resamples": n_res, "level": level,
             "estimate_bits": f64_bits(est), "lower_bits": f64_bits(lo), "upper_bits": f64_bits(hi)}
        )
        est, lo, hi = bootstrap_strata_diff(v, w, seed, n_res, level)
        out["strata_ci"].append(
            {"values0": v, "values1": w, "seed": seed, "n_resamples": n_res, "level": level,
             "estimate_bits": f64_bits(est), "lower_bits": f64_bits(lo), "upper_bits": f64_bits(hi)}
        )
    return out


# ---------------------------------------------------------------- atlas-world: rng::Rng


class WorldRng:
    def __init__(self, parts):
        import blake3  # only the key derivation needs it

        h = blake3.blake3()
        h.update(b"atlas-world/rng/v1")
        for p in parts:
            h.update(struct.pack("<Q", len(p)))
            h.update(p)
        b = h.digest(length=32)
        s = [struct.unpack("<Q", b[8 * i: 8 * i + 8])[0] for i in range(4)]
        if s == [0, 0, 0, 0]:
            s[0] = GAMMA
        self.x = Xoshiro256(s, "**")

    def next_u64(self):
        return self.x.next_u64()

    def unit(self):
        return (self.next_u64() >> 11) * (1.0 / float(1 << 53))

    def range(self, lo, hi):
        return to_f32(float(lo) + (float(hi) - float(lo)) * self.unit())

    def below(self, n):
        if n == 0:
            return 0
        return (self.next_u64() * n) >> 64

    def chance(self, p):
        return self.unit() < p

    def weighted(self, weights):
        total = 0.0
        for w in weights:
            total += w
        if total <= 0.0:
            return 0
        u = self.unit() * total
        for i, w in enumerate(weights):
            if u < w:
                return i
            u -= w
        return len(weights) - 1

    def signed_range(self, lo, hi):
        v = self.range(lo, hi)
        return v if self.chance(0.5) else -v


def cell_noise(seed, i, j):
    z = seed ^ u64(u64(i) * GAMMA) ^ u64(u64(j) * 0xC2B2AE3D27D4EB4F)
    return (mix64(z) >> 11) * (1.0 / float(1 << 53))


def world_fixture():
    keys = [
        [b"pin", struct.pack("<Q", 7)],
        [b"pin", struct.pack("<Q", 8)],
        [b"render-background", struct.pack("<Q", 0x0123456789ABCDEF)],
        [b"render-object", struct.pack("<Q", 99), struct.pack("<Q", 3)],
        [b"retrieval-perm", struct.pack("<Q", 0)],
        [],
    ]
    # f32 arguments are exactly representable, so Rust and Python start from the same values.
    ranges = [(0.0, 1.0), (-0.25, 0.75), (0.5, 2.0), (10.0, 360.0)]
    weights = [[1.0, 2.0, 3.0], [0.0, 0.0, 5.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0]]
    below_n = [0, 1, 2, 3, 12, 100, 1 << 40]
    out = {"streams": [], "cell_noise": []}
    for parts in keys:
        r = WorldRng(parts)
        rec = {"key_hex": [p.hex() for p in parts]}
        rec["next_u64"] = [r.next_u64() for _ in range(6)]
        rec["unit_bits"] = [f64_bits(r.unit()) for _ in range(4)]
        rec["below_n"] = below_n
        rec["below"] = [r.below(n) for n in below_n]
        rec["ranges"] = ranges
        rec["range_bits"] = [f32_bits(r.range(lo, hi)) for lo, hi in ranges]
        rec["weights"] = weights
        rec["weighted"] = [r.weighted(w) for w in weights]
        rec["chance_p"] = [0.0, 0.1, 0.5, 0.9, 1.0]
        rec["chance"] = [r.chance(p) for p in rec["chance_p"]]
        rec["signed_range_bits"] = [f32_bits(r.signed_range(lo, hi)) for lo, hi in ranges]
        out["streams"].append(rec)
    for seed in [0, 1, 0xFEEDFACE, M64]:
        for i, j in [(0, 0), (1, 0), (0, 1), (-1, 5), (17, -3), (-2147483648, 2147483647)]:
            out["cell_noise"].append(
                {"seed": seed, "i": i, "j": j, "bits": f64_bits(cell_noise(seed, i, j))}
            )
    return out


def dump(path, obj):
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=1) + "\n")
    print(f"{p}: {p.stat().st_size} bytes")


def main():
    dump("crates/atlas-train/tests/fixtures/prng.json", train_fixture())
    dump("crates/atlas-metrics/tests/fixtures/prng.json", metrics_fixture())
    dump("crates/atlas-world/tests/fixtures/prng.json", world_fixture())


if __name__ == "__main__":
    main()
