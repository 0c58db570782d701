#!/usr/bin/env python3
"""Opens Parquet files written by atlas-store with DuckDB, Polars, pandas (pyarrow).

Usage:
  cargo run -p atlas-store --example sample_artifacts -- /tmp/atlas-sample > /tmp/atlas-sample.txt
  pip install duckdb polars pandas pyarrow
  python3 tools/data/check_parquet_readers.py $(cat /tmp/atlas-sample.txt)
"""
import sys

import duckdb
import pandas as pd
import polars as pl


def check(path):
    df = pd.read_parquet(path)
    assert len(df) == 3, len(df)
    assert list(df.columns) == ["item_hash", "item_id", "label", "embedding", "norm"], list(df.columns)
    assert len(df["item_hash"][0]) == 32
    assert list(df["embedding"][1]) == [4.0, 5.0, 6.0, 7.0]
    pdf = pl.read_parquet(path)
    assert pdf.shape == (3, 5), pdf.shape
    assert pdf["label"].null_count() == 1
    rows = duckdb.sql(f"select item_id, label, embedding[1], octet_length(item_hash) from '{path}' order by item_id").fetchall()
    assert rows[0] == ("a.jpg", 0, 0.0, 32), rows[0]
    print(f"ok: {path} (pandas {pd.__version__}, polars {pl.__version__}, duckdb {duckdb.__version__})")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        check(p)
