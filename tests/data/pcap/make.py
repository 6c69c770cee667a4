"""Rewrites an Ethernet pcap (little-endian, microseconds) into the link
types tcpdump on this machine does not write: raw IP (101), BSD loopback
(NULL, 0: a 4-byte address family in the writer's byte order) and
Ethernet with an 802.1Q VLAN tag."""
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
head, body = data[:24], data[24:]
records = []
at = 0
while at + 16 <= len(body):
    sec, usec, incl, orig = struct.unpack("<IIII", body[at:at + 16])
    records.append((sec, usec, orig, body[at + 16:at + 16 + incl]))
    at += 16 + incl


def write(name, linktype, rewrite):
    with open(f"{out}/{name}", "wb") as f:
        f.write(head[:20] + struct.pack("<I", linktype))
        for sec, usec, orig, frame in records:
            new = rewrite(frame)
            grow = len(new) - len(frame)
            f.write(struct.pack("<IIII", sec, usec, len(new), orig + grow))
            f.write(new)


write("rawip.pcap", 101, lambda fr: fr[14:])
write("null.pcap", 0, lambda fr: struct.pack("<I", 2) + fr[14:])
write("vlan.pcap", 1, lambda fr: fr[:12] + b"\x81\x00\x00\x2a" + fr[12:])
