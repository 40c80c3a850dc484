#!/usr/bin/env python3
"""CPU per request of a civicgrid server, by where on the stack it was spent.

Input: the text of `perf script -F comm,tid,ip,sym --no-inline` from a
`perf record --call-graph dwarf` of the server under loadgen (see docs/PERFORMANCE.md,
"Authenticated, scoped and audited API reads"). Each sample is counted once, under the
first category below that matches a frame of its stack; the first column is the
category's CPU per request.

Usage: perf-categories.py PERF_SCRIPT_TXT REQ_PER_S SECONDS HZ [CATEGORY]
With CATEGORY, the category's leaf symbols instead (the allocator figures came so, from
the category "request").
"""
import collections
import re
import sys

CATEGORIES = [
    ("audit append", r"AuditSpool::append|audit_as|GroupWriter|write_groups"),
    ("importer", r"run_importer|import_step|import_own|Batch::parse|chain_hash|copy_in|PgCopyIn"),
    ("sqlx", r"sqlx"),
    ("handler", r"get_account|AccountAdmin"),
    ("hyper read", r"poll_read_from_io|parse_headers|Http1Transaction>::parse"),
    ("hyper write", r"poll_flush|writev|Http1Transaction>::encode"),
    ("kernel scheduling", r"schedule|finish_task_switch|futex"),
    ("tokio park", r"park|Parker|block_in_place|epoll_wait"),
    ("request", r"server::auth"),
]


def samples(path):
    cur = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                yield cur
            cur = []
        elif not line.startswith(("\t", " " * 8)):
            cur = [line]
        else:
            parts = line.strip().split(" ", 1)
            cur.append(parts[1] if len(parts) > 1 else "")
    if cur:
        yield cur


def category(stack):
    frames = " | ".join(stack)
    return next((name for name, pat in CATEGORIES if re.search(pat, frames)), "other")


def main():
    path, rps, secs, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    want = sys.argv[5] if len(sys.argv) > 5 else None
    us = 1e6 / hz / secs / rps
    counts = collections.Counter()
    for s in samples(path):
        cat = category(s[1:])
        if want is None:
            counts[cat] += 1
        elif cat == want and len(s) > 1:
            counts[s[1][:90]] += 1
    for key, n in counts.most_common(30 if want else None):
        print(f"{n * us:7.2f} µs  {key}")


main()
