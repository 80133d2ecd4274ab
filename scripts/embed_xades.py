#!/usr/bin/env python3
"""Puts the detached XAdES of a signed MyCareNet request into the request itself, so that a generic
XML-DSig verifier (xmlsec1) can resolve the signature's reference to Detail by its Id.
Usage: embed_xades.py SIGNED_REQUEST OUT_FILE"""
import base64
import re
import sys

envelope = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"<(\w+):Xades>([^<]*)</\1:Xades>", envelope)
signature = base64.b64decode(m.group(2)).decode("utf-8")
signature = re.sub(r"^<\?xml[^>]*\?>\s*", "", signature)
close = envelope.rindex("</")
open(sys.argv[2], "w", encoding="utf-8").write(envelope[:close] + signature + envelope[close:])
