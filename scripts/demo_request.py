#!/usr/bin/env python3
"""Writes an MHM SendSubscriptionRequest dated today (Brussels) from the shared synthetic sample.

The sample is dated 2025-01-02; MyCareNet's date rules want the request dated the day it is sent,
so the demo moves every date of the sample to today and the start date to the first of next month.
Usage: demo_request.py SAMPLE_ENVELOPE OUT_FILE
"""
import base64
import datetime
import re
import sys


def brussels_now():
    now = datetime.datetime.now(datetime.timezone.utc)
    # CET/CEST: UTC+2 between the last Sundays of March and October (01:00 UTC), else UTC+1.
    def last_sunday(year, month):
        d = datetime.datetime(year, month + 1, 1, 1, tzinfo=datetime.timezone.utc) - datetime.timedelta(days=1)
        return d - datetime.timedelta(days=(d.weekday() + 1) % 7)
    start, end = last_sunday(now.year, 3), last_sunday(now.year, 10)
    return now + datetime.timedelta(hours=2 if start <= now < end else 1)


def main():
    sample, out = sys.argv[1], sys.argv[2]
    envelope = open(sample, encoding="utf-8").read()
    now = brussels_now()
    today = now.strftime("%Y-%m-%d")
    stamp = now.strftime("%Y%m%d%H%M%S")
    first_next = (now.replace(day=1) + datetime.timedelta(days=32)).replace(day=1).strftime("%Y-%m-%d")

    m = re.search(r"(<mcp:Detail[^>]*>)([^<]*)(</mcp:Detail>)", envelope)
    detail = base64.b64decode(m.group(2)).decode("utf-8")
    detail = detail.replace("2025-02-01", first_next).replace("20250102093000", stamp)
    detail = detail.replace("2025-01-02", today)
    envelope = envelope[: m.start(2)] + base64.b64encode(detail.encode()).decode() + envelope[m.end(2):]
    envelope = re.sub(r"\s*<mcp:Xades>[^<]*</mcp:Xades>", "", envelope)  # practices send unsigned
    envelope = envelope.replace("2025-01-02", today)
    open(out, "w", encoding="utf-8").write(envelope)


if __name__ == "__main__":
    main()
