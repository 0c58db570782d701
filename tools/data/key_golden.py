#!/usr/bin/env python3
"""Reference implementation of atlas-store's KeyBuilder encoding (v1), with the blake3 package.

Prints the golden keys asserted in crates/atlas-store/tests/store.rs (`golden_keys`).
Usage: pip install blake3 && python3 tools/data/key_golden.py
"""
import json
import struct

import blake3

HEADER = b"clip-atlas/key/v1\n"


class KeyBuilder:
    def __init__(self):
        self.h = blake3.blake3(HEADER)

    def _raw(self, tag, name, value):
        name_b = name.encode("utf-8")
        self.h.update(tag + struct.pack("<Q", len(name_b)) + name_b + struct.pack("<Q", len(value)) + value)
        return self

    def field(self, name, value):
        return self._raw(b"s", name, value.encode("utf-8"))

    def field_bytes(self, name, value):
        return self._raw(b"b", name, bytes(value))

    def field_u64(self, name, value):
        return self._raw(b"u", name, struct.pack("<Q", value))

    def field_i64(self, name, value):
        return self._raw(b"i", name, struct.pack("<q", value))

    def field_f64(self, name, value):
        return self._raw(b"f", name, struct.pack("<d", value))

    def field_bool(self, name, value):
        return self._raw(b"t", name, b"\x01" if value else b"\x00")

    def field_json(self, name, value):
        # serde_json compact form with sorted object keys
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return self._raw(b"j", name, text.encode("utf-8"))

    def finish(self):
        return self.h.hexdigest()


def main():
    print("empty", KeyBuilder().finish())
    k = (
        KeyBuilder()
        .field("stage", "embed")
        .field_bytes("weights", bytes(range(32)))
        .field_u64("batch_size", 64)
        .field_i64("offset", -3)
        .field_f64("scale", 0.5)
        .field_bool("fp16", True)
        .field_json("params", {"b": [1, 2], "a": "x"})
        .finish()
    )
    print("full", k)
    print("image_bytes", blake3.blake3(b"not really a png").hexdigest())


if __name__ == "__main__":
    main()
