#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets added with the protocol modules into seeds/<target>/
from ../crates/protocol/vectors/*.json (see README.md, "Seeds and dictionaries"). Idempotent: a
seed's file name is the first 16 hex digits of its SHA-256. Run from fuzz/: python3 make_seeds.py
"""
import base64
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "crates", "protocol", "vectors")


def load(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)["vectors"]


ALL = load("crypto.json") + load("network.json")


def kind(k):
    return [v for v in ALL if v["kind"] == k]


def h(s):
    return bytes.fromhex(s)


seeds = {}


def add(target, data):
    seeds.setdefault(target, set()).add(bytes(data))


# v1_decrypt: ciphertexts (recipient B opens session_v1_decrypt ones), recipient key forms.
for v in kind("session_v1_decrypt") + kind("session_v1_decrypt_reject"):
    add("v1_decrypt", h(v["inputs"]["ciphertext"]))
for v in kind("session_v1_encrypt_deterministic"):
    add("v1_decrypt", h(v["expected"]["ciphertext"]))
    add("v1_decrypt", h(v["inputs"]["recipient_session_id"]))
    add("v1_decrypt", h(v["inputs"]["message"]))
for v in kind("legacy_config_wrap"):
    add("v1_decrypt", h(v["expected"]["ciphertext"]))

# unpad: padded and unpadded content of both variants, legacy config inner plaintext.
for v in kind("v1_content_padding"):
    add("unpad", h(v["inputs"]["content"]))
    add("unpad", h(v["expected"]["padded"]))
for v in kind("legacy_config_wrap"):
    add("unpad", h(v["expected"]["inner_plaintext"]))

# envelope_decode: every stage of the legacy config message (recipient A opens it).
for v in kind("legacy_config_wrap"):
    for field in ("websocket_message", "envelope", "content"):
        add("envelope_decode", h(v["expected"][field]))

# onion_payload_parse: combined payloads, layer plaintexts, entry requests, v4 bodies.
for v in kind("onion_combined_payload_parse"):
    add("onion_payload_parse", h(v["inputs"]["payload"]))
for v in kind("onion_request_build"):
    add("onion_payload_parse", h(v["expected"]["request"]))
    for p in v["expected"]["layer_plaintexts"]:
        add("onion_payload_parse", h(p))
for v in kind("onion_v4_parse"):
    add("onion_payload_parse", h(v["inputs"]["encoded"]))
add("onion_payload_parse", b'l58:{"code":200,"headers":{"content-type":"application/json"}}11:{"id": 123}e')
add("onion_payload_parse", b'l68:{"endpoint":"/room/x/message","headers":{"X-A":"1"},"method":"POST"}2:{}e')

# onion_peel: the whole input is a POST body for the guard; byte 0 then picks enc type + mode.
GUARD_X25519 = "fea182911db0e69fd73656df0f4c840e613c6cd516871081ce01bbceb15dbf28"
for v in kind("onion_request_build"):
    add("onion_peel", h(v["expected"]["request"]))
    enc = 0 if v["inputs"]["enc_type"] == "aes-gcm" else 1
    for p in v["expected"]["layer_plaintexts"]:
        add("onion_peel", bytes([0x02 | enc]) + h(p))  # mode 1: layer plaintext
    body = v["inputs"]["request_body"].encode()
    for opts in (0x00, 0x08, 0x18, 0x28, 0x40, 0xC8):
        add("onion_peel", bytes([0x04 | enc | opts]) + body)  # mode 2: full request
for k, enc in (("onion_hop_decrypt_aesgcm", 0), ("onion_hop_decrypt_xchacha20", 1)):
    for v in kind(k):
        if v["inputs"]["node_x25519_pubkey"] == GUARD_X25519:  # mode 0: raw layer to the guard
            add("onion_peel", bytes([enc]) + h(v["inputs"]["ephemeral_x25519_pubkey"]) + h(v["inputs"]["ciphertext"]))
for v in kind("onion_response_decrypt"):
    enc = 0 if v["inputs"]["enc_type"] == "aes-gcm" else 1
    b64 = v["inputs"]["response_b64"]
    add("onion_peel", bytes([0x06 | enc]) + b64.encode())  # mode 3: response body
    add("onion_peel", bytes([0x06 | enc]) + json.dumps({"result": b64}).encode())
    add("onion_peel", bytes([0x0E | enc]) + base64.b64decode(b64))

# bencode_decode: frames, payloads, parts, notifications, sn.data, a monitor subscription.
for v in kind("quic_bt_frame"):
    frame = h(v["expected"]["frame"])
    add("bencode_decode", frame)
    add("bencode_decode", frame[frame.index(b":") + 1:])
for v in kind("omq_sn_onion_request"):
    add("bencode_decode", h(v["expected"]["part"]))
for v in kind("monitor_notification"):
    add("bencode_decode", h(v["expected"]["notification"]))
for v in kind("sn_data_batch"):
    add("bencode_decode", h(v["expected"]["payload"]))
for v in kind("onion_v4_parse"):
    add("bencode_decode", h(v["inputs"]["encoded"]))
for v in kind("monitor_signature"):
    i = v["inputs"]
    sig = base64.b64decode(v["expected"]["signature_b64"])
    ns = b"".join(b"i%de" % n for n in i["namespaces"])
    sub = (b"d1:di1e1:nl" + ns + b"e1:p33:" + h(i["pubkey"]) + b"1:s64:" + sig
           + b"1:ti%dee" % i["timestamp_s"])
    add("bencode_decode", sub)
    add("bencode_decode", b"l" + sub + b"e")

# blinded_dm_decrypt: byte 0 = blinding (bit 0), reader A (bit 1), explicit sender id (bit 2),
# round trip (bit 3).
for v in kind("blinded_dm_decrypt") + kind("blinded_dm_decrypt_reject"):
    i = v["inputs"]
    blind = 0 if i["sender_blinded_id"].startswith("15") else 1
    ct = h(i["ciphertext"])
    reader = 0 if i["ed25519_seed"].startswith("0011") else 2
    add("blinded_dm_decrypt", bytes([blind | reader]) + ct)
    add("blinded_dm_decrypt", bytes([blind | reader | 4]) + h(i["sender_blinded_id"]) + ct)
    add("blinded_dm_decrypt", bytes([blind | 8]) + h(v["expected"].get("message", "68656c6c6f")))

for target, items in sorted(seeds.items()):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for data in items:
        with open(os.path.join(d, hashlib.sha256(data).hexdigest()[:16]), "wb") as f:
            f.write(data)
    print(f"{target}: {len(items)} seeds")
