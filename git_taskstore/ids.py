"""Record ids the store generates: short, time-ordered, collision-resistant offline.

``<prefix><9 chars of millisecond time><7 random chars>`` in lowercase Crockford base32:
ids sort by creation time, and two clones working offline would need to create ids in the
same millisecond and draw the same 35 random bits to collide.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str = "") -> str:
    # os.urandom rather than the secrets module: that one loads OpenSSL (~10 ms of start-up).
    random_bits = int.from_bytes(os.urandom(5), "big") >> 5  # 35 bits
    return prefix + _base32(time.time_ns() // 1_000_000, 9) + _base32(random_bits, 7)
